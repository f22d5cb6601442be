"""midge-passwd beside mosquitto_passwd, and password files across the two brokers.

- Files made by midge-passwd ($7$ PBKDF2-SHA512 by default, $6$ with -H sha512, -I counts)
  are accepted by Debian's mosquitto broker: the right password connects, a wrong one is
  refused (3.1.1 return code 5, what mosquitto 2.0 answers).
- Files made by mosquitto_passwd are accepted by the Midge broker (password_file +
  allow_anonymous false).
- Every option and error of the interface gives the same exit status and the same stderr
  as mosquitto_passwd; -c, -b, -D, -U edit the file as it does; the password prompt (with
  and without a terminal) reads the same.
Hashes are checked with Python's hashlib, an implementation independent of both tools.
"""
import base64
import hashlib
import os
import pty
import select
import shutil
import subprocess
import tempfile
import termios
import time

import pytest

from conftest import MIDGE_BIN, free_port, wait_listening

BIN_DIR = os.path.dirname(os.path.abspath(MIDGE_BIN))
MIDGE_PASSWD = os.path.join(BIN_DIR, "midge-passwd")
TIMEOUT = 10

pytestmark = [
    pytest.mark.skipif(not os.access(MIDGE_PASSWD, os.X_OK), reason="midge-passwd not built"),
    pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="mosquitto missing"),
]

TOOLS = {"midge": MIDGE_PASSWD, "mosquitto": "mosquitto_passwd"}


