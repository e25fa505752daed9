/*
 * SQLite's OS layer for the libc-client component (SQLite is built with SQLITE_OS_OTHER=1,
 * so sqlite3_os_init/sqlite3_os_end are ours): one VFS, "sel4-mem", with no files.
 * In-memory databases (":memory:", and with SQLITE_TEMP_STORE=3 every temporary database,
 * journal and sort) never open a file; opening a named file fails with SQLITE_CANTOPEN.
 * What it does provide: randomness (a xorshift generator seeded from the platform
 * counter), the time (shim.c's clock), and sleep (returns at once: one thread, nothing
 * to wait for).
 */
#include <string.h>
#include <sys/time.h>

#include "shim.h"
#include "sqlite3.h"

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    (void)name;
    (void)flags;
    (void)out_flags;
    file->pMethods = NULL; /* nothing to close */
    return SQLITE_CANTOPEN;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    (void)name;
    (void)sync_dir;
    return SQLITE_IOERR_DELETE_NOENT;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *res)
{
    (void)vfs;
    (void)name;
    (void)flags;
    *res = 0;
    return SQLITE_OK;
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    if ((int)strlen(name) >= n)
        return SQLITE_CANTOPEN;
    strcpy(out, name);
    return SQLITE_OK;
}

static uint64_t rng_state;

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    if (rng_state == 0)
        rng_state = libc_shim_ns() | 1;
    for (int i = 0; i < n; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        out[i] = (char)(rng_state >> 24);
    }
    return n;
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return us;
}

/* Julian day number in milliseconds (what SQLite's date functions count in). */
static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
    (void)vfs;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    *t = (sqlite3_int64)210866760000000LL + (sqlite3_int64)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    return SQLITE_OK;
}

static int vfs_current_time(sqlite3_vfs *vfs, double *t)
{
    sqlite3_int64 ms;
    vfs_current_time_int64(vfs, &ms);
    *t = (double)ms / 86400000.0;
    return SQLITE_OK;
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    if (n > 0)
        out[0] = 0;
    return 0;
}

static sqlite3_vfs vfs = {
    .iVersion = 2,
    .szOsFile = sizeof(sqlite3_file),
    .mxPathname = 512,
    .zName = "sel4-mem",
    .xOpen = vfs_open,
    .xDelete = vfs_delete,
    .xAccess = vfs_access,
    .xFullPathname = vfs_full_pathname,
    .xRandomness = vfs_randomness,
    .xSleep = vfs_sleep,
    .xCurrentTime = vfs_current_time,
    .xGetLastError = vfs_last_error,
    .xCurrentTimeInt64 = vfs_current_time_int64,
};

int sqlite3_os_init(void)
{
    return sqlite3_vfs_register(&vfs, 1);
}

int sqlite3_os_end(void)
{
    return SQLITE_OK;
}
