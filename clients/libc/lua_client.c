/*
 * Scenario lua (clients/SCENARIOS.md): the Lua 5.4 interpreter (the lua-src crate's
 * sources, unmodified) on picolibc, its allocator (luaL_newstate's lua_Alloc) over
 * mem-capi's realloc/free, so every byte of the interpreter's memory comes from the memory
 * server. Scripts embedded below work the garbage collector and the allocator hard —
 * binary trees of depth 16 (and a stretch tree of 17), string building and
 * string.format, 100,000-element tables sorted, searched and emptied, a hash of 100,000
 * keys, closures and coroutines — and check their own results with assert. The
 * interpreter's collectgarbage("count") and the heap's counters are printed before and
 * after a full collection; after lua_close and a heap trim the client's charged pages are
 * back near where they started.
 *
 * Returns 0 (PASS) or the number of the failed check; `r` gets the numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "mem_server.h"

/* What the scenario reports (mirrored in clients/libc-client/src/main.rs). */
struct lua_report {
    uint64_t detail;          /* the failed check's detail (the failed script's number) */
    uint64_t faults;          /* faults the server served for this client during the run */
    uint64_t charged_start;   /* charged pages before the interpreter started */
    uint64_t charged_peak;    /* the most charged pages seen between scripts */
    uint64_t charged_closed;  /* after lua_close */
    uint64_t charged_trimmed; /* after mem_heap_trim */
    uint64_t heap_peak;       /* the heap's peak mapped bytes */
    uint64_t gc_kib_before;   /* collectgarbage("count") before / after a full collection */
    uint64_t gc_kib_after;
};

static const char *const scripts[] = {
    /* 1: binary trees. */
    "local function make(d)\n"
    "  if d == 0 then return {} end\n"
    "  d = d - 1\n"
    "  return { make(d), make(d) }\n"
    "end\n"
    "local function check(t)\n"
    "  if t[1] then return 1 + check(t[1]) + check(t[2]) end\n"
    "  return 1\n"
    "end\n"
    "local N = 16\n"
    "local stretch = make(N + 1)\n"
    "assert(check(stretch) == 2 ^ (N + 2) - 1)\n"
    "stretch = nil\n"
    "long_lived = make(N)\n"
    "for d = 4, N, 4 do\n"
    "  local iters, sum = 2 ^ (N - d), 0\n"
    "  for i = 1, iters do sum = sum + check(make(d)) end\n"
    "  assert(sum == iters * (2 ^ (d + 1) - 1), d)\n"
    "end\n"
    "assert(check(long_lived) == 2 ^ (N + 1) - 1)\n",

    /* 2: strings. */
    "local parts, len = {}, 0\n"
    "for i = 1, 20000 do\n"
    "  local p = string.format('%05d:%x:%.3f;', i, i * 7, i / 7)\n"
    "  parts[#parts + 1] = p\n"
    "  len = len + #p\n"
    "end\n"
    "local s = table.concat(parts)\n"
    "assert(#s == len)\n"
    "assert(s:sub(1, 28) == '00001:7:0.143;00002:e:0.286;', s:sub(1, 28))\n"
    "assert(select(2, s:gsub(';', ';')) == 20000)\n"
    "assert(s:find('20000:222e0:2857.143;', 1, true) == #s - 20)\n"
    "local acc = ''\n"
    "for i = 1, 2000 do acc = acc .. tostring(i) end\n"
    "assert(#acc == 6893)\n"
    "local words = {}\n"
    "for w in ('the quick brown fox jumps over the lazy dog '):rep(1000):gmatch('%a+') do\n"
    "  words[w] = (words[w] or 0) + 1\n"
    "end\n"
    "assert(words.the == 2000 and words.fox == 1000)\n"
    "assert(string.format('%g %5.2f %s %q', 1e20, math.pi, 'x', 'a\\nb') == '1e+20  3.14 x \"a\\\\\\nb\"')\n"
    "assert(tostring(2^53) == '9.007199254741e+15' and math.tointeger(2^53) == 9007199254740992)\n",

    /* 3: tables. */
    "local t, x, sum = {}, 12345, 0\n"
    "for i = 1, 100000 do\n"
    "  x = (x * 1103515245 + 12345) % 2147483648\n"
    "  t[i] = x\n"
    "  sum = sum + x\n"
    "end\n"
    "table.sort(t)\n"
    "local s2 = t[1]\n"
    "for i = 2, #t do assert(t[i - 1] <= t[i]); s2 = s2 + t[i] end\n"
    "assert(s2 == sum and #t == 100000)\n"
    "table.sort(t, function(a, b) return a > b end)\n"
    "for i = 2, #t, 97 do assert(t[i - 1] >= t[i]) end\n"
    "for i = 1, 50 do table.remove(t, 1) end\n"
    "for i = 1, 49950 do table.remove(t) end\n"
    "assert(#t == 50000)\n"
    "table.insert(t, 1, -1)\n"
    "assert(t[1] == -1 and #t == 50001)\n"
    "local h = {}\n"
    "for i = 1, 100000 do h['k' .. i] = i end\n"
    "local n, hs = 0, 0\n"
    "for k, v in pairs(h) do n = n + 1; hs = hs + v end\n"
    "assert(n == 100000 and hs == 100000 * 100001 // 2)\n"
    "for i = 1, 100000, 2 do h['k' .. i] = nil end\n"
    "n = 0\n"
    "for k in pairs(h) do n = n + 1 end\n"
    "assert(n == 50000 and h.k2 == 2 and h.k1 == nil)\n",

    /* 4: closures and coroutines. */
    "local function counter()\n"
    "  local c = 0\n"
    "  return function() c = c + 1; return c end\n"
    "end\n"
    "local fs = {}\n"
    "for i = 1, 10000 do fs[i] = counter() end\n"
    "for r = 1, 3 do for i = 1, #fs do fs[i]() end end\n"
    "for i = 1, #fs do assert(fs[i]() == 4) end\n"
    "local function gen(n)\n"
    "  return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)\n"
    "end\n"
    "local total = 0\n"
    "for k = 1, 1000 do for v in gen(20) do total = total + v end end\n"
    "assert(total == 1000 * 210)\n"
    "local cos = {}\n"
    "for i = 1, 5000 do\n"
    "  cos[i] = coroutine.create(function(a) local b = coroutine.yield(a + 1); return a + b end)\n"
    "end\n"
    "for i = 1, 5000 do local ok, v = coroutine.resume(cos[i], i); assert(ok and v == i + 1) end\n"
    "for i = 1, 5000 do\n"
    "  local ok, v = coroutine.resume(cos[i], 2 * i)\n"
    "  assert(ok and v == 3 * i and coroutine.status(cos[i]) == 'dead')\n"
    "end\n"
    "local ok, err = pcall(function() error({code = 42}) end)\n"
    "assert(not ok and err.code == 42)\n",
};