@pytest.fixture
def workdir():
    """A directory the mosquitto broker can read after it drops root for its own user."""
    d = tempfile.mkdtemp(prefix="midge-passwd-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(tool, *args, stdin=b""):
    p = subprocess.run([TOOLS[tool], *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def users(path):
    """{user: hash} of a password file, in file order (comments and blanks left out)."""
    out = {}
    for line in lines(path):
        if line and not line.startswith("#"):
            user, _, h = line.partition(":")
            out[user] = h
    return out


def hash_matches(h, password):
    """Check a "$7$..." or "$6$..." hash with hashlib."""
    parts = h.split("$")
    if parts[1] == "7":
        _, _, iterations, salt, digest = parts
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                  int(iterations))
    else:
        assert parts[1] == "6", h
        _, _, salt, digest = parts
        got = hashlib.sha512(password.encode() + base64.b64decode(salt)).digest()
    return got == base64.b64decode(digest)


def shape(h):
    """The visible format of a hash: ("7", iterations, salt bytes, hash bytes)."""
    parts = h.split("$")
    if parts[1] == "7":
        return ("7", int(parts[2]), len(base64.b64decode(parts[3])),
                len(base64.b64decode(parts[4])))
    return ("6", None, len(base64.b64decode(parts[2])), len(base64.b64decode(parts[3])))


# ---------------------------------------------------------------------------------------------
# Brokers

class Mosquitto:
    """Debian's mosquitto with a password file, on a free loopback port."""

    def __init__(self, workdir, password_file, extra=""):
        self.port = free_port()
        conf = os.path.join(workdir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {password_file}\n{extra}\n")
        os.chmod(password_file, 0o644)
        self.log = os.path.join(workdir, "mosquitto.log")
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf, "-v"], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if not wait_listening(self.port):
            self.stop()
            raise RuntimeError(f"mosquitto did not start:\n{open(self.log).read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        self.logf.close()


def pub(port, user, password, version="mqttv311"):
    """mosquitto_pub's exit status: 0, or the CONNACK return code of a refusal."""
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t", "-m", "m",
            "-V", version]
    if user is not None:
        args += ["-u", user]
    if password is not None:
        args += ["-P", password]
    return subprocess.run(args, capture_output=True, timeout=TIMEOUT).returncode


def test_midge_passwd_file_works_in_mosquitto(workdir):
    pw = os.path.join(workdir, "passwd")
    assert run("midge", "-c", "-b", pw, "alice", "s3cret")[0] == 0
    assert run("midge", "-H", "sha512", "-b", pw, "bob", "bob pw")[0] == 0
    assert run("midge", "-I", "7", "-b", pw, "carol", "ünï:code")[0] == 0
    assert run("midge", "-H", "sha512-pbkdf2", "-I", "20000", "-b", pw, "dave smith", "x")[0] == 0
    b = Mosquitto(workdir, pw)
    try:
        assert pub(b.port, "alice", "s3cret") == 0
        assert pub(b.port, "bob", "bob pw") == 0
        assert pub(b.port, "carol", "ünï:code") == 0
        assert pub(b.port, "dave smith", "x") == 0
        assert pub(b.port, "alice", "s3cret", "mqttv5") == 0
        # mosquitto 2.0 answers 5 (not authorised) to a wrong password on 3.1.1, 0x87 on 5.0.
        assert pub(b.port, "alice", "wrong") == 5
        assert pub(b.port, "bob", "bob") == 5
        assert pub(b.port, "carol", "ünï") == 5
        assert pub(b.port, "nobody", "s3cret") == 5
        assert pub(b.port, "alice", "wrong", "mqttv5") == 135
    finally:
        b.stop()
    log = open(b.log).read()
    assert "Invalid password hash" not in log and "removing entry" not in log, log


@pytest.mark.midge_only
def test_mosquitto_passwd_file_works_in_midge(workdir, broker_factory):
    """A file made by mosquitto_passwd, loaded by the Midge broker (the lead's integration:
    3.1.1 return code 4 for a wrong password or unknown user, 5 without a username)."""
    pw = os.path.join(workdir, "passwd")
    assert run("mosquitto", "-c", "-b", pw, "alice", "s3cret")[0] == 0
    assert run("mosquitto", "-H", "sha512", "-b", pw, "bob", "bob pw")[0] == 0
    assert run("mosquitto", "-I", "7", "-b", pw, "carol", "ünïcode")[0] == 0
    b = broker_factory(config=f"allow_anonymous false\npassword_file {pw}")
    assert pub(b.port, "alice", "s3cret") == 0
    assert pub(b.port, "bob", "bob pw") == 0
    assert pub(b.port, "carol", "ünïcode") == 0
    assert pub(b.port, "alice", "s3cret", "mqttv5") == 0
    assert pub(b.port, "alice", "wrong") == 4
    assert pub(b.port, "nobody", "s3cret") == 4
    assert pub(b.port, None, None) == 5
    assert pub(b.port, "alice", "wrong", "mqttv5") == 134
    assert pub(b.port, None, None, "mqttv5") == 135


# ---------------------------------------------------------------------------------------------
# The interface, compared with mosquitto_passwd

ERROR_CASES = [
    ("-c", "-D", "{f}", "u"),
    ("-c", "-U", "{f}"),
    ("-U", "-c", "{f}"),
    ("-U", "-D", "{f}"),
    ("-D", "-b", "{f}", "u", "p"),
    ("-b", "-D", "{f}", "u"),
    ("-H",),
    ("-I",),
    ("-H", "md5", "-b", "{f}", "u", "p"),
    ("-I", "0", "-b", "{f}", "u", "p"),
    ("-I", "-1", "-b", "{f}", "u", "p"),
    ("-I", "abc", "-b", "{f}", "u", "p"),
    ("-U",),
    ("-U", "{f}", "extra"),
    ("-U", "{missing}"),
    ("-c", "{f}"),
    ("-c", "-b", "{f}", "u"),
    ("-D", "{f}"),
    ("-D", "{missing}", "u"),
    ("-b", "{missing}", "u", "p"),
    ("-c", "-b", "{nodir}", "u", "p"),
    ("-b", "{f}", "a:b", "p"),
    ("-D", "{f}", "nobody"),
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=lambda a: " ".join(a))
def test_errors_as_mosquitto_passwd(workdir, args):
    """Same exit status, same stderr, same (unchanged) file."""
    results = {}
    for tool in TOOLS:
        d = os.path.join(workdir, tool)
        os.mkdir(d)
        f = os.path.join(d, "pw")
        with open(f, "w") as fh:
            fh.write("u:$7$101$PGipsOnPrz25vLoz$FCb3L1aVDV9rigt1Xz8NIigu1sJypGn6tsn+M49BbMB9izWN"
                     "OCaXB0HN4dS1MQAuy3z8bRpqwOq1VzMqZkWSbw==\n")
        before = open(f).read()
        real = [a.format(f=f, missing=os.path.join(d, "missing"),
                         nodir=os.path.join(d, "no", "such", "dir")) for a in args]
        rc, out, err = run(tool, *real)
        results[tool] = (rc, out.replace(d, "DIR"), err.replace(d, "DIR"))
        assert open(f).read() == before, f"{tool} changed the file"
    midge, mosq = results["midge"], results["mosquitto"]
    assert midge[0] == mosq[0] != 0, results
    assert midge[2] == mosq[2], results
    assert bool(midge[1]) == bool(mosq[1]), results  # usage on stdout, or nothing


def test_usage(workdir):
    for args in ([], ["f"], ["-b", "f"], ["-b", "f", "u"], ["f", "u", "extra"], ["-x", "f", "u"]):
        rc, out, err = run("midge", *args)
        assert (rc, err) == (1, ""), args
        assert out.startswith("midge-passwd is a tool for managing password files"), out
        assert run("mosquitto", *args)[0] == 1


def test_create_batch_update_delete(workdir):
    """-c, -b, -D on the same sequence with both tools: same users in the same order, with
    hashes of the same shape that hashlib verifies."""
    files = {}
    for tool in TOOLS:
        f = files[tool] = os.path.join(workdir, tool)
        steps = [
            ("-c", "-b", f, "alice", "one"),
            ("-b", f, "bob", "two"),
            ("-H", "sha512", "-b", f, "carol", "three"),
            ("-I", "9", "-b", f, "dave", "four"),
            ("-b", f, "alice", "one again"),   # replaced in place
            ("-D", f, "bob", "extra arguments are ignored"),
            ("-c", "-b", f + ".2", "x", "y", "ignored extra"),
            ("-b", f, "empty", ""),
        ]
        for step in steps:
            assert run(tool, *step)[0] == 0, (tool, step)
    midge, mosq = users(files["midge"]), users(files["mosquitto"])
    assert list(midge) == list(mosq) == ["alice", "carol", "dave", "empty"]
    expected = {"alice": "one again", "carol": "three", "dave": "four", "empty": ""}
    for u, password in expected.items():
        assert shape(midge[u]) == shape(mosq[u]), u
        assert hash_matches(midge[u], password), u
        assert hash_matches(mosq[u], password), u
    assert shape(midge["alice"]) == ("7", 101, 12, 64)
    assert shape(midge["carol"]) == ("6", None, 12, 64)
    assert shape(midge["dave"]) == ("7", 9, 12, 64)
    assert list(users(files["midge"] + ".2")) == ["x"]


def test_create_overwrites(workdir):
    f = os.path.join(workdir, "pw")
    assert run("midge", "-c", "-b", f, "a", "1")[0] == 0
    assert run("midge", "-b", f, "b", "2")[0] == 0
    assert run("midge", "-c", "-b", f, "c", "3")[0] == 0
    assert list(users(f)) == ["c"]


def test_edit_keeps_mode_comments_and_blank_lines(workdir):
    """Midge's broker reads comments and blank lines, so midge-passwd keeps them (where
    mosquitto_passwd 2.0.11 reports a corrupt file and drops the rest)."""
    f = os.path.join(workdir, "pw")
    assert run("midge", "-c", "-b", f, "a", "1")[0] == 0
    with open(f, "a") as fh:
        fh.write("# the team\n\n")
    os.chmod(f, 0o640)
    assert run("midge", "-b", f, "b", "2")[0] == 0
    assert run("midge", "-b", f, "a", "3")[0] == 0
    got = lines(f)
    assert got[1:3] == ["# the team", ""] and got[0].startswith("a:") and got[3].startswith("b:")
    assert hash_matches(users(f)["a"], "3")
    assert os.stat(f).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(workdir)) == ["pw"]  # no temporary file left behind


def test_corrupt_file_is_left_unchanged(workdir):
    f = os.path.join(workdir, "pw")
    for bad in ("no colon here", ":emptyuser", "emptyhash:"):
        content = "a:$6$x$y\n" + bad + "\nb:$6$x$y\n"
        with open(f, "w") as fh:
            fh.write(content)
        rc, out, err = run("midge", "-b", f, "c", "p")
        assert (rc, out, err) == (1, "", "Error: Corrupt password file at line 2.\n")
        assert open(f).read() == content
        rc, out, err = run("midge", "-U", f)
        assert (rc, err) == (1, "Error: Corrupt password file at line 2.\n")
        assert open(f).read() == content


def test_update_plain_text_file(workdir):
    """-U hashes every password in place, as mosquitto_passwd -U; both results work."""
    for tool in TOOLS:
        f = os.path.join(workdir, tool)
        with open(f, "w") as fh:
            fh.write("alice:one\nbob:two words\r\ncarol:three\n")
        assert run(tool, "-U", f) == (0, "", "")
        u = users(f)
        assert list(u) == ["alice", "bob", "carol"]
        assert hash_matches(u["alice"], "one") and hash_matches(u["bob"], "two words")
        assert shape(u["carol"]) == ("7", 101, 12, 64)
    f = os.path.join(workdir, "midge")
    # Midge keeps comments, hashes all of the text after the first ':' and honours -H / -I.
    with open(f, "w") as fh:
        fh.write("# plain\nalice:p:w\n")
    assert run("midge", "-H", "sha512", "-U", f) == (0, "", "")
    assert lines(f)[0] == "# plain"
    assert hash_matches(users(f)["alice"], "p:w")
    assert shape(users(f)["alice"])[0] == "6"
    with open(f, "w") as fh:
        fh.write("alice:pw\n")
    assert run("midge", "-I", "33", "-U", f) == (0, "", "")
    assert shape(users(f)["alice"]) == ("7", 33, 12, 64)


# ---------------------------------------------------------------------------------------------
# The prompt

@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("answers,rc,err", [
    ((b"pw1\n", b"pw1\n"), 0, ""),
    ((b"pw1\n", b"pw2\n"), 2, "Error: Passwords do not match.\n"),
    ((b"\n", b"\n"), 1, "Error: Empty password.\n"),
    ((b"pw1\n", b"\n"), 1, "Error: Empty password.\n"),
])
def test_prompt_without_tty(workdir, tool, answers, rc, err):
    f = os.path.join(workdir, "pw")
    got = run(tool, "-c", f, "alice", stdin=b"".join(answers))
    # The newline after an answer is printed only when the answer is not empty.
    want_out = "Password: " + ("\nReenter password: " if answers[0] != b"\n" else "") + \
        ("\n" if answers[0] != b"\n" and answers[1] != b"\n" else "")
    assert got == (rc, want_out, err)
    if rc == 0:
        assert hash_matches(users(f)["alice"], "pw1")
    else:
        assert not os.path.exists(f)  # -c does not truncate before the password is known


def pty_session(argv, answers, timeout=TIMEOUT):
    """Run argv on a new pseudo-terminal, typing each answer after its prompt appears.

    Returns (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    shown = b""
    deadline = time.monotonic() + timeout
    typed = 0
    try:
        while time.monotonic() < deadline:
            # Type the next answer once its prompt is on the screen.
            if typed < len(answers) and shown.count(b"assword: ") > typed and \
                    not termios.tcgetattr(fd)[3] & termios.ECHO:
                os.write(fd, answers[typed])
                typed += 1
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                shown += data
        else:
            os.kill(pid, 9)
            raise AssertionError(f"{argv[0]} did not finish; terminal showed {shown!r}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown


@pytest.mark.parametrize("tool", list(TOOLS))
def test_prompt_on_terminal_does_not_echo(workdir, tool):
    f = os.path.join(workdir, "pw")
    exe = shutil.which(TOOLS[tool]) or TOOLS[tool]
    rc, shown = pty_session([exe, "-c", f, "bob"], [b"t0p secret\n", b"t0p secret\n"])
    assert rc == 0, shown
    assert shown == b"Password: \r\nReenter password: \r\n"
    assert hash_matches(users(f)["bob"], "t0p secret")
    rc, shown = pty_session([exe, f, "bob"], [b"one\n", b"two\n"])
    assert rc == 2
    assert shown == b"Password: \r\nReenter password: \r\nError: Passwords do not match.\r\n"
    assert hash_matches(users(f)["bob"], "t0p secret")


def test_terminal_echo_restored_after_interrupt(workdir):
    """Ctrl-C at the prompt leaves the terminal as it was (echo on)."""
    f = os.path.join(workdir, "pw")
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(MIDGE_PASSWD, [MIDGE_PASSWD, "-c", f, "bob"])
        finally:
            os._exit(127)
    try:
        shown = b""
        deadline = time.monotonic() + TIMEOUT
        while b"Password: " not in shown and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                shown += os.read(fd, 4096)
        assert b"Password: " in shown
        assert not termios.tcgetattr(fd)[3] & termios.ECHO  # off before the prompt shows
        os.write(fd, b"\x03")  # Ctrl-C: SIGINT from the terminal
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status)
        assert termios.tcgetattr(fd)[3] & termios.ECHO
    finally:
        os.close(fd)
    assert not os.path.exists(f)

