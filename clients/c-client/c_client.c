/*
 * Scenario c-client (clients/SCENARIOS.md): a C component using the memory server
 * through mem_server.h only (freestanding: no libc). The scenario client's Rust runtime
 * starts the thread, calls mem_connect() and then c_client_main(); the return value is 0
 * (PASS) or the number of the failed check, and *detail says more (an errno, a value).
 *
 * Checks: mmap/munmap/mprotect/msync with Linux flags and errno; System V shm (private and
 * keyed segments, two attachments, IPC_STAT, IPC_EXCL, IPC_RMID, shmdt); a malloc workload
 * (many blocks of many sizes, realloc, calloc, a large block, a failed huge malloc) whose
 * memory is given back: the client's resident pages return near where they started.
 */
#include "mem_server.h"

#define PAGE 4096UL
#define FAILED(p) ((intptr_t)(p) == -1)
#define CHECK(n, cond, d)      \
    do {                       \
        if (!(cond)) {         \
            *detail = (uint64_t)(d); \
            return (n);        \
        }                      \
    } while (0)

static uint64_t pattern(uint64_t i) { return i * 0x9E3779B97F4A7C15ULL + 0x1234; }

static int check_mmap(uint64_t *detail)
{
    uint64_t *m = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(1, !FAILED(m) && m != NULL, mem_errno());
    for (uint64_t p = 0; p < 16; p++) {
        CHECK(2, m[p * PAGE / 8] == 0, p); /* fresh pages read zero */
        m[p * PAGE / 8] = pattern(p);
    }
    for (uint64_t p = 0; p < 16; p++)
        CHECK(3, m[p * PAGE / 8] == pattern(p), p);
    /* A hole in the middle; its neighbours keep their data. */
    CHECK(4, munmap((char *)m + 4 * PAGE, 4 * PAGE) == 0, mem_errno());
    CHECK(5, m[3 * PAGE / 8] == pattern(3) && m[8 * PAGE / 8] == pattern(8), 0);
    /* MAP_FIXED_NOREPLACE over a mapped page: EEXIST; into the hole: fine. */
    void *x = mmap(m, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(6, FAILED(x) && mem_errno() == MEM_EEXIST, mem_errno());
    x = mmap((char *)m + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(7, x == (char *)m + 4 * PAGE, (uint64_t)x);
    /* Errors with Linux's errno. */
    CHECK(8, FAILED(mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0)) && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(9, FAILED(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, -1, 0)) && mem_errno() == MEM_EBADF, mem_errno());
    CHECK(10, FAILED(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(11, munmap((char *)m + 1, PAGE) == -1 && mem_errno() == MEM_EINVAL, mem_errno());
    /* Anonymous: fd and a page-aligned offset are ignored; an unaligned offset is EINVAL. */
    x = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 3, 2 * PAGE);
    CHECK(20, !FAILED(x) && munmap(x, PAGE) == 0, mem_errno());
    CHECK(21, FAILED(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1)) && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(12, mprotect(m, PAGE, 0x40) == -1 && mem_errno() == MEM_EINVAL, mem_errno());
    /* mprotect read-only, then back: data kept. */
    CHECK(13, mprotect(m, 4 * PAGE, PROT_READ) == 0, mem_errno());
    CHECK(14, m[PAGE / 8] == pattern(1), 0);
    CHECK(15, mprotect(m, 4 * PAGE, PROT_READ | PROT_WRITE) == 0, mem_errno());
    m[PAGE / 8] = 77;
    CHECK(16, m[PAGE / 8] == 77, 0);
    CHECK(17, msync(m, PAGE, MS_SYNC) == 0, mem_errno());
    CHECK(18, msync(m, PAGE, MS_SYNC | MS_ASYNC) == -1 && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(19, munmap(m, 16 * PAGE) == 0, mem_errno());
    return 0;
}

static int check_shm(uint64_t *detail)
{
    int id = shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600);
    CHECK(30, id >= 0, mem_errno());
    uint64_t *a = shmat(id, NULL, 0);
    CHECK(31, !FAILED(a), mem_errno());
    const uint64_t *b = shmat(id, NULL, SHM_RDONLY);
    CHECK(32, !FAILED(b) && (void *)b != (void *)a, mem_errno());
    for (uint64_t i = 0; i < 3 * PAGE / 8; i += 64)
        a[i] = pattern(i);
    for (uint64_t i = 0; i < 3 * PAGE / 8; i += 64)
        CHECK(33, b[i] == pattern(i), i); /* one segment, two views */
    struct MemShmidDs ds;
    CHECK(34, shmctl(id, IPC_STAT, &ds) == 0, mem_errno());
    CHECK(35, ds.nattch == 2 && ds.size == 3 * PAGE && ds.mode == 0600 && ds.key == IPC_PRIVATE, ds.nattch);
    /* Keyed: IPC_EXCL on an existing key is EEXIST; without it the same id comes back. */
    int k = shmget(0x5eedc, PAGE, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(36, k >= 0, mem_errno());
    CHECK(37, shmget(0x5eedc, PAGE, IPC_CREAT | IPC_EXCL | 0600) == -1 && mem_errno() == MEM_EEXIST, mem_errno());
    CHECK(38, shmget(0x5eedc, PAGE, 0600) == k, mem_errno());
    CHECK(39, shmget(0x5eedd, PAGE, 0600) == -1 && mem_errno() == MEM_ENOENT, mem_errno());
    CHECK(40, shmctl(k, IPC_RMID, NULL) == 0, mem_errno());
    CHECK(41, FAILED(shmat(k, NULL, 0)) && mem_errno() == MEM_EINVAL, mem_errno());
    /* Removed while attached: still readable until the last shmdt. */
    CHECK(42, shmctl(id, IPC_RMID, NULL) == 0, mem_errno());
    CHECK(43, shmdt(a) == 0, mem_errno());
    CHECK(44, b[64] == pattern(64), 0);
    CHECK(45, shmdt(b) == 0, mem_errno());
    CHECK(46, shmdt(b) == -1 && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(47, FAILED(shmat(99999, NULL, 0)) && mem_errno() == MEM_EINVAL, mem_errno());
    CHECK(48, shmctl(id, IPC_STAT, NULL) == -1, 0);
    return 0;
}

#define BLOCKS 2000

static int check_malloc(uint64_t *detail)
{
    static unsigned char *blocks[BLOCKS];
    static size_t sizes[BLOCKS];
    struct MemStats before, after;
    CHECK(60, mem_stats(&before) == 0, mem_errno());
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < BLOCKS; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t n = 1 + (size_t)(x % (i % 100 == 0 ? 300000 : 3000));
            unsigned char *p = malloc(n);
            CHECK(61, p != NULL && ((uintptr_t)p & 15) == 0, n);
            for (size_t j = 0; j < n; j += 61)
                p[j] = (unsigned char)(i + j);
            blocks[i] = p;
            sizes[i] = n;
        }
        for (int i = 0; i < BLOCKS; i += 3) {
            size_t n = sizes[i] * 2 + 100;
            unsigned char *q = realloc(blocks[i], n);
            CHECK(62, q != NULL, n);
            for (size_t j = 0; j < sizes[i]; j += 61)
                CHECK(63, q[j] == (unsigned char)(i + j), j);
            blocks[i] = q;
        }
        for (int i = 0; i < BLOCKS; i++) {
            for (size_t j = 0; j < sizes[i]; j += 61)
                CHECK(64, blocks[i][j] == (unsigned char)(i + j), i);
            free(blocks[i]);
        }
    }
    uint64_t *z = calloc(100000, 8);
    CHECK(65, z != NULL, mem_errno());
    for (size_t i = 0; i < 100000; i += 37)
        CHECK(66, z[i] == 0, i);
    free(z);
    /* More than the quota: null and ENOMEM, and the heap keeps working. */
    CHECK(67, malloc((size_t)1 << 40) == NULL && mem_errno() == MEM_ENOMEM, mem_errno());
    CHECK(68, calloc(SIZE_MAX / 2, 4) == NULL, 0);
    void *p = malloc(100);
    CHECK(69, p != NULL, mem_errno());
    free(p);
    free(NULL);
    mem_heap_trim();
    struct MemHeapStats hs = mem_heap_stats();
    CHECK(70, hs.large_blocks == 0 && hs.failures >= 1, hs.large_blocks);
    CHECK(71, hs.peak_mapped >= 2 * 300000, hs.peak_mapped);
    CHECK(72, mem_stats(&after) == 0, mem_errno());
    /* Everything freed: resident pages back near the start (a segment or two). */
    CHECK(73, after.charged_pages <= before.charged_pages + 40, after.charged_pages);
    return 0;
}

int c_client_main(uint64_t *detail)
{
    int r;
    if ((r = check_mmap(detail)) != 0)
        return r;
    if ((r = check_shm(detail)) != 0)
        return r;
    if ((r = check_malloc(detail)) != 0)
        return r;
    return 0;
}
