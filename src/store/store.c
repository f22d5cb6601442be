/* store.c - the SQLite store: schema and its checks, the event queue, the store thread with
 * group commit, restore at start-up (see store.h).
 *
 * Tables (readable with the sqlite3 shell: text for topics and ids, blobs for payloads):
 *   meta(key, value)            schema facts and alive_ms, the time of the last commit
 *   msgs(id, topic, payload, props, qos, retain, expire_at)   each message once
 *   retained(topic, msg_id)
 *   sessions(client_id, version, expiry, offline_at, username, will_msg, will_qos,
 *            will_retain, will_delay)
 *   subs(client_id, filter, qos, no_local, retain_as_published, retain_handling, sub_id)
 *   deliveries(id, client_id, msg_id, qos, retain, state, pid, sub_ids)  queued/in flight
 *   rx_qos2(client_id, pid)     inbound QoS 2 ids awaiting PUBREL
 * Times are wall-clock milliseconds since the epoch, so that expiry counts the downtime.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uthash.h>

#include "broker/log.h"

/* Periodic mode commits early when this many changes wait. */
#define STORE_PERIODIC_MAX_QUEUED 100000

enum ev_kind {
    EV_MSG_PUT = 1,
    EV_RETAIN_SET,
    EV_RETAIN_DEL,
    EV_SESSION_PUT,
    EV_SESSION_DEL,
    EV_SUB_PUT,
    EV_SUB_DEL,
    EV_DLV_PUT,
    EV_DLV_STATE,
    EV_DLV_DEL,
    EV_RX_PUT,
    EV_RX_DEL,
    EV_ACK,
};

/* One queued change. Strings and blobs follow the struct: s[i] points into data. */
typedef struct ev {
    struct ev *next;
    UT_hash_handle hh; /* MSG_PUT, DLV_PUT: the batch's pending rows by id (fold_batch) */
    int refs;          /* MSG_PUT: references to it queued in the same batch */
    bool dropped;      /* MSG_PUT: a delivery of it was cancelled in the batch */
    bool skip;         /* folded away: not applied */
    uint8_t kind;
    uint8_t qos, state, retain_handling, nsub, version;
    bool flag_a, flag_b; /* retain/has_expiry, no_local/retain_as_published, will_retain */
    uint16_t pid;
    uint32_t u32; /* expiry, sub_id */
    uint32_t will_delay;
    uint64_t id, msg_id;
    int64_t t; /* expire_at_ms, offline_at_ms */
    uint32_t sub_ids[STORE_MAX_SUB_IDS];
    void *token;
    const uint8_t *s[3];
    size_t n[3];
    bool has_s1; /* s[1] given (a username may be empty but present) */
    uint8_t data[];
} ev_t;

/* Events live in chunks: a thread fills its own and hands them over whole with
 * store_flush, and the store thread frees a batch's chunks once it is applied. One malloc
 * and one free per chunk, not per event, and a batch lies in few contiguous runs of memory
 * (the store thread walks it three times). */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
} chunk_t;

#define CHUNK_MIN 2048
#define CHUNK_MAX (256 * 1024)