static struct lua_report *R;

static void sample(void)
{
    MemStats m;
    if (mem_stats(&m) == 0 && m.charged_pages > R->charged_peak)
        R->charged_peak = m.charged_pages;
}

static void print_heap(const char *when, lua_State *L)
{
    MemHeapStats h = mem_heap_stats();
    printf("LUA-HEAP %s: collectgarbage('count') = %d KiB, heap mapped %lu KiB (peak %lu KiB), large blocks %lu\n",
           when, lua_gc(L, LUA_GCCOUNT, 0), (unsigned long)(h.mapped / 1024), (unsigned long)(h.peak_mapped / 1024),
           (unsigned long)h.large_blocks);
}

#define CHECK(n, cond, d)              \
    do {                               \
        if (!(cond)) {                 \
            R->detail = (uint64_t)(d); \
            return (n);                \
        }                              \
    } while (0)

int lua_client_main(struct lua_report *r)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},   {LUA_UTF8LIBNAME, luaopen_utf8},
    };
    MemStats m;
    memset(r, 0, sizeof *r);
    R = r;
    CHECK(1, mem_stats(&m) == 0, mem_errno());
    r->charged_start = r->charged_peak = m.charged_pages;
    uint64_t faults_start = m.faults_served;

    lua_State *L = luaL_newstate();
    CHECK(2, L != NULL, 0);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "=script%u", (unsigned)(i + 1));
        if (luaL_loadbuffer(L, scripts[i], strlen(scripts[i]), name) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
            printf("lua: script %u: %s\n", (unsigned)(i + 1), lua_tostring(L, -1));
            lua_close(L);
            R->detail = i + 1;
            return 10 + (int)i;
        }
        sample();
    }
    /* The long-lived tree is still reachable (a global): a full collection keeps it; then
     * drop it and collect again. */
    r->gc_kib_before = (uint64_t)lua_gc(L, LUA_GCCOUNT, 0);
    print_heap("before full collection", L);
    lua_pushnil(L);
    lua_setglobal(L, "long_lived");
    lua_gc(L, LUA_GCCOLLECT);
    r->gc_kib_after = (uint64_t)lua_gc(L, LUA_GCCOUNT, 0);
    print_heap("after full collection", L);
    CHECK(3, r->gc_kib_after * 4 < r->gc_kib_before, r->gc_kib_after);
    lua_close(L);

    CHECK(4, mem_stats(&m) == 0, mem_errno());
    r->charged_closed = m.charged_pages;
    mem_heap_trim();
    CHECK(5, mem_stats(&m) == 0, mem_errno());
    r->charged_trimmed = m.charged_pages;
    r->faults = m.faults_served - faults_start;
    r->heap_peak = mem_heap_stats().peak_mapped;
    printf("LUA-NUMBERS faults=%llu charged-start=%llu peak=%llu closed=%llu trimmed=%llu heap-peak-pages=%llu "
           "gc-kib-before=%llu gc-kib-after=%llu\n",
           (unsigned long long)r->faults, (unsigned long long)r->charged_start, (unsigned long long)r->charged_peak,
           (unsigned long long)r->charged_closed, (unsigned long long)r->charged_trimmed,
           (unsigned long long)(r->heap_peak / 4096), (unsigned long long)r->gc_kib_before,
           (unsigned long long)r->gc_kib_after);
    CHECK(6, r->charged_trimmed <= r->charged_start + 64, r->charged_trimmed);
    return 0;
}
