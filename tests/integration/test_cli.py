"""midge-sub and midge-pub beside mosquitto_sub and mosquitto_pub: same flags, same broker,
byte-for-byte the same output and the same exit status.

To take the race out of "is the subscriber subscribed yet?", each subscriber first makes a
persistent session with its subscriptions (-c -i ID -E), then the test publishes, then the
subscriber comes back with the flags under test and gets the queued messages. Both tools go
through exactly the same steps. Every process runs with a timeout.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import MIDGE_BIN
from helpers import Client, close_clients  # noqa: F401

BIN_DIR = os.path.dirname(os.path.abspath(MIDGE_BIN))
MIDGE_SUB = os.path.join(BIN_DIR, "midge-sub")
MIDGE_PUB = os.path.join(BIN_DIR, "midge-pub")

pytestmark = [
    pytest.mark.skipif(not os.access(MIDGE_SUB, os.X_OK) or not os.access(MIDGE_PUB, os.X_OK),
                       reason="midge-sub/midge-pub not built"),
    pytest.mark.skipif(not shutil.which("mosquitto_sub"), reason="mosquitto-clients missing"),
]

TOOLS = {"midge": (MIDGE_SUB, MIDGE_PUB), "mosquitto": ("mosquitto_sub", "mosquitto_pub")}
SAN_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
             "WARNING: ThreadSanitizer")


def run(cmd, timeout=15, stdin=None):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, input=stdin)
    for mark in SAN_MARKS:
        assert mark.encode() not in p.stderr, p.stderr.decode()
    return p.returncode, p.stdout, p.stderr


def pub(broker, *args, tool="mosquitto", stdin=None):
    rc, out, err = run([TOOLS[tool][1], "-p", str(broker.port), *args], stdin=stdin)
    assert rc == 0, err
    return out


def subscribe_both(broker, topics, flags, publish, version=None, qos=1):
    """Prepare a session per tool, publish, then run each subscriber with flags; return
    {tool: (rc, stdout, stderr)}."""
    tflags = [a for t in topics for a in ("-t", t)]
    vflags = ["-V", version] if version else []
    results = {}
    for tool, (sub, _) in TOOLS.items():
        rc, _, err = run([sub, "-p", str(broker.port), "-c", "-i", f"cli-{tool}", "-q", str(qos),
                          *vflags, *tflags, "-E"])
        assert rc == 0, err
    publish(broker)
    for tool, (sub, _) in TOOLS.items():
        results[tool] = run([sub, "-p", str(broker.port), "-c", "-i", f"cli-{tool}", "-q",
                             str(qos), *vflags, *tflags, *flags])
    return results


def same(results, rc=0):
    m, o = results["midge"], results["mosquitto"]
    assert o[0] == rc, f"mosquitto_sub exit {o[0]}: {o[2]!r}"
    assert m[0] == o[0], f"exit: midge {m[0]} ({m[2]!r}), mosquitto {o[0]} ({o[2]!r})"
    assert m[1] == o[1], f"\nmidge:     {m[1]!r}\nmosquitto: {o[1]!r}"
    return m[1]


def publish_set(broker):
    pub(broker, "-t", "cli/a", "-m", "hello world", "-q", "1")
    pub(broker, "-t", "cli/b/c", "-m", 'quote " back \\ tab \t end', "-q", "2")
    pub(broker, "-t", "cli/empty", "-n", "-q", "1")
    pub(broker, "-t", "cli/utf8", "-m", "grüße ✓", "-q", "1")
    pub(broker, "-t", "other/x", "-m", "not mine", "-q", "1")


@pytest.mark.parametrize("version", [None, "mqttv31", "mqttv5"])
def test_verbose(broker, version):
    out = same(subscribe_both(broker, ["cli/#"], ["-v", "-C", "4"], publish_set, version))
    assert out == ('cli/a hello world\ncli/b/c quote " back \\ tab \t end\ncli/empty (null)\n'
                   "cli/utf8 grüße ✓\n").encode()


def test_payload_only_default(broker):
    out = same(subscribe_both(broker, ["cli/#"], ["-C", "4"], publish_set))
    # an empty payload prints nothing at all, not even its newline (mosquitto_sub does so)
    assert out == ('hello world\nquote " back \\ tab \t end\ngrüße ✓\n').encode()


def test_no_eol(broker):
    out = same(subscribe_both(broker, ["cli/#"], ["-N", "-C", "2"], publish_set))
    assert out == b'hello worldquote " back \\ tab \t end'


def test_count_with_several_topics(broker):
    out = same(subscribe_both(broker, ["cli/a", "other/#"], ["-v", "-C", "2"], publish_set))
    assert out == b"cli/a hello world\nother/x not mine\n"


@pytest.mark.parametrize("fmt", [
    "%t|%p|%q|%r|%l|%m|%%",
    "%10t|%-10t|%.3t|%8.2t|%5l|%-5l.|%05l|%03m",
    "%x %X",
    "\\t\\e\\\\ \\n@@ @Y",
])
def test_format(broker, fmt):
    same(subscribe_both(broker, ["cli/#"], ["-F", fmt, "-C", "4"], publish_set))


def test_format_json_and_times(broker):
    """%j, %I and %U carry the time: equal once the times are masked."""
    res = subscribe_both(broker, ["cli/#"], ["-F", "%I %U %j", "-C", "4"], publish_set)
    masked = {}
    for tool, (rc, out, err) in res.items():
        assert rc == 0, err
        s = out.decode()
        s = re.sub(r'"tst":"[0-9T:.+Z-]+"', '"tst":T', s)
        s = re.sub(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \d+\.\d{9} ", "I U ", s,
                   flags=re.M)
        masked[tool] = s
    assert masked["midge"] == masked["mosquitto"]
    assert '"topic":"cli/b/c","qos":1,"retain":0,"payloadlen":24,"mid":' in masked["midge"]
    assert '"payload":"quote \\" back \\\\ tab \\t end"}' in masked["midge"]
    assert '"payloadlen":0,"mid":2,"payload":null}' in masked["midge"] or \
        '"payload":null}' in masked["midge"]


@pytest.mark.parametrize("fmt", ["%j", "%J"])
def test_format_json_v5_properties(broker, fmt):
    """Every message property, printed in the order the broker sent them (as mosquitto_sub
    does: a user-properties object where the first user property came)."""
    def publish(b):
        pub(b, "-V", "mqttv5", "-t", "cli/p", "-m", "{\"a\":1}", "-q", "1",
            "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "ct",
            "-D", "publish", "correlation-data", "cd", "-D", "publish", "response-topic", "rt",
            "-D", "publish", "message-expiry-interval", "3600",
            "-D", "publish", "payload-format-indicator", "1",
            "-D", "publish", "user-property", "k2", "v2")
    res = subscribe_both(broker, ["cli/#"], ["-F", fmt, "-C", "1"], publish, "mqttv5")
    outs = {}
    for tool, (rc, out, err) in res.items():
        assert rc == 0, err
        s = re.sub(r'"tst":"[^"]+"', '"tst":T', out.decode())
        # the remaining lifetime: 3600 less the whole seconds the message waited
        outs[tool] = re.sub(r'"message-expiry-interval":(3600|359\d)', '"message-expiry-interval":E', s)
    assert outs["midge"] == outs["mosquitto"], outs
    props = re.search(r'"properties":(\{.*\}),"payload"', outs["midge"]).group(1)
    assert sorted(re.findall(r'"([a-z0-9-]+)":', props)) == sorted(
        ["user-properties", "k", "k2", "content-type", "correlation-data", "response-topic",
         "message-expiry-interval", "payload-format-indicator"]), props


def test_invalid_format_specifier(broker):
    for tool, (sub, _) in TOOLS.items():
        rc, out, err = run([sub, "-p", str(broker.port), "-t", "a", "-F", "%z"])
        assert rc == 1, tool
        assert err.splitlines()[0] == b"Error: Invalid format specifier 'z'.", tool


def test_timeout_W(broker):
    out = same(subscribe_both(broker, ["nothing/#"], ["-W", "1", "-v"], lambda b: None), rc=27)
    assert out == b""


def test_timeout_W_after_messages(broker):
    out = same(subscribe_both(broker, ["cli/a"], ["-W", "1", "-v"], publish_set), rc=27)
    assert out == b"cli/a hello world\n"


def retained_set(broker):
    pub(broker, "-t", "ret/one", "-m", "r1", "-r", "-q", "1")
    pub(broker, "-t", "ret/two", "-m", "r2", "-r", "-q", "1")


def test_retained_only(broker):
    retained_set(broker)
    results = {}
    for tool, (sub, _) in TOOLS.items():
        results[tool] = run([sub, "-p", str(broker.port), "-t", "ret/#", "--retained-only",
                             "-v", "-W", "2"])
    # both print the retained messages, then wait for a non-retained one until -W
    out = same(results, rc=27)
    assert out == b"ret/one r1\nret/two r2\n" or out == b"ret/two r2\nret/one r1\n"


def test_skip_retained_R(broker):
    retained_set(broker)
    results = {}
    for tool, (sub, _) in TOOLS.items():
        results[tool] = run([sub, "-p", str(broker.port), "-t", "ret/#", "-R", "-v", "-W",
                             "1"])
    assert same(results, rc=27) == b""


def test_filter_out_T(broker):
    out = same(subscribe_both(broker, ["cli/#"], ["-T", "cli/b/#", "-T", "cli/empty", "-v",
                                                  "-C", "2"], publish_set))
    assert out == "cli/a hello world\ncli/utf8 grüße ✓\n".encode()


def test_exit_after_subscribe_E(broker):
    results = {t: run([s, "-p", str(broker.port), "-t", "x/#", "-E"]) for t, (s, _) in
               TOOLS.items()}
    assert same(results) == b""


def test_remove_retained(broker):
    retained_set(broker)
    for tool, (sub, _) in TOOLS.items():
        rc, _, err = run([sub, "-p", str(broker.port), "-t", "ret/#", "--remove-retained",
                          "-W", "1"])
        assert rc == 27, err
        # the retained messages are gone: a new subscriber sees none
        rc, out, _ = run([sub, "-p", str(broker.port), "-t", "ret/#", "-W", "1"])
        assert (rc, out) == (27, b""), tool
        retained_set(broker)


@pytest.mark.parametrize("args,first_line", [
    (["-t"], None),
    (["-q", "3", "-t", "a"], b"Error: Invalid QoS given: 3"),
    (["-t", "a/#/b"], b"Error: Invalid subscription topic 'a/#/b', are all '+' and '#' "
                      b"wildcards correct?"),
    (["-V", "7", "-t", "a"], b"Error: Invalid protocol version argument given."),
    (["-Z"], b"Error: Unknown option '-Z'."),
    ([], None),
    (["-c", "-t", "a"], b"Error: You must provide a client id if you are using the -c option."),
    (["-C", "0", "-t", "a"], b'Error: Invalid message count "0".'),
    (["-k", "2", "-t", "a"], b"Error: Invalid keepalive given, it must be between 5 and 65535 "
                             b"inclusive."),
])
def test_sub_usage_errors(broker, args, first_line):
    for tool, (sub, _) in TOOLS.items():
        rc, out, err = run([sub, "-p", str(broker.port), *args])
        assert rc == 1, (tool, err)
        if first_line:
            assert err.splitlines()[0] == first_line, tool
        if tool == "midge":
            assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize("args,first_line", [
    (["-t", "a/+", "-m", "x"], b"Error: Invalid publish topic 'a/+', does it contain '+' or "
                               b"'#'?"),
    (["-t", "a"], b"Error: Both topic and message must be supplied."),
    (["-t", "a", "-m", "x", "-n"], b"Error: Only one type of message can be sent at once."),
])
def test_pub_usage_errors(broker, args, first_line):
    for tool, (_, p) in TOOLS.items():
        rc, out, err = run([p, "-p", str(broker.port), *args])
        assert rc == 1, (tool, err)
        if tool == "midge":
            assert err == first_line + b"\n"


@pytest.mark.midge_only
@pytest.mark.parametrize("version,code,line", [
    ("mqttv311", 5, b"Connection error: Connection Refused: not authorised."),
    ("mqttv5", 135, b"Connection error: Not authorized"),
])
def test_refused_exit_code(broker_factory, version, code, line):
    b = broker_factory(config="allow_anonymous false")
    for tool, (sub, p) in TOOLS.items():
        rc, _, err = run([sub, "-p", str(b.port), "-t", "a", "-V", version])
        assert rc == code, (tool, err)
        assert err.splitlines()[0] == line, tool
        rc, _, err = run([p, "-p", str(b.port), "-t", "a", "-m", "x", "-V", version])
        assert rc == code, (tool, err)


def test_unreachable():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for tool, (sub, p) in TOOLS.items():
        rc, _, err = run([sub, "-h", "127.0.0.1", "-p", str(port), "-t", "a"])
        assert rc == 1, tool
        assert err.splitlines()[0] == b"Error: Connection refused", tool
    rc, _, err = run([MIDGE_PUB, "-h", "127.0.0.1", "-p", str(port), "-t", "a", "-m", "x"])
    assert (rc, err) == (1, b"Error: Connection refused\n")


# ---- midge-pub and mosquitto_pub publish the same messages

@pytest.mark.parametrize("version", ["mqttv31", "mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_modes_same_messages(broker, tmp_path, version, qos):
    f = tmp_path / "payload.bin"
    f.write_bytes(bytes(range(256)) * 3)
    got = {}
    for tool, (_, p) in TOOLS.items():
        c = Client(broker, f"watch-{tool}")
        c.subscribe(f"{tool}/#", qos=2)
        base = [p, "-p", str(broker.port), "-V", version, "-q", str(qos)]
        for args, stdin in [(["-t", f"{tool}/m", "-m", "message"], None),
                            (["-t", f"{tool}/n", "-n"], None),
                            (["-t", f"{tool}/f", "-f", str(f)], None),
                            (["-t", f"{tool}/s", "-s"], b"all of\nstdin\n"),
                            (["-t", f"{tool}/l", "-l"], b"line 1\nline 2\n\nline 4\n"),
                            (["-t", f"{tool}/r", "-m", "kept", "-r"], None),
                            (["-t", f"{tool}/rep", "-m", "again", "--repeat", "3"], None)]:
            rc, _, err = run(base + args, stdin=stdin)
            assert rc == 0, (tool, args, err)
        msgs = c.expect_messages(12 if tool == "midge" else 12)
        got[tool] = [(m.topic.split("/", 1)[1], m.payload, m.qos, m.retain) for m in msgs]
        c.close()
    assert got["midge"] == got["mosquitto"]


def test_pub_url_L(broker):
    c = Client(broker, "watch-url")
    c.subscribe("url/#", qos=1)
    rc, _, err = run([MIDGE_PUB, "-L", f"mqtt://127.0.0.1:{broker.port}/url/topic", "-m", "u"])
    assert rc == 0, err
    m = c.expect_message()
    assert (m.topic, m.payload) == ("url/topic", b"u")


def test_sub_will_flags(broker):
    """--will-* set the will of midge-sub: killing it publishes the will."""
    c = Client(broker, "watch-will")
    c.subscribe("cliwill/#", qos=1)
    p = subprocess.Popen([MIDGE_SUB, "-p", str(broker.port), "-t", "nothing", "--will-topic",
                          "cliwill/t", "--will-payload", "bye", "--will-qos", "1",
                          "--will-retain", "-k", "5"])
    try:
        c.expect_no_message(0.5)  # no will while midge-sub lives (and time to connect)
        p.kill()
        p.wait(5)
        m = c.expect_message()
        assert (m.topic, m.payload, m.qos) == ("cliwill/t", b"bye", 1)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def test_pub_v5_properties_D(broker):
    """-D publish/connect/will properties reach subscribers as mosquitto_pub's do."""
    got = {}
    for tool, (_, p) in TOOLS.items():
        c = Client(broker, f"watch-D-{tool}")
        c.subscribe(f"{tool}/#", qos=1)
        rc, _, err = run([p, "-p", str(broker.port), "-V", "mqttv5", "-q", "1", "-t",
                          f"{tool}/d", "-m", "props",
                          "-D", "connect", "user-property", "ck", "cv",
                          "-D", "publish", "user-property", "k1", "v1",
                          "-D", "publish", "user-property", "k2", "v2",
                          "-D", "publish", "content-type", "text/x",
                          "-D", "publish", "response-topic", "resp/t",
                          "-D", "publish", "correlation-data", "cd",
                          "-D", "publish", "payload-format-indicator", "1",
                          "-D", "publish", "message-expiry-interval", "60"])
        assert rc == 0, (tool, err)
        m = c.expect_message()
        pr = m.props
        got[tool] = (m.payload, pr.UserProperty, pr.ContentType, pr.ResponseTopic,
                     pr.CorrelationData, pr.PayloadFormatIndicator,
                     0 < pr.MessageExpiryInterval <= 60)
        c.close()
    assert got["midge"] == got["mosquitto"]
    assert got["midge"] == (b"props", [("k1", "v1"), ("k2", "v2")], "text/x", "resp/t", b"cd",
                            1, True)


def test_D_needs_v5(broker):
    rc, _, err = run([MIDGE_PUB, "-p", str(broker.port), "-t", "a", "-m", "x", "-D", "publish",
                      "content-type", "x"])
    assert rc == 1
    assert err == b"Error: -D given but the protocol is not MQTT v5 (add -V mqttv5).\n"