enum stmt_id {
    ST_MSG_PUT,
    ST_RETAIN_GET,
    ST_RETAIN_SET,
    ST_RETAIN_DEL,
    ST_SESSION_GET_WILL,
    ST_SESSION_PUT,
    ST_SESSION_DEL,
    ST_SESSION_DEL_SUBS,
    ST_SESSION_DEL_DLVS,
    ST_SESSION_DEL_RX,
    ST_SUB_PUT,
    ST_SUB_DEL,
    ST_DLV_PUT,
    ST_DLV_STATE,
    ST_DLV_DEL,
    ST_MSG_GC_ONE,
    ST_MSG_GC_ALL,
    ST_RX_PUT,
    ST_RX_DEL,
    ST_ALIVE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_MSG_PUT] = "INSERT OR IGNORE INTO msgs(id, topic, payload, props, qos, retain, expire_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_RETAIN_GET] = "SELECT msg_id FROM retained WHERE topic = ?1",
    [ST_RETAIN_SET] = "INSERT OR REPLACE INTO retained(topic, msg_id) VALUES (?1, ?2)",
    [ST_RETAIN_DEL] = "DELETE FROM retained WHERE topic = ?1",
    [ST_SESSION_GET_WILL] = "SELECT will_msg FROM sessions WHERE client_id = ?1",
    [ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(client_id, version, expiry, offline_at, "
                       "username, will_msg, will_qos, will_retain, will_delay, listener) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_SESSION_DEL] = "DELETE FROM sessions WHERE client_id = ?1",
    [ST_SESSION_DEL_SUBS] = "DELETE FROM subs WHERE client_id = ?1",
    [ST_SESSION_DEL_DLVS] = "DELETE FROM deliveries WHERE client_id = ?1",
    [ST_SESSION_DEL_RX] = "DELETE FROM rx_qos2 WHERE client_id = ?1",
    [ST_SUB_PUT] = "INSERT OR REPLACE INTO subs(client_id, filter, qos, no_local, "
                   "retain_as_published, retain_handling, sub_id) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_SUB_DEL] = "DELETE FROM subs WHERE client_id = ?1 AND filter = ?2",
    [ST_DLV_PUT] = "INSERT OR REPLACE INTO deliveries(id, client_id, msg_id, qos, retain, state, "
                   "pid, sub_ids) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_DLV_STATE] = "UPDATE deliveries SET state = ?2, pid = ?3 WHERE id = ?1",
    [ST_DLV_DEL] = "DELETE FROM deliveries WHERE id = ?1",
    [ST_MSG_GC_ONE] = "DELETE FROM msgs WHERE id = ?1 "
                      "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE msg_id = ?1) "
                      "AND NOT EXISTS (SELECT 1 FROM retained WHERE msg_id = ?1) "
                      "AND NOT EXISTS (SELECT 1 FROM sessions WHERE will_msg = ?1)",
    [ST_MSG_GC_ALL] = "DELETE FROM msgs WHERE "
                      "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = msgs.id) "
                      "AND NOT EXISTS (SELECT 1 FROM retained r WHERE r.msg_id = msgs.id) "
                      "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.will_msg = msgs.id)",
    [ST_RX_PUT] = "INSERT OR IGNORE INTO rx_qos2(client_id, pid) VALUES (?1, ?2)",
    [ST_RX_DEL] = "DELETE FROM rx_qos2 WHERE client_id = ?1 AND pid = ?2",
    [ST_ALIVE] = "INSERT OR REPLACE INTO meta(key, value) VALUES ('alive_ms', ?1)",
};

/* Version 1. A later version adds its step to `migrations` and bumps STORE_SCHEMA_VERSION. */
static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE msgs(id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,"
    " props BLOB, qos INTEGER NOT NULL, retain INTEGER NOT NULL, expire_at INTEGER);"
    "CREATE TABLE retained(topic TEXT PRIMARY KEY, msg_id INTEGER NOT NULL);"
    "CREATE INDEX retained_msg ON retained(msg_id);"
    "CREATE TABLE sessions(client_id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " expiry INTEGER NOT NULL, offline_at INTEGER, username TEXT, listener INTEGER NOT NULL,"
    " will_msg INTEGER, will_qos INTEGER, will_retain INTEGER, will_delay INTEGER);"
    "CREATE INDEX sessions_will ON sessions(will_msg);"
    "CREATE TABLE subs(client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL,"
    " no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL,"
    " retain_handling INTEGER NOT NULL, sub_id INTEGER NOT NULL,"
    " PRIMARY KEY(client_id, filter));"
    "CREATE TABLE deliveries(id INTEGER PRIMARY KEY, client_id TEXT NOT NULL,"
    " msg_id INTEGER NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
    " state INTEGER NOT NULL, pid INTEGER NOT NULL, sub_ids TEXT);"
    "CREATE INDEX deliveries_client ON deliveries(client_id, id);"
    "CREATE INDEX deliveries_msg ON deliveries(msg_id);"
    "CREATE TABLE rx_qos2(client_id TEXT NOT NULL, pid INTEGER NOT NULL,"
    " PRIMARY KEY(client_id, pid));";

/* migrations[v] turns schema v into v + 1. None yet: version 1 is the first. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {NULL};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char path[4096];
    bool periodic;
    bool sync_full;
    uint32_t autosave_interval;
    atomic_uint_fast64_t next_id;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ev_t *head, *tail; /* under lock */
    chunk_t *chunks;   /* under lock: the chunks holding the queued events */
    size_t queued;     /* under lock: events in the queue */
    bool stop;         /* under lock */
    store_done_fn done;
    void *done_arg;
    void **tokens; /* store thread: the batch's acknowledgements for done */
    size_t tokens_cap;
    bool failing;             /* the last transaction failed (logged once until one succeeds) */
    int64_t alive_written_ms; /* last alive_ms committed */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- opening and checking ------------------------------------------------------------ */

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One integer from a query; -1 when it fails (rc in *rc). */
static int64_t query_int(sqlite3 *db, const char *sql, int *rc)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    *rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_step(s);
        if (*rc == SQLITE_ROW) {
            v = sqlite3_column_int64(s, 0);
            *rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return v;
}

static int create_schema(store_t *st, char *err, size_t errlen)
{
    char sql[64];
    if (exec(st->db, "BEGIN") != SQLITE_OK || exec(st->db, schema_v1) != SQLITE_OK)
        goto fail;
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STORE_APPLICATION_ID);
    if (exec(st->db, sql) != SQLITE_OK)
        goto fail;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    if (exec(st->db, sql) != SQLITE_OK || exec(st->db, "COMMIT") != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "persistence file %s: cannot create the schema: %s", st->path,
             sqlite3_errmsg(st->db));
    exec(st->db, "ROLLBACK");
    return -1;
}

static int migrate(store_t *st, int from, char *err, size_t errlen)
{
    for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (exec(st->db, "BEGIN") != SQLITE_OK ||
            (migrations[v] && exec(st->db, migrations[v]) != SQLITE_OK) ||
            exec(st->db, sql) != SQLITE_OK || exec(st->db, "COMMIT") != SQLITE_OK) {
            snprintf(err, errlen, "persistence file %s: migrating schema %d to %d failed: %s",
                     st->path, v, v + 1, sqlite3_errmsg(st->db));
            exec(st->db, "ROLLBACK");
            return -1;
        }
        log_msg(LOG_NOTICE, "persistence file %s: schema migrated from version %d to %d", st->path,
                v, v + 1);
    }
    return 0;
}

/* Is the open file Midge's? Creates the schema in a new (empty) file. Nothing is written
 * to a file that is refused. */
