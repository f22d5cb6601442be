/* passwd.c - midge-passwd: create and edit password files in Mosquitto's format, with
 * mosquitto_passwd's interface (options, prompts, messages and exit statuses of
 * mosquitto_passwd 2.0).
 *
 *   midge-passwd [-H sha512-pbkdf2|sha512] [-I iterations] [-c|-D] passwordfile username
 *   midge-passwd [-H ...] [-I ...] [-c] -b passwordfile username password
 *   midge-passwd [-H ...] [-I ...] -U passwordfile
 *
 * The hashes come from src/auth/ (auth_hash_password), the code the broker checks them
 * with. Where mosquitto_passwd 2.0.11 loses data Midge does not copy it: a file with a
 * line it cannot read is left unchanged (mosquitto_passwd drops the rest of the file and
 * exits 0), '#' comments and blank lines are kept (the broker reads them), -U hashes all
 * of the text after the first ':' (mosquitto_passwd stops at a second ':') and honours -I.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"

/* What mosquitto_passwd 2.0.11 (Debian 12) writes: "$7$101$...". Files with any count
 * work in both brokers; -I raises it. */
#define PASSWD_DEFAULT_ITERATIONS 101
#define PASSWD_HASH_MAX 256
#define PASSWD_MAX 65536 /* bytes of a password read from the terminal or stdin */

enum passwd_mode { MODE_SET, MODE_DELETE, MODE_UPDATE_FILE };

typedef struct passwd_opts {
    bool batch, create, remove, update; /* -b -c -D -U */
    bool sha512;                        /* -H sha512: the "$6$" format */
    int iterations;
    const char *file, *user, *password;
} passwd_opts_t;

static void usage(void)
{
    printf("midge-passwd is a tool for managing password files for Midge and mosquitto.\n\n"
           "Usage: midge-passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] "
           "passwordfile username\n"
           "       midge-passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b "
           "passwordfile username password\n"
           "       midge-passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] -U "
           "passwordfile\n"
           " -b : run in batch mode to allow passing passwords on the command line.\n"
           " -c : create a new password file. This will overwrite existing files.\n"
           " -D : delete the username rather than adding/updating its password.\n"
           " -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is "
           "recommended.\n"
           "      Mosquitto 1.6 and earlier defaulted to sha512.\n"
           " -I : the number of PBKDF2 iterations (sha512-pbkdf2 only; default %d).\n"
           " -U : update a plain text password file to use hashed passwords.\n\n"
           "See https://mosquitto.org/man/mosquitto_passwd-1.html for the file format.\n",
           PASSWD_DEFAULT_ITERATIONS);
}

/* A decimal number as mosquitto_passwd reads it (atoi: junk and signs give 0 or less,
 * which the caller refuses). */
static int parse_iterations(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 1 || v > INT_MAX)
        return 0;
    return (int)v;
}

/* Options first, then the positional arguments; 0, 1 (usage printed) or -1 (error printed).
 * The messages and their order are mosquitto_passwd's. */
static int parse_args(int argc, char **argv, passwd_opts_t *o)
{
    int i = 1;
    memset(o, 0, sizeof(*o));
    o->iterations = PASSWD_DEFAULT_ITERATIONS;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-b")) {
            o->batch = true;
        } else if (!strcmp(a, "-c")) {
            o->create = true;
        } else if (!strcmp(a, "-D")) {
            o->remove = true;
        } else if (!strcmp(a, "-U")) {
            o->update = true;
        } else if (!strcmp(a, "-H") || !strcmp(a, "-I")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "Error: %s argument given but not enough other arguments.\n", a);
                return -1;
            }
            const char *v = argv[++i];
            if (a[1] == 'H') {
                if (!strcmp(v, "sha512")) {
                    o->sha512 = true;
                } else if (!strcmp(v, "sha512-pbkdf2")) {
                    o->sha512 = false;
                } else {
                    fprintf(stderr, "Error: Unknown hash type '%s'\n", v);
                    return -1;
                }
            } else if (!(o->iterations = parse_iterations(v))) {
                fprintf(stderr, "Error: Number of iterations must be > 0.\n");
                return -1;
            }
        } else {
            break;
        }
    }
    int rest = argc - i;
    char **pos = argv + i;
    if (o->create && o->remove) {
        fprintf(stderr, "Error: -c and -D cannot be used together.\n");
        return -1;
    }
    if (o->create && o->update) {
        fprintf(stderr, "Error: -c and -U cannot be used together.\n");
        return -1;
    }
    if (o->remove && o->update) {
        fprintf(stderr, "Error: -D and -U cannot be used together.\n");
        return -1;
    }
    if (o->remove && o->batch) {
        fprintf(stderr, "Error: -b and -D cannot be used together.\n");
        return -1;
    }
    if (o->update) {
        if (rest != 1) {
            fprintf(stderr, "Error: -U argument given but password file missing.\n");
            return -1;
        }
        o->file = pos[0];
        return 0;
    }
    if (o->create) {
        if (rest < (o->batch ? 3 : 2)) {
            fprintf(stderr, o->batch ? "Error: -c argument given but password file, username, "
                                       "or password missing.\n"
                                     : "Error: -c argument given but password file or "
                                       "username missing.\n");
            return -1;
        }
    } else if (o->remove) {
        if (rest < 2) { /* extra arguments are ignored, as by mosquitto_passwd */
            fprintf(stderr, "Error: -D argument given but password file or username missing.\n");
            return -1;
        }
    } else if (rest != (o->batch ? 3 : 2)) {
        usage();
        return 1;
    }
    o->file = pos[0];
    o->user = pos[1];
    o->password = o->batch ? pos[2] : NULL;
    if (strchr(o->user, ':')) {
        fprintf(stderr, "Error: Username must not contain the ':' character.\n");
        return -1;
    }
    if (!o->user[0]) {
        /* mosquitto_passwd writes ":HASH", a line no broker can use. */
        fprintf(stderr, "Error: Username must not be empty.\n");
        return -1;
    }
    return 0;
}

