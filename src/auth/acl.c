/* acl.c - the ACL file in Mosquitto's syntax, and the decision the broker asks for on
 * every PUBLISH, SUBSCRIBE and delivery when an ACL file is set.
 *
 * The file: '#' comments and blank lines; "topic [read|write|readwrite|deny] FILTER" lines
 * that belong to the anonymous section until the first "user NAME" line and to that user's
 * section after it; "pattern [ACCESS] FILTER" lines that apply to every client, with %c
 * and %u standing for its client id and username.
 *
 * The decision (auth_acl_check) runs on the delivery path, once per message and
 * recipient, so it allocates nothing: a pattern is matched against the topic directly,
 * comparing the client id or username where %c or %u stands, never by building the
 * substituted filter.
 */
#include "auth_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------------------ */

static int list_add(acl_list_t *l, const acl_rule_t *r)
{
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        acl_rule_t *n = realloc(l->rules, ncap * sizeof(*n));
        if (!n)
            return -1;
        l->rules = n;
        l->cap = ncap;
    }
    l->rules[l->count++] = *r;
    return 0;
}

static void list_cleanup(acl_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->rules[i].filter);
    free(l->rules);
    memset(l, 0, sizeof(*l));
}

/* Why f[0..n) is not a valid subscription filter (MQTT 4.7.1: '#' only as the whole last
 * level, '+' only as a whole level), or NULL when it is one. */