static int check_file(store_t *st, char *err, size_t errlen)
{
    int rc;
    int64_t appid = query_int(st->db, "PRAGMA application_id", &rc);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen,
                 "persistence file %s is not a Midge database (%s); refusing "
                 "to use or overwrite it",
                 st->path, sqlite3_errstr(rc));
        return -1;
    }
    int64_t ntables = query_int(st->db, "SELECT count(*) FROM sqlite_schema", &rc);
    int64_t version = query_int(st->db, "PRAGMA user_version", &rc);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "persistence file %s cannot be read: %s", st->path,
                 sqlite3_errstr(rc));
        return -1;
    }
    if (appid == 0 && ntables == 0 && version == 0)
        return create_schema(st, err, errlen);
    if (appid != STORE_APPLICATION_ID) {
        snprintf(err, errlen,
                 "persistence file %s is an SQLite database of another "
                 "application (application_id %lld); refusing to use or overwrite it",
                 st->path, (long long)appid);
        return -1;
    }
    if (version > STORE_SCHEMA_VERSION || version < 0) {
        snprintf(err, errlen,
                 "persistence file %s has schema version %lld, newer than this "
                 "Midge's %d",
                 st->path, (long long)version, STORE_SCHEMA_VERSION);
        return -1;
    }
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check", -1, &s, NULL);
    const char *res = NULL;
    if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        res = (const char *)sqlite3_column_text(s, 0);
    if (!res || strcmp(res, "ok") != 0) {
        snprintf(err, errlen,
                 "persistence file %s is corrupt (%s); refusing to use or "
                 "overwrite it",
                 st->path, res ? res : sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    if (version < STORE_SCHEMA_VERSION)
        return migrate(st, (int)version, err, errlen);
    return 0;
}

/* Switch to WAL; false when SQLite kept another journal mode (a file system without
 * shared memory, for one): commits would then not survive the way this store promises. */
static bool wal_mode(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(s, 0);
    bool ok = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    return ok;
}

static void disconnect_db(store_t *st)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(st->st[i]);
        st->st[i] = NULL;
    }
    if (st->db)
        sqlite3_close(st->db);
    st->db = NULL;
}