/* ---- reading a password ------------------------------------------------------------- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(void)
{
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
        tty_changed = 0;
    }
}

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void on_signal(int sig)
{
    restore_tty();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from stdin after prompt, without echo when stdin is a terminal (and without
 * its "\n" / "\r\n"). Like mosquitto_passwd, the prompt and the newline after the answer
 * go to stdout in both cases. NULL at end of input. The caller frees. */
static char *read_password(const char *prompt)
{
    /* Echo goes off before the prompt shows: what is typed after it is never echoed. */
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
        struct termios t = saved_tty;
        t.c_lflag &= ~(tcflag_t)ECHO;
        t.c_lflag |= ECHONL;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        tty_changed = 1;
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
    }
    printf("%s", prompt);
    fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    bool was_tty = tty_changed;
    restore_tty();
    if (n < 0 || n > PASSWD_MAX) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* On a terminal, ECHONL has shown the newline; mosquitto_passwd prints it only after a
     * non-empty answer. */
    if (!was_tty && n > 0)
        printf("\n");
    return line;
}

/* The password twice; exit status 0, 1 (empty) or 2 (they differ), as mosquitto_passwd. */
static int prompt_password(char **out)
{
    char *a = read_password("Password: ");
    if (!a || !a[0]) {
        free(a);
        fprintf(stderr, "Error: Empty password.\n");
        return 1;
    }
    char *b = read_password("Reenter password: ");
    if (!b || !b[0]) {
        free(a);
        free(b);
        fprintf(stderr, "Error: Empty password.\n");
        return 1;
    }
    int rc = strcmp(a, b) ? 2 : 0;
    if (rc)
        fprintf(stderr, "Error: Passwords do not match.\n");
    free(b);
    if (rc)
        free(a);
    else
        *out = a;
    return rc;
}

/* ---- the file ----------------------------------------------------------------------- */

typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

static int text_add(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap : 4096;
        while (ncap < t->len + n + 1)
            ncap *= 2;
        char *np = realloc(t->p, ncap);
        if (!np)
            return -1;
        t->p = np;
        t->cap = ncap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return 0;
}

/* "USER:HASH\n" with a new hash of password. */
static int add_user_line(text_t *out, const passwd_opts_t *o, const char *user, size_t ulen,
                         const char *password)
{
    char hash[PASSWD_HASH_MAX];
    int r = o->sha512 ? auth_hash_password_sha512(password, hash, sizeof(hash))
                      : auth_hash_password(password, o->iterations, hash, sizeof(hash));
    if (r < 0) {
        fprintf(stderr, "Error: Unable to hash the password.\n");
        return -1;
    }
    if (text_add(out, user, ulen) < 0 || text_add(out, ":", 1) < 0 ||
        text_add(out, hash, strlen(hash)) < 0 || text_add(out, "\n", 1) < 0) {
        fprintf(stderr, "Error: Out of memory.\n");
        return -1;
    }
    return 0;
}

static bool skipped_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == n || s[i] == '#';
}

/* The new contents of the file: each "USER:..." line copied, replaced (o->user, when
 * password is set), dropped (o->user, for -D) or hashed (every user, for -U); comments
 * and blank lines copied. *found tells whether o->user was there. -1 on a corrupt line
 * (message printed), on which nothing is written. */
