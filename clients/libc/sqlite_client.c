/*
 * Scenario sqlite (clients/SCENARIOS.md): SQLite 3.54 (the libsqlite3-sys crate's
 * amalgamation, unmodified) on picolibc, every byte of its memory from the memory server
 * through mem-capi's malloc. An in-memory database (":memory:") gets 100,000 rows in
 * transactions, three indexes, a join with GROUP BY, a sort of every row on an unindexed
 * key, point lookups through the primary key and an index, an UPDATE and a DELETE of a
 * third of the rows each, VACUUM and PRAGMA integrity_check; every result is checked
 * against values this file computes itself from the same generator. After closing the
 * database and sqlite3_shutdown, SQLite holds no memory and, once the heap is trimmed,
 * the client's charged pages are back near where they started.
 *
 * With `nomem` set the client runs under a quota below what the workload needs: some step
 * must fail with SQLITE_NOMEM (malloc returned NULL: the heap is in strict commit mode),
 * which is reported; the database is closed and everything is given back as above.
 *
 * Returns 0 (PASS) or the number of the failed check; `r` gets the numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mem_server.h"
#include "shim.h"
#include "sqlite3.h"

#define ROWS 100000
#define GROUPS 100
#define BATCH 10000
#define LOOKUPS 1000
#define SORT_MOD 100003
#define SORT_MUL 7919

/* What the scenario reports (mirrored in clients/libc-client/src/main.rs). */
struct sqlite_report {
    uint64_t detail;          /* the failed check's detail: an SQLite result code, a value */
    uint64_t faults;          /* faults the server served for this client during the run */
    uint64_t charged_start;   /* charged pages before SQLite started */
    uint64_t charged_peak;    /* the most charged pages seen between steps */
    uint64_t charged_closed;  /* after sqlite3_close + sqlite3_shutdown */
    uint64_t charged_trimmed; /* after mem_heap_trim */
    uint64_t heap_peak;       /* the heap's peak mapped bytes */
    uint64_t sqlite_peak;     /* sqlite3_memory_highwater: SQLite's own peak bytes */
    uint64_t nomem_step;      /* the step that met SQLITE_NOMEM (0: none) */
};

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint32_t grp_of(uint32_t id) { return mix(id) % GROUPS; }
static uint32_t val_of(uint32_t id) { return mix(id ^ 0xabcdefU) % 1000000U; }
static void name_of(uint32_t id, char out[16]) { snprintf(out, 16, "n%08lx", (unsigned long)mix(id * 3U + 1U)); }

static struct {
    sqlite3 *db;
    sqlite3_stmt *st;
    struct sqlite_report *r;
    uint64_t faults_start;
} S;

static void sample(void)
{
    MemStats m;
    if (mem_stats(&m) == 0 && m.charged_pages > S.r->charged_peak)
        S.r->charged_peak = m.charged_pages;
}

static void finish_stmt(void)
{
    if (S.st) {
        sqlite3_finalize(S.st);
        S.st = NULL;
    }
}

/* A failed step: remember SQLITE_NOMEM (what the nomem run waits for), close everything. */
static int failed(int step, int rc)
{
    S.r->detail = (uint64_t)rc;
    if ((rc & 0xff) == SQLITE_NOMEM && S.r->nomem_step == 0)
        S.r->nomem_step = (uint64_t)step;
    finish_stmt();
    return step;
}

#define TRY(step, expr)                                                         \
    do {                                                                        \
        int rc_ = (expr);                                                       \
        if (rc_ != SQLITE_OK && rc_ != SQLITE_DONE && rc_ != SQLITE_ROW)        \
            return failed((step), rc_);                                         \
    } while (0)
#define CHECK(step, cond, d)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            finish_stmt();                                                      \
            S.r->detail = (uint64_t)(d);                                        \
            return (step);                                                      \
        }                                                                       \
    } while (0)

static int exec(const char *sql)
{
    return sqlite3_exec(S.db, sql, NULL, NULL, NULL);
}

static int prepare(const char *sql)
{
    finish_stmt();
    return sqlite3_prepare_v2(S.db, sql, -1, &S.st, NULL);
}