static void free_chunks(chunk_t *c)
{
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

static void store_free(store_t *st)
{
    free_chunks(st->chunks); /* events never applied (a failed start) */
    free(st->tokens);
    disconnect_db(st);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
}

/* Open the connection: the file's checks (check: at start-up), WAL, synchronous, the
 * prepared statements. Returns 0, or -1 with err set and the connection closed. */
static int connect_db(store_t *st, bool check, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(
        st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "persistence file %s cannot be opened: %s", st->path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 2000);
    if (check && check_file(st, err, errlen) < 0)
        goto fail;
    if (!wal_mode(st->db) ||
        exec(st->db, st->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") !=
            SQLITE_OK) {
        snprintf(err, errlen, "persistence file %s: cannot set WAL mode: %s", st->path,
                 sqlite3_errmsg(st->db));
        goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "persistence file %s: unexpected schema: %s", st->path,
                     sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    return 0;
fail:
    disconnect_db(st);
    return -1;
}

int store_open(const store_options_t *o, store_t **out, char *err, size_t errlen)
{
    store_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory opening the persistence file");
        return -1;
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(st->path, sizeof(st->path), "%s", o->path);
    st->periodic = o->periodic;
    st->autosave_interval = o->autosave_interval ? o->autosave_interval : 1;
    st->sync_full = o->sync_full;
    if (connect_db(st, true, err, errlen) < 0) {
        store_free(st);
        return -1;
    }
    int rc;
    int64_t maxid = query_int(st->db,
                              "SELECT max(coalesce((SELECT max(id) FROM msgs), 0),"
                              " coalesce((SELECT max(id) FROM deliveries), 0))",
                              &rc);
    atomic_init(&st->next_id, (uint_fast64_t)(maxid > 0 ? maxid : 0) + 1);
    *out = st;
    return 0;
}

bool store_is_periodic(const store_t *st)
{
    return st->periodic;
}

uint64_t store_new_id(store_t *st)
{
    return atomic_fetch_add_explicit(&st->next_id, 1, memory_order_relaxed);
}

/* ---- restore ------------------------------------------------------------------------- */

static const void *col_blob(sqlite3_stmt *s, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(s, i);
    *n = (size_t)sqlite3_column_bytes(s, i);
    return p;
}

static const char *col_text(sqlite3_stmt *s, int i, size_t *n)
{
    const char *p = (const char *)sqlite3_column_text(s, i);
    *n = (size_t)sqlite3_column_bytes(s, i);
    return p ? p : "";
}

static int restore_msgs(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    store_msg_row_t r;
    memset(&r, 0, sizeof(r));
    r.id = (uint64_t)sqlite3_column_int64(s, 0);
    r.topic = (const uint8_t *)col_text(s, 1, &r.topic_len);
    r.payload = col_blob(s, 2, &r.payload_len);
    r.props = col_blob(s, 3, &r.props_len);
    r.qos = (uint8_t)sqlite3_column_int(s, 4);
    r.retain = sqlite3_column_int(s, 5) != 0;
    r.has_expiry = sqlite3_column_type(s, 6) != SQLITE_NULL;
    r.expire_at_ms = sqlite3_column_int64(s, 6);
    return ops->msg(ctx, &r);
}

static int restore_retained(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    return ops->retained(ctx, (uint64_t)sqlite3_column_int64(s, 0));
}

static int restore_sessions(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    store_session_row_t r;
    memset(&r, 0, sizeof(r));
    r.client_id = col_text(s, 0, &r.client_id_len);
    r.version = (uint8_t)sqlite3_column_int(s, 1);
    r.expiry = (uint32_t)sqlite3_column_int64(s, 2);
    r.offline_at_ms = sqlite3_column_int64(s, 3);
    size_t n;
    r.username = sqlite3_column_type(s, 4) == SQLITE_NULL ? NULL : col_text(s, 4, &n);
    r.will_msg = (uint64_t)sqlite3_column_int64(s, 5);
    r.will_qos = (uint8_t)sqlite3_column_int(s, 6);
    r.will_retain = sqlite3_column_int(s, 7) != 0;
    r.will_delay = (uint32_t)sqlite3_column_int64(s, 8);
    r.listener = (uint16_t)sqlite3_column_int(s, 9);
    return ops->session(ctx, &r);
}

static int restore_subs(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    store_sub_row_t r;
    memset(&r, 0, sizeof(r));
    r.client_id = col_text(s, 0, &r.client_id_len);
    r.filter = (const uint8_t *)col_text(s, 1, &r.filter_len);
    r.qos = (uint8_t)sqlite3_column_int(s, 2);
    r.no_local = sqlite3_column_int(s, 3) != 0;
    r.retain_as_published = sqlite3_column_int(s, 4) != 0;
    r.retain_handling = (uint8_t)sqlite3_column_int(s, 5);
    r.sub_id = (uint32_t)sqlite3_column_int64(s, 6);
    return ops->sub(ctx, &r);
}

/* sub_ids are kept as text, "1,7" (readable in the shell). */
static void parse_sub_ids(const char *t, store_delivery_row_t *r)
{
    while (t && *t && r->nsub < STORE_MAX_SUB_IDS) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (end == t)
            break;
        if (v)
            r->sub_ids[r->nsub++] = (uint32_t)v;
        t = *end == ',' ? end + 1 : NULL;
    }
}

static int restore_deliveries(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    store_delivery_row_t r;
    memset(&r, 0, sizeof(r));
    r.id = (uint64_t)sqlite3_column_int64(s, 0);
    r.client_id = col_text(s, 1, &r.client_id_len);
    r.msg_id = (uint64_t)sqlite3_column_int64(s, 2);
    r.qos = (uint8_t)sqlite3_column_int(s, 3);
    r.retain = sqlite3_column_int(s, 4) != 0;
    r.state = (uint8_t)sqlite3_column_int(s, 5);
    r.pid = (uint16_t)sqlite3_column_int(s, 6);
    parse_sub_ids((const char *)sqlite3_column_text(s, 7), &r);
    return ops->delivery(ctx, &r);
}

static int restore_rx(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx)
{
    size_t n;
    const char *cid = col_text(s, 0, &n);
    return ops->rx_qos2(ctx, cid, n, (uint16_t)sqlite3_column_int(s, 1));
}

typedef int (*row_fn)(sqlite3_stmt *s, const store_restore_ops_t *ops, void *ctx);

static int each_row(store_t *st, const char *sql, row_fn fn, const store_restore_ops_t *ops,
                    void *ctx)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (fn(s, ops, ctx) < 0) {
            sqlite3_finalize(s);
            return -1;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        log_msg(LOG_ERR, "Error: persistence file %s: reading it back failed: %s", st->path,
                sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

void store_release(store_t *st)
{
    disconnect_db(st);
}

int store_restore(store_t *st, const store_restore_ops_t *ops, void *ctx, int64_t *alive_ms)
{
    int rc;
    int64_t alive = query_int(st->db, "SELECT value FROM meta WHERE key = 'alive_ms'", &rc);
    *alive_ms = alive > 0 ? alive : 0;
    if (each_row(st, "SELECT id, topic, payload, props, qos, retain, expire_at FROM msgs",
                 restore_msgs, ops, ctx) < 0 ||
        each_row(st, "SELECT msg_id FROM retained ORDER BY topic", restore_retained, ops, ctx) <
            0 ||
        each_row(st,
                 "SELECT client_id, version, expiry, offline_at, username, will_msg, will_qos, "
                 "will_retain, will_delay, listener FROM sessions",
                 restore_sessions, ops, ctx) < 0 ||
        each_row(st,
                 "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, "
                 "sub_id FROM subs",
                 restore_subs, ops, ctx) < 0 ||
        each_row(st,
                 "SELECT id, client_id, msg_id, qos, retain, state, pid, sub_ids FROM deliveries "
                 "ORDER BY id",
                 restore_deliveries, ops, ctx) < 0 ||
        each_row(st, "SELECT client_id, pid FROM rx_qos2", restore_rx, ops, ctx) < 0)
        return -1;
    /* Rows left behind by a crash between related changes (a delivery whose session was
     * deleted, a message nothing refers to any more). */
    if (exec(st->db, "BEGIN") != SQLITE_OK ||
        exec(st->db, "DELETE FROM deliveries WHERE client_id NOT IN "
                     "(SELECT client_id FROM sessions)") != SQLITE_OK ||
        exec(st->db, stmt_sql[ST_MSG_GC_ALL]) != SQLITE_OK || exec(st->db, "COMMIT") != SQLITE_OK) {
        log_msg(LOG_WARN, "Warning: persistence file %s: clean-up failed: %s", st->path,
                sqlite3_errmsg(st->db));
        exec(st->db, "ROLLBACK");
    }
    return 0;
}

/* ---- events -------------------------------------------------------------------------- */

/* Each thread gathers its events here and hands them over with store_flush: one lock and
 * at most one wake-up per I/O loop turn instead of one per event. */
typedef struct local_queue {
    store_t *st;
    ev_t *head, *tail;
    size_t n;
    chunk_t *chunks, *chunk; /* all of this turn's chunks; the one being filled */
    size_t used;             /* bytes of events this turn */
    size_t next_cap;         /* the first chunk's size next turn: about this turn's bytes */
} local_queue_t;

static _Thread_local local_queue_t local;

/* Room for n bytes in this thread's current chunk, or a new chunk. */
static void *local_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk_t *c = local.chunk;
    if (!c || c->cap - c->used < n) {
        size_t cap = local.next_cap < CHUNK_MIN ? CHUNK_MIN : local.next_cap;
        if (c && cap < 2 * c->cap)
            cap = 2 * c->cap <= CHUNK_MAX ? 2 * c->cap : CHUNK_MAX; /* a busy turn */
        if (cap < n)
            cap = n;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = NULL;
        c->used = 0;
        c->cap = cap;
        if (local.chunk)
            local.chunk->next = c;
        else
            local.chunks = c;
        local.chunk = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    local.used += n;
    return p;
}

/* A new event of this thread's for st, with room for three strings (copied in). */
static ev_t *ev_new(store_t *st, uint8_t kind, const void *s0, size_t n0, const void *s1,
                    size_t n1, const void *s2, size_t n2)
{
    if (local.st != st) {
        if (local.head)
            store_flush(local.st);
        local.st = st;
    }
    ev_t *e = local_alloc(sizeof(*e) + n0 + n1 + n2);
    if (!e) {
        log_msg(LOG_ERR, "out of memory queueing a change for the persistence file");
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    uint8_t *p = e->data;
    const void *src[3] = {s0, s1, s2};
    size_t len[3] = {n0, n1, n2};
    for (int i = 0; i < 3; i++) {
        if (len[i])
            memcpy(p, src[i], len[i]);
        e->s[i] = p;
        e->n[i] = len[i];
        p += len[i];
    }
    return e;
}

static int push(ev_t *e)
{
    if (!e)
        return -1;
    if (local.tail)
        local.tail->next = e;
    else
        local.head = e;
    local.tail = e;
    local.n++;
    return 0;
}

void store_flush(store_t *st)
{
    if (local.st != st || !local.head)
        return;
    /* Every chunk goes with the events: the store thread frees them after the batch. */
    chunk_t *chunks = local.chunks, *last = local.chunk;
    local.next_cap = local.used <= CHUNK_MAX ? local.used : CHUNK_MAX;
    local.chunks = local.chunk = NULL;
    local.used = 0;
    pthread_mutex_lock(&st->lock);
    bool was_empty = !st->head;
    if (st->tail)
        st->tail->next = local.head;
    else
        st->head = local.head;
    st->tail = local.tail;
    last->next = st->chunks;
    st->chunks = chunks;
    size_t before = st->queued;
    size_t queued = st->queued += local.n;
    pthread_mutex_unlock(&st->lock);
    local.head = local.tail = NULL;
    local.n = 0;
    /* The store thread waits only while the queue is empty: one signal per batch. In
     * periodic mode it sleeps until the next save, or until the queue grows too long
     * (memory stays bounded under a flood). */
    if (st->periodic ? before < STORE_PERIODIC_MAX_QUEUED && queued >= STORE_PERIODIC_MAX_QUEUED
                     : was_empty)
        pthread_cond_signal(&st->cond);
}

int store_msg_put(store_t *st, const store_msg_row_t *r)
{
    ev_t *e = ev_new(st, EV_MSG_PUT, r->topic, r->topic_len, r->props, r->props_len, r->payload,
                     r->payload_len);
    if (!e)
        return -1;
    e->id = r->id;
    e->qos = r->qos;
    e->flag_a = r->retain;
    e->flag_b = r->has_expiry;
    e->t = r->expire_at_ms;
    return push(e);
}

int store_retain_set(store_t *st, const uint8_t *topic, size_t topic_len, uint64_t msg_id)
{
    ev_t *e = ev_new(st, EV_RETAIN_SET, topic, topic_len, NULL, 0, NULL, 0);
    if (e)
        e->msg_id = msg_id;
    return push(e);
}

int store_retain_del(store_t *st, const uint8_t *topic, size_t topic_len)
{
    return push(ev_new(st, EV_RETAIN_DEL, topic, topic_len, NULL, 0, NULL, 0));
}

int store_session_put(store_t *st, const store_session_row_t *r)
{
    size_t un = r->username ? strlen(r->username) : 0;
    ev_t *e = ev_new(st, EV_SESSION_PUT, r->client_id, r->client_id_len, r->username, un, NULL, 0);
    if (!e)
        return -1;
    e->has_s1 = r->username != NULL;
    e->version = r->version;
    e->u32 = r->expiry;
    e->t = r->offline_at_ms;
    e->msg_id = r->will_msg;
    e->qos = r->will_qos;
    e->flag_a = r->will_retain;
    e->will_delay = r->will_delay;
    e->pid = r->listener;
    return push(e);
}

int store_session_del(store_t *st, const char *client_id, size_t len)
{
    return push(ev_new(st, EV_SESSION_DEL, client_id, len, NULL, 0, NULL, 0));
}

int store_sub_put(store_t *st, const store_sub_row_t *r)
{
    ev_t *e = ev_new(st, EV_SUB_PUT, r->client_id, r->client_id_len, r->filter, r->filter_len, NULL, 0);
    if (!e)
        return -1;
    e->qos = r->qos;
    e->flag_a = r->no_local;
    e->flag_b = r->retain_as_published;
    e->retain_handling = r->retain_handling;
    e->u32 = r->sub_id;
    return push(e);
}

int store_sub_del(store_t *st, const char *client_id, size_t len, const uint8_t *filter,
                  size_t filter_len)
{
    return push(ev_new(st, EV_SUB_DEL, client_id, len, filter, filter_len, NULL, 0));
}

int store_delivery_put(store_t *st, const store_delivery_row_t *r)
{
    ev_t *e = ev_new(st, EV_DLV_PUT, r->client_id, r->client_id_len, NULL, 0, NULL, 0);
    if (!e)
        return -1;
    e->id = r->id;
    e->msg_id = r->msg_id;
    e->qos = r->qos;
    e->flag_a = r->retain;
    e->state = r->state;
    e->pid = r->pid;
    e->nsub = r->nsub > STORE_MAX_SUB_IDS ? STORE_MAX_SUB_IDS : r->nsub;
    memcpy(e->sub_ids, r->sub_ids, sizeof(e->sub_ids));
    return push(e);
}

int store_delivery_state(store_t *st, uint64_t id, uint8_t state, uint16_t pid)
{
    ev_t *e = ev_new(st, EV_DLV_STATE, NULL, 0, NULL, 0, NULL, 0);
    if (e) {
        e->id = id;
        e->state = state;
        e->pid = pid;
    }
    return push(e);
}

int store_delivery_del(store_t *st, uint64_t id, uint64_t msg_id)
{
    ev_t *e = ev_new(st, EV_DLV_DEL, NULL, 0, NULL, 0, NULL, 0);
    if (e) {
        e->id = id;
        e->msg_id = msg_id;
    }
    return push(e);
}

int store_rx_qos2_put(store_t *st, const char *client_id, size_t len, uint16_t pid)
{
    ev_t *e = ev_new(st, EV_RX_PUT, client_id, len, NULL, 0, NULL, 0);
    if (e)
        e->pid = pid;
    return push(e);
}

int store_rx_qos2_del(store_t *st, const char *client_id, size_t len, uint16_t pid)
{
    ev_t *e = ev_new(st, EV_RX_DEL, client_id, len, NULL, 0, NULL, 0);
    if (e)
        e->pid = pid;
    return push(e);
}

int store_ack(store_t *st, void *token)
{
    ev_t *e = ev_new(st, EV_ACK, NULL, 0, NULL, 0, NULL, 0);
    if (e)
        e->token = token;
    return push(e);
}

/* ---- applying a batch ------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *s, int i, const uint8_t *p, size_t n)
{
    sqlite3_bind_text(s, i, n ? (const char *)p : "", (int)n, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *s, int i, const uint8_t *p, size_t n)
{
    sqlite3_bind_blob(s, i, n ? (const void *)p : "", (int)n, SQLITE_STATIC);
}

/* Step a statement that returns no row and reset it. */
static int run(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The message id a one-column lookup returns, 0 for none. */
static uint64_t lookup_id(sqlite3_stmt *s)
{
    uint64_t id = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        id = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return id;
}

static int gc_msg(store_t *st, uint64_t id)
{
    if (!id)
        return SQLITE_OK;
    sqlite3_stmt *s = st->st[ST_MSG_GC_ONE];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    return run(s);
}

static int apply_msg_put(store_t *st, const ev_t *e)
{
    sqlite3_stmt *s = st->st[ST_MSG_PUT];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)e->id);
    bind_text(s, 2, e->s[0], e->n[0]);
    bind_blob(s, 3, e->s[2], e->n[2]);
    if (e->n[1])
        bind_blob(s, 4, e->s[1], e->n[1]);
    sqlite3_bind_int(s, 5, e->qos);
    sqlite3_bind_int(s, 6, e->flag_a);
    if (e->flag_b)
        sqlite3_bind_int64(s, 7, e->t);
    return run(s);
}

static int apply_retain(store_t *st, const ev_t *e)
{
    sqlite3_stmt *g = st->st[ST_RETAIN_GET];
    bind_text(g, 1, e->s[0], e->n[0]);
    uint64_t old = lookup_id(g);
    sqlite3_stmt *s = st->st[e->kind == EV_RETAIN_SET ? ST_RETAIN_SET : ST_RETAIN_DEL];
    bind_text(s, 1, e->s[0], e->n[0]);
    if (e->kind == EV_RETAIN_SET)
        sqlite3_bind_int64(s, 2, (sqlite3_int64)e->msg_id);
    int rc = run(s);
    if (rc == SQLITE_OK && old != e->msg_id)
        rc = gc_msg(st, old);
    return rc;
}

static int apply_session_put(store_t *st, const ev_t *e)
{
    sqlite3_stmt *g = st->st[ST_SESSION_GET_WILL];
    bind_text(g, 1, e->s[0], e->n[0]);
    uint64_t old_will = lookup_id(g);
    sqlite3_stmt *s = st->st[ST_SESSION_PUT];
    bind_text(s, 1, e->s[0], e->n[0]);
    sqlite3_bind_int(s, 2, e->version);
    sqlite3_bind_int64(s, 3, e->u32);
    if (e->t)
        sqlite3_bind_int64(s, 4, e->t);
    if (e->has_s1)
        bind_text(s, 5, e->s[1], e->n[1]);
    if (e->msg_id) {
        sqlite3_bind_int64(s, 6, (sqlite3_int64)e->msg_id);
        sqlite3_bind_int(s, 7, e->qos);
        sqlite3_bind_int(s, 8, e->flag_a);
        sqlite3_bind_int64(s, 9, e->will_delay);
    }
    sqlite3_bind_int(s, 10, (int)e->pid); /* the listener index rides in pid */
    int rc = run(s);
    if (rc == SQLITE_OK && old_will != e->msg_id)
        rc = gc_msg(st, old_will);
    return rc;
}

/* Deleting a session may leave messages nothing refers to: collected after the batch. */
static int apply_session_del(store_t *st, const ev_t *e, bool *gc_all)
{
    static const enum stmt_id order[] = {ST_SESSION_DEL, ST_SESSION_DEL_SUBS, ST_SESSION_DEL_DLVS,
                                         ST_SESSION_DEL_RX};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        sqlite3_stmt *s = st->st[order[i]];
        bind_text(s, 1, e->s[0], e->n[0]);
        int rc = run(s);
        if (rc != SQLITE_OK)
            return rc;
    }
    *gc_all = true;
    return SQLITE_OK;
}

static int apply_sub(store_t *st, const ev_t *e)
{
    sqlite3_stmt *s = st->st[e->kind == EV_SUB_PUT ? ST_SUB_PUT : ST_SUB_DEL];
    bind_text(s, 1, e->s[0], e->n[0]);
    bind_text(s, 2, e->s[1], e->n[1]);
    if (e->kind == EV_SUB_PUT) {
        sqlite3_bind_int(s, 3, e->qos);
        sqlite3_bind_int(s, 4, e->flag_a);
        sqlite3_bind_int(s, 5, e->flag_b);
        sqlite3_bind_int(s, 6, e->retain_handling);
        sqlite3_bind_int64(s, 7, e->u32);
    }
    return run(s);
}

static int apply_dlv_put(store_t *st, const ev_t *e)
{
    sqlite3_stmt *s = st->st[ST_DLV_PUT];
    char ids[64];
    size_t n = 0;
    ids[0] = 0;
    for (uint8_t i = 0; i < e->nsub; i++)
        n += (size_t)snprintf(ids + n, sizeof(ids) - n, "%s%u", i ? "," : "", e->sub_ids[i]);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)e->id);
    bind_text(s, 2, e->s[0], e->n[0]);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)e->msg_id);
    sqlite3_bind_int(s, 4, e->qos);
    sqlite3_bind_int(s, 5, e->flag_a);
    sqlite3_bind_int(s, 6, e->state);
    sqlite3_bind_int(s, 7, e->pid);
    if (n)
        sqlite3_bind_text(s, 8, ids, (int)n, SQLITE_TRANSIENT);
    return run(s);
}