static int rewrite(const passwd_opts_t *o, const char *in, size_t inlen, const char *password,
                   text_t *out, bool *found)
{
    const char *p = in, *end = in + inlen;
    int lineno = 0;
    size_t ulen_want = o->user ? strlen(o->user) : 0;
    *found = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        size_t n = (size_t)(le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        lineno++;
        const char *colon = memchr(p, ':', n);
        if (skipped_line(p, n)) {
            if (text_add(out, p, n) < 0 || text_add(out, "\n", 1) < 0)
                goto oom;
        } else if (!colon || colon == p || colon + 1 == p + n || memchr(p, '\0', n)) {
            fprintf(stderr, "Error: Corrupt password file at line %d.\n", lineno);
            return -1;
        } else {
            size_t ulen = (size_t)(colon - p);
            bool mine = o->user && ulen == ulen_want && !memcmp(p, o->user, ulen);
            if (o->update) {
                char *plain = strndup(colon + 1, n - ulen - 1);
                if (!plain)
                    goto oom;
                int r = add_user_line(out, o, p, ulen, plain);
                free(plain);
                if (r < 0)
                    return -1;
            } else if (mine) {
                *found = true;
                if (!o->remove && add_user_line(out, o, p, ulen, password) < 0)
                    return -1;
            } else if (text_add(out, p, n) < 0 || text_add(out, "\n", 1) < 0) {
                goto oom;
            }
        }
        p = next;
    }
    return 0;
oom:
    fprintf(stderr, "Error: Out of memory.\n");
    return -1;
}

static char *slurp(FILE *f, size_t *len)
{
    text_t t = {0};
    char buf[8192];
    size_t n;
    if (text_add(&t, "", 0) < 0)
        return NULL;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (text_add(&t, buf, n) < 0) {
            free(t.p);
            return NULL;
        }
    }
    if (ferror(f)) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/* Replace path's contents with t atomically (a temporary file in the same directory,
 * renamed over it), keeping its permissions and, when allowed, its owner. */
static int replace_file(const char *path, const text_t *t)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    if (fchown(fd, st.st_uid, st.st_gid) < 0) {
        /* Not root: the file becomes ours, as any editor would leave it. */
    }
    bool ok = fchmod(fd, st.st_mode & 07777) == 0;
    size_t off = 0;
    while (ok && off < t->len) {
        ssize_t w = write(fd, t->p + off, t->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        if (ok)
            off += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "Error: Unable to write password file %s. %s.\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

/* -c: a new file with the one user, mode 0666 less the umask as mosquitto_passwd. */
static int create_file(const passwd_opts_t *o, const char *password)
{
    text_t out = {0};
    int rc = 1;
    if (add_user_line(&out, o, o->user, strlen(o->user), password) < 0)
        goto done;
    FILE *f = fopen(o->file, "w");
    if (!f) {
        fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", o->file,
                strerror(errno));
        goto done;
    }
    bool ok = fwrite(out.p, 1, out.len, f) == out.len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "Error: Unable to write password file %s. %s.\n", o->file, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(out.p);
    return rc;
}

/* Edit an existing file: set or delete o->user, or hash every line (-U). Exit status. */
static int edit_file(const passwd_opts_t *o, const char *password)
{
    text_t out = {0};
    char *in = NULL;
    size_t inlen = 0;
    int rc = 1;
    FILE *f = fopen(o->file, "r");
    if (!f) {
        fprintf(stderr, "Error: Unable to open password file %s. %s.\n", o->file, strerror(errno));
        return 1;
    }
    in = slurp(f, &inlen);
    fclose(f);
    if (!in) {
        fprintf(stderr, "Error: Unable to read password file %s.\n", o->file);
        return 1;
    }
    bool found;
    if (text_add(&out, "", 0) < 0 || rewrite(o, in, inlen, password, &out, &found) < 0)
        goto done;
    if (o->remove && !found) {
        fprintf(stderr, "Warning: User %s not found in password file.\n", o->user);
        goto done;
    }
    if (!o->remove && !o->update && !found &&
        add_user_line(&out, o, o->user, strlen(o->user), password) < 0)
        goto done;
    rc = replace_file(o->file, &out) < 0 ? 1 : 0;
done:
    free(in);
    free(out.p);
    return rc;
}

int main(int argc, char **argv)
{
    passwd_opts_t o;
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return 1;
    char *typed = NULL;
    const char *password = o.password;
    if (!o.update && !o.remove && !o.batch) {
        int pr = prompt_password(&typed);
        if (pr)
            return pr;
        password = typed;
    }
    int rc = o.create ? create_file(&o, password) : edit_file(&o, password);
    if (typed) {
        memset(typed, 0, strlen(typed));
        free(typed);
    }
    return rc;
}