static const char *filter_error(const char *f, size_t n)
{
    if (n == 0)
        return "is empty";
    for (size_t i = 0; i < n; i++) {
        bool level_start = i == 0 || f[i - 1] == '/';
        bool level_end = i + 1 == n || f[i + 1] == '/';
        if (f[i] == '#' && !(level_start && i + 1 == n))
            return "has '#' that is not the whole last level";
        if (f[i] == '+' && !(level_start && level_end))
            return "has '+' that is not a whole level";
    }
    return NULL;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *word_end(const char *p, const char *end)
{
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    return p;
}

/* The rest of a "topic" or "pattern" line: "[ACCESS] FILTER". The access word is optional
 * only when the filter has no space (Mosquitto's rule): with two words or more, the first
 * must be an access word. */
static int parse_rule(const char *name, int lineno, const char *kw, const char *p, const char *end,
                      acl_rule_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->access = AUTH_READ | AUTH_WRITE;
    if (p == end)
        return auth_fail(err, errlen, name, lineno, "'%s' without a topic filter", kw);
    const char *w = p, *we = word_end(p, end);
    const char *filter = p;
    if (we < end) {
        size_t wn = (size_t)(we - w);
        if (word_is(w, wn, "read"))
            r->access = AUTH_READ;
        else if (word_is(w, wn, "write"))
            r->access = AUTH_WRITE;
        else if (word_is(w, wn, "readwrite"))
            r->access = AUTH_READ | AUTH_WRITE;
        else if (word_is(w, wn, "deny"))
            r->deny = true, r->access = 0;
        else
            return auth_fail(err, errlen, name, lineno,
                             "%s: invalid access type '%.*s' (read, write, readwrite or deny; "
                             "a filter with spaces needs one)",
                             kw, (int)wn, w);
        filter = skip_blanks(we, end);
    }
    size_t fn = (size_t)(end - filter);
    const char *why = filter_error(filter, fn);
    if (why)
        return auth_fail(err, errlen, name, lineno, "%s: the topic filter '%.*s' %s", kw, (int)fn,
                         filter, why);
    r->filter = strndup(filter, fn);
    if (!r->filter)
        return auth_fail(err, errlen, name, lineno, "out of memory");
    r->len = fn;
    return 0;
}

/* The section of "user NAME", created on its first line. */
static acl_list_t *user_section(auth_t *a, const char *uname, size_t n)
{
    acl_user_t *u = NULL;
    HASH_FIND(hh, a->acl_users, uname, n, u);
    if (u)
        return &u->rules;
    u = calloc(1, sizeof(*u));
    if (!u || !(u->name = strndup(uname, n))) {
        free(u);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, a->acl_users, u->name, n, u);
    if (!u->hh.tbl) {
        free(u->name);
        free(u);
        return NULL;
    }
    return &u->rules;
}

/* Parse the ACL file (see auth_int.h). */
int acl_parse(auth_t *a, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    const char *pos = text, *end = text + len, *line;
    size_t n;
    int lineno = 0;
    acl_list_t *section = &a->anonymous;
    while (auth_next_line(&pos, end, &line, &n)) {
        lineno++;
        if (memchr(line, '\0', n))
            return auth_fail(err, errlen, name, lineno, "NUL byte in the line");
        const char *le = line + n, *kw = skip_blanks(line, le);
        if (kw == le || *kw == '#')
            continue;
        const char *kwe = word_end(kw, le), *rest = skip_blanks(kwe, le);
        size_t kwn = (size_t)(kwe - kw);
        if (word_is(kw, kwn, "user")) {
            if (rest == le)
                return auth_fail(err, errlen, name, lineno, "'user' without a username");
            section = user_section(a, rest, (size_t)(le - rest));
            if (!section)
                return auth_fail(err, errlen, name, lineno, "out of memory");
        } else if (word_is(kw, kwn, "topic") || word_is(kw, kwn, "pattern")) {
            bool pattern = kw[0] == 'p';
            acl_rule_t r;
            if (parse_rule(name, lineno, pattern ? "pattern" : "topic", rest, le, &r, err, errlen) <
                0)
                return -1;
            r.pattern = pattern;
            r.uses_user = pattern && strstr(r.filter, "%u") != NULL;
            if (list_add(pattern ? &a->patterns : section, &r) < 0) {
                free(r.filter);
                return auth_fail(err, errlen, name, lineno, "out of memory");
            }
        } else {
            return auth_fail(err, errlen, name, lineno,
                             "unknown keyword '%.*s' (user, topic or pattern)", (int)kwn, kw);
        }
    }
    return 0;
}

void acl_cleanup(auth_t *a)
{
    list_cleanup(&a->anonymous);
    list_cleanup(&a->patterns);
    acl_user_t *u, *tmp;
    HASH_ITER(hh, a->acl_users, u, tmp)
    {
        HASH_DEL(a->acl_users, u);
        list_cleanup(&u->rules);
        free(u->name);
        free(u);
    }
}

/* ---- decisions ---------------------------------------------------------------------- */

/* What %c and %u stand for; a NULL value makes a pattern that uses it match nothing. */
typedef struct acl_subst {
    const char *cid, *user;
    size_t cid_len, user_len;
} acl_subst_t;

/* Does rule r's filter cover subject s[0..sn)? s is a topic name (does the filter match
 * it?) or a subscription filter (does the rule's filter match every topic the
 * subscription can match?). Both walk the two level by level; a %c or %u of a pattern
 * compares the client's value with the subject's bytes in place, so a value with '/'
 * spans levels exactly as Mosquitto's substituted string does. */
static bool rule_covers(const acl_rule_t *r, const char *s, size_t sn, const acl_subst_t *v)
{
    const char *f = r->filter;
    size_t fn = r->len, fi = 0, si = 0;
    /* MQTT-4.7.2-1: a filter starting with a wildcard does not match a topic starting
     * with '$'. */
    bool dollar = sn > 0 && s[0] == '$';
    for (;;) {
        if (f[fi] == '#')
            return !(fi == 0 && dollar);
        if (f[fi] == '+' && (fi + 1 == fn || f[fi + 1] == '/')) {
            if ((fi == 0 && dollar) || (si < sn && s[si] == '#'))
                return false; /* one level does not cover a subscription's '#' */
            while (si < sn && s[si] != '/')
                si++;
            fi++;
        } else {
            while (fi < fn && f[fi] != '/') {
                if (r->pattern && f[fi] == '%' && fi + 1 < fn &&
                    (f[fi + 1] == 'c' || f[fi + 1] == 'u')) {
                    const char *val = f[fi + 1] == 'c' ? v->cid : v->user;
                    size_t vn = f[fi + 1] == 'c' ? v->cid_len : v->user_len;
                    if (!val || sn - si < vn || memcmp(s + si, val, vn) != 0)
                        return false;
                    si += vn;
                    fi += 2;
                } else {
                    if (si == sn || s[si] != f[fi])
                        return false;
                    si++;
                    fi++;
                }
            }
            if (si < sn && s[si] != '/')
                return false;
        }
        if (fi == fn)
            return si == sn;
        if (si == sn) /* "a/#" also matches "a" (MQTT 4.7.1.2) */
            return fn - fi == 2 && f[fi + 1] == '#';
        fi++;
        si++;
    }
}

/* The access bits the list grants for subject, or -1 when a deny line of it covers it. */
static int list_decide(const acl_list_t *l, const char *s, size_t sn, const acl_subst_t *v)
{
    unsigned granted = 0;
    if (!l)
        return 0;
    for (size_t i = 0; i < l->count; i++) {
        const acl_rule_t *r = &l->rules[i];
        if (r->pattern && r->uses_user && !v->user)
            continue;
        if (!rule_covers(r, s, sn, v))
            continue;
        if (r->deny)
            return -1;
        granted |= r->access;
    }
    return (int)granted;
}

/* A client id or username with a wildcard character would turn a pattern into a broader
 * filter in Mosquitto before 1.4.12 (CVE-2017-7650); Mosquitto now applies no pattern at
 * all to such a client (whichever of %c and %u the pattern uses), and neither does Midge. */
static bool has_wildcard(const char *s)
{
    return s && strpbrk(s, "+#");
}

/* May this client do this? (see auth.h). Deny lines of the client's section and of the
 * patterns win over every grant; access is granted when the grants together give every
 * bit asked for. */
bool auth_acl_check(const auth_t *a, const char *username, const char *client_id, const char *topic,
                    size_t topic_len, int access)
{
    if (!a || !a->has_acl)
        return true;
    if (!topic || topic_len == 0)
        return false;
    unsigned need = (unsigned)access & (AUTH_READ | AUTH_WRITE);
    if (access & AUTH_SUBSCRIBE)
        need |= AUTH_READ;
    if (need == 0)
        return false;
    const acl_list_t *section = &a->anonymous;
    if (username) {
        acl_user_t *u = NULL;
        HASH_FIND(hh, a->acl_users, username, strlen(username), u);
        section = u ? &u->rules : NULL;
    }
    acl_subst_t v = {0};
    if (client_id) {
        v.cid = client_id;
        v.cid_len = strlen(client_id);
    }
    if (username) {
        v.user = username;
        v.user_len = strlen(username);
    }
    int own = list_decide(section, topic, topic_len, &v);
    if (own < 0)
        return false;
    int pat = 0;
    if (!has_wildcard(client_id) && !has_wildcard(username))
        pat = list_decide(&a->patterns, topic, topic_len, &v);
    if (pat < 0)
        return false;
    return (((unsigned)own | (unsigned)pat) & need) == need;
}