static int apply_one(store_t *st, const ev_t *e, bool *gc_all)
{
    sqlite3_stmt *s;
    int rc;
    switch (e->kind) {
    case EV_MSG_PUT:
        return apply_msg_put(st, e);
    case EV_RETAIN_SET:
    case EV_RETAIN_DEL:
        return apply_retain(st, e);
    case EV_SESSION_PUT:
        return apply_session_put(st, e);
    case EV_SESSION_DEL:
        return apply_session_del(st, e, gc_all);
    case EV_SUB_PUT:
    case EV_SUB_DEL:
        return apply_sub(st, e);
    case EV_DLV_PUT:
        return apply_dlv_put(st, e);
    case EV_DLV_STATE:
        s = st->st[ST_DLV_STATE];
        sqlite3_bind_int64(s, 1, (sqlite3_int64)e->id);
        sqlite3_bind_int(s, 2, e->state);
        sqlite3_bind_int(s, 3, e->pid);
        return run(s);
    case EV_DLV_DEL:
        s = st->st[ST_DLV_DEL];
        sqlite3_bind_int64(s, 1, (sqlite3_int64)e->id);
        rc = run(s);
        return rc == SQLITE_OK ? gc_msg(st, e->msg_id) : rc;
    case EV_RX_PUT:
    case EV_RX_DEL:
        s = st->st[e->kind == EV_RX_PUT ? ST_RX_PUT : ST_RX_DEL];
        bind_text(s, 1, e->s[0], e->n[0]);
        sqlite3_bind_int(s, 2, e->pid);
        return run(s);
    default:
        return SQLITE_OK;
    }
}