static int workload(void)
{
    static int64_t count[GROUPS], sum[GROUPS];
    char name[16];

    TRY(10, exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, val INTEGER NOT NULL, name TEXT NOT NULL);"
                 "CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT NOT NULL);"));
    TRY(11, prepare("INSERT INTO g VALUES (?1, printf('group-%03d', ?1))"));
    for (int i = 0; i < GROUPS; i++) {
        TRY(12, sqlite3_bind_int(S.st, 1, i));
        TRY(12, sqlite3_step(S.st));
        TRY(12, sqlite3_reset(S.st));
    }

    /* 100,000 rows in transactions of 10,000. */
    TRY(13, prepare("INSERT INTO t VALUES (?, ?, ?, ?)"));
    for (uint32_t id = 1; id <= ROWS; id++) {
        if (id % BATCH == 1)
            TRY(14, exec("BEGIN"));
        name_of(id, name);
        TRY(15, sqlite3_bind_int(S.st, 1, (int)id));
        TRY(15, sqlite3_bind_int(S.st, 2, (int)grp_of(id)));
        TRY(15, sqlite3_bind_int(S.st, 3, (int)val_of(id)));
        TRY(15, sqlite3_bind_text(S.st, 4, name, -1, SQLITE_TRANSIENT));
        TRY(16, sqlite3_step(S.st));
        TRY(16, sqlite3_reset(S.st));
        if (id % BATCH == 0) {
            TRY(17, exec("COMMIT"));
            sample();
        }
    }
    finish_stmt();
    TRY(18, exec("CREATE INDEX t_grp ON t(grp); CREATE INDEX t_val ON t(val); CREATE INDEX t_name ON t(name);"));
    sample();

    /* Join + GROUP BY, against the generator. */
    memset(count, 0, sizeof count);
    memset(sum, 0, sizeof sum);
    for (uint32_t id = 1; id <= ROWS; id++) {
        count[grp_of(id)]++;
        sum[grp_of(id)] += val_of(id);
    }
    TRY(20, prepare("SELECT g.grp, g.label, count(*), sum(t.val) FROM t JOIN g ON g.grp = t.grp GROUP BY g.grp ORDER BY g.grp"));
    int groups = 0;
    int rc;
    while ((rc = sqlite3_step(S.st)) == SQLITE_ROW) {
        int grp = sqlite3_column_int(S.st, 0);
        char want[16];
        snprintf(want, sizeof want, "group-%03d", grp);
        CHECK(21, grp == groups, grp);
        CHECK(22, strcmp((const char *)sqlite3_column_text(S.st, 1), want) == 0, grp);
        CHECK(23, sqlite3_column_int64(S.st, 2) == count[grp], sqlite3_column_int64(S.st, 2));
        CHECK(24, sqlite3_column_int64(S.st, 3) == sum[grp], sqlite3_column_int64(S.st, 3));
        groups++;
    }
    TRY(25, rc);
    CHECK(26, groups == GROUPS, groups);
    sample();

    /* A sort of every row on a key no index has. */
    TRY(30, prepare("SELECT id, (val * 7919) % 100003 AS k FROM t ORDER BY k, id"));
    int64_t prev_k = -1, prev_id = 0, rows = 0, id_sum = 0;
    while ((rc = sqlite3_step(S.st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(S.st, 0), k = sqlite3_column_int64(S.st, 1);
        CHECK(31, id >= 1 && id <= ROWS && k == (int64_t)val_of((uint32_t)id) * SORT_MUL % SORT_MOD, id);
        CHECK(32, k > prev_k || (k == prev_k && id > prev_id), id);
        prev_k = k;
        prev_id = id;
        rows++;
        id_sum += id;
        if (rows % 25000 == 0)
            sample();
    }
    TRY(33, rc);
    CHECK(34, rows == ROWS && id_sum == (int64_t)ROWS * (ROWS + 1) / 2, rows);
    sample();

    /* Point lookups: by primary key, and by name through its index. */
    TRY(40, prepare("SELECT val, name FROM t WHERE id = ?"));
    for (uint32_t i = 0; i < LOOKUPS; i++) {
        uint32_t id = mix(i + 7) % ROWS + 1;
        name_of(id, name);
        TRY(41, sqlite3_bind_int(S.st, 1, (int)id));
        CHECK(42, sqlite3_step(S.st) == SQLITE_ROW, id);
        CHECK(43, sqlite3_column_int64(S.st, 0) == val_of(id), id);
        CHECK(44, strcmp((const char *)sqlite3_column_text(S.st, 1), name) == 0, id);
        TRY(45, sqlite3_reset(S.st));
    }
    TRY(46, prepare("SELECT id FROM t WHERE name = ?"));
    for (uint32_t i = 0; i < LOOKUPS; i++) {
        uint32_t id = mix(i + 99) % ROWS + 1;
        name_of(id, name);
        TRY(47, sqlite3_bind_text(S.st, 1, name, -1, SQLITE_TRANSIENT));
        CHECK(48, sqlite3_step(S.st) == SQLITE_ROW && sqlite3_column_int64(S.st, 0) == id, id);
        TRY(49, sqlite3_reset(S.st));
    }
    finish_stmt();

    /* UPDATE a third, DELETE a third. */
    TRY(50, exec("UPDATE t SET val = val + 1 WHERE id % 3 = 0"));
    CHECK(51, sqlite3_changes(S.db) == ROWS / 3, sqlite3_changes(S.db));
    TRY(52, exec("DELETE FROM t WHERE id % 3 = 1"));
    CHECK(53, sqlite3_changes(S.db) == (ROWS + 2) / 3, sqlite3_changes(S.db));
    sample();
    int64_t want_rows = 0, want_sum = 0;
    memset(count, 0, sizeof count);
    memset(sum, 0, sizeof sum);
    for (uint32_t id = 1; id <= ROWS; id++) {
        if (id % 3 == 1)
            continue;
        int64_t v = val_of(id) + (id % 3 == 0);
        want_rows++;
        want_sum += v;
        count[grp_of(id)]++;
        sum[grp_of(id)] += v;
    }
    TRY(54, prepare("SELECT grp, count(*), sum(val) FROM t GROUP BY grp ORDER BY grp"));
    int64_t got_rows = 0, got_sum = 0;
    while ((rc = sqlite3_step(S.st)) == SQLITE_ROW) {
        int grp = sqlite3_column_int(S.st, 0);
        CHECK(55, grp >= 0 && grp < GROUPS && sqlite3_column_int64(S.st, 1) == count[grp], grp);
        CHECK(56, sqlite3_column_int64(S.st, 2) == sum[grp], grp);
        got_rows += sqlite3_column_int64(S.st, 1);
        got_sum += sqlite3_column_int64(S.st, 2);
    }
    TRY(57, rc);
    CHECK(58, got_rows == want_rows && got_sum == want_sum, got_rows);
    finish_stmt();

    /* VACUUM, then the database checks itself. */
    TRY(60, exec("VACUUM"));
    sample();
    TRY(61, prepare("PRAGMA integrity_check"));
    TRY(62, sqlite3_step(S.st));
    CHECK(63, strcmp((const char *)sqlite3_column_text(S.st, 0), "ok") == 0, 0);
    finish_stmt();
    TRY(64, prepare("SELECT count(*) FROM t"));
    CHECK(65, sqlite3_step(S.st) == SQLITE_ROW && sqlite3_column_int64(S.st, 0) == want_rows, 0);
    finish_stmt();
    return 0;
}

int sqlite_client_main(int nomem, struct sqlite_report *r)
{
    MemStats m;
    memset(r, 0, sizeof *r);
    S.r = r;
    S.st = NULL;
    CHECK(1, mem_stats(&m) == 0, mem_errno());
    r->charged_start = r->charged_peak = m.charged_pages;
    S.faults_start = m.faults_served;

    int rc = sqlite3_open(":memory:", &S.db);
    int res = rc == SQLITE_OK ? workload() : failed(2, rc);
    sample();
    r->sqlite_peak = (uint64_t)sqlite3_memory_highwater(0);
    if (res)
        printf("sqlite: step %d: %s (result %d)\n", res, S.db ? sqlite3_errmsg(S.db) : "open", (int)r->detail);
    CHECK(3, sqlite3_close(S.db) == SQLITE_OK, 0);
    S.db = NULL;
    CHECK(4, sqlite3_shutdown() == SQLITE_OK, 0);
    CHECK(5, sqlite3_memory_used() == 0, sqlite3_memory_used());
    CHECK(6, mem_stats(&m) == 0, mem_errno());
    r->charged_closed = m.charged_pages;
    mem_heap_trim();
    CHECK(7, mem_stats(&m) == 0, mem_errno());
    r->charged_trimmed = m.charged_pages;
    r->faults = m.faults_served - S.faults_start;
    r->heap_peak = mem_heap_stats().peak_mapped;
    printf("SQLITE-NUMBERS %s rows=%d faults=%llu charged-start=%llu peak=%llu closed=%llu trimmed=%llu "
           "heap-peak-pages=%llu sqlite-peak-bytes=%llu nomem-step=%llu\n",
           nomem ? "nomem" : "full", ROWS, (unsigned long long)r->faults, (unsigned long long)r->charged_start,
           (unsigned long long)r->charged_peak, (unsigned long long)r->charged_closed,
           (unsigned long long)r->charged_trimmed, (unsigned long long)(r->heap_peak / 4096),
           (unsigned long long)r->sqlite_peak, (unsigned long long)r->nomem_step);
    /* Everything back: within 64 pages of the start (the heap keeps a few segments). */
    CHECK(8, r->charged_trimmed <= r->charged_start + 64, r->charged_trimmed);
    if (nomem) {
        /* The run had to end in SQLITE_NOMEM, and only there. */
        CHECK(9, res != 0 && r->nomem_step == (uint64_t)res, res);
        return 0;
    }
    return res;
}