/* A delivery to an online subscriber often completes before the store thread takes the
 * batch that holds it: its insert, state changes and delete all sit in one batch. They
 * cancel out, and so does the message when nothing else in the batch refers to it (every
 * reference to a message is queued after the message itself, so none can be in an earlier
 * batch). This is what lets durable QoS 1 keep up with in-memory delivery. */
static void fold_batch(ev_t *batch)
{
    ev_t *msgs = NULL, *dlvs = NULL, *m, *d, *tmp;
    for (ev_t *e = batch; e; e = e->next) {
        switch (e->kind) {
        case EV_MSG_PUT:
            HASH_ADD(hh, msgs, id, sizeof(e->id), e);
            break;
        case EV_DLV_PUT:
            HASH_ADD(hh, dlvs, id, sizeof(e->id), e);
            /* fall through */
        case EV_RETAIN_SET:
        case EV_SESSION_PUT: /* its will */
            HASH_FIND(hh, msgs, &e->msg_id, sizeof(e->msg_id), m);
            if (m)
                m->refs++;
            break;
        case EV_DLV_STATE:
            HASH_FIND(hh, dlvs, &e->id, sizeof(e->id), d);
            if (d) {
                d->state = e->state;
                d->pid = e->pid;
                e->skip = true;
            }
            break;
        case EV_DLV_DEL:
            HASH_FIND(hh, dlvs, &e->id, sizeof(e->id), d);
            if (!d)
                break;
            HASH_DEL(dlvs, d);
            d->skip = e->skip = true;
            HASH_FIND(hh, msgs, &e->msg_id, sizeof(e->msg_id), m);
            if (m) {
                m->refs--;
                m->dropped = true;
            }
            break;
        default:
            break;
        }
    }
    HASH_ITER(hh, msgs, m, tmp)
    {
        if (m->refs == 0 && m->dropped)
            m->skip = true;
        HASH_DEL(msgs, m);
    }
    HASH_ITER(hh, dlvs, d, tmp) HASH_DEL(dlvs, d);
}

/* One transaction for the whole batch. Returns 0, or -1 when it failed (rolled back). */
static int commit_batch(store_t *st, ev_t *batch)
{
    bool gc_all = false;
    fold_batch(batch);
    int rc = exec(st->db, "BEGIN IMMEDIATE");
    for (const ev_t *e = batch; rc == SQLITE_OK && e; e = e->next)
        if (!e->skip)
            rc = apply_one(st, e, &gc_all);
    if (rc == SQLITE_OK && gc_all)
        rc = run(st->st[ST_MSG_GC_ALL]);
    /* alive_ms, to a second: the downtime after a crash starts about then. Once a second
     * spares most commits a page write. */
    int64_t now = wall_ms();
    if (rc == SQLITE_OK && now - st->alive_written_ms >= 1000) {
        sqlite3_stmt *s = st->st[ST_ALIVE];
        sqlite3_bind_int64(s, 1, now);
        rc = run(s);
    }
    if (rc == SQLITE_OK)
        rc = exec(st->db, "COMMIT");
    if (rc == SQLITE_OK) {
        if (now - st->alive_written_ms >= 1000)
            st->alive_written_ms = now;
        if (st->failing)
            log_msg(LOG_NOTICE, "persistence file %s: writing works again", st->path);
        st->failing = false;
        return 0;
    }
    if (!st->failing)
        log_msg(LOG_ERR,
                "Error: persistence file %s: commit failed: %s; QoS 1/2 messages "
                "that cannot be stored are refused",
                st->path, sqlite3_errmsg(st->db));
    st->failing = true;
    exec(st->db, "ROLLBACK");
    return -1;
}

/* The batch's acknowledgements to done: all at once, or one by one when there is no
 * memory for the list. */
static void report_done(store_t *st, ev_t *batch, int status)
{
    size_t n = 0;
    for (ev_t *e = batch; e; e = e->next)
        n += e->kind == EV_ACK;
    if (!n || !st->done)
        return;
    if (n > st->tokens_cap) {
        void **t = realloc(st->tokens, n * sizeof(*t));
        if (t) {
            st->tokens = t;
            st->tokens_cap = n;
        }
    }
    size_t k = 0;
    for (ev_t *e = batch; e; e = e->next) {
        if (e->kind != EV_ACK)
            continue;
        if (n > st->tokens_cap) {
            st->done(st->done_arg, &e->token, 1, status);
            continue;
        }
        st->tokens[k++] = e->token;
    }
    if (k)
        st->done(st->done_arg, st->tokens, k, status);
}

static void handle_batch(store_t *st, ev_t *batch, chunk_t *chunks)
{
    if (batch)
        report_done(st, batch, commit_batch(st, batch));
    free_chunks(chunks);
}

static void *store_main(void *arg)
{
    store_t *st = arg;
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    due.tv_sec += st->autosave_interval;
    pthread_mutex_lock(&st->lock);
    for (;;) {
        if (st->periodic) {
            while (!st->stop && st->queued < STORE_PERIODIC_MAX_QUEUED) {
                if (pthread_cond_timedwait(&st->cond, &st->lock, &due) == ETIMEDOUT)
                    break;
            }
        } else {
            while (!st->head && !st->stop)
                pthread_cond_wait(&st->cond, &st->lock);
        }
        bool stop = st->stop;
        ev_t *batch = st->head;
        chunk_t *chunks = st->chunks;
        st->head = st->tail = NULL;
        st->chunks = NULL;
        st->queued = 0;
        pthread_mutex_unlock(&st->lock);
        handle_batch(st, batch, chunks);
        if (st->periodic) {
            clock_gettime(CLOCK_MONOTONIC, &due);
            due.tv_sec += st->autosave_interval;
        }
        pthread_mutex_lock(&st->lock);
        if (stop && !st->head)
            break;
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

int store_start(store_t *st, store_done_fn done, void *arg)
{
    store_flush(st); /* what start-up queued */
    char err[4400];
    /* A connection of its own, opened here: the one of store_open and store_restore was
     * closed by store_release, so that none crosses a fork (daemon) with SQLite's locks. */
    if (!st->db && connect_db(st, false, err, sizeof(err)) < 0) {
        log_msg(LOG_ERR, "Error: %s", err);
        return -1;
    }
    st->done = done;
    st->done_arg = arg;
    if (pthread_create(&st->thread, NULL, store_main, st) != 0)
        return -1;
    st->running = true;
    return 0;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    store_flush(st); /* the caller's last changes */
    if (local.st == st)
        local.st = NULL;
    if (st->running) {
        pthread_mutex_lock(&st->lock);
        st->stop = true;
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->thread, NULL);
    } else if (st->head) {
        char err[4400];
        if (st->db || connect_db(st, false, err, sizeof(err)) == 0) {
            ev_t *batch = st->head;
            chunk_t *chunks = st->chunks;
            st->head = st->tail = NULL;
            st->chunks = NULL;
            handle_batch(st, batch, chunks);
        } else {
            log_msg(LOG_ERR, "Error: %s; the last changes are lost", err);
        }
    }
    /* Fold the WAL into the database file: a clean stop leaves one file. */
    if (st->db)
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    store_free(st);
}
