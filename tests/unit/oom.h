/* Allocations failed on purpose: malloc wrappers for tests built with --wrap */
#ifndef TF_TESTS_OOM_H
#define TF_TESTS_OOM_H

/*
 * A test that includes this is linked with
 *   -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
 * so every malloc/calloc/realloc of the objects linked into it (taskfarm's
 * code, and the test's own) comes to the __wrap_* functions below; shared
 * libraries (CUnit, libc, HDF5) call the real ones, as the linker does not
 * rewrite them. free is not wrapped: it cannot fail. Armed with oom_start,
 * the k-th allocation fails (OOM_ONCE), or that one and every later one
 * until oom_relent (OOM_FROM); the largest request is recorded either way.
 * tests/unit/test_oom.c and tests/ckpt/test_ckpt.c use it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef enum oom_mode {
    OOM_ONCE, /* fail the k-th allocation only */
    OOM_FROM, /* fail the k-th and every later one until oom_relent */
} oom_mode;

/* One scenario run's plan and what happened; the tests pass it around. */
typedef struct oom {
    oom_mode mode;
    /*
     * volatile: the compiler may assume a call to malloc leaves the
     * caller's objects alone and keep them in registers across it.
     */
    volatile unsigned long fail_at; /* 1-based allocation to fail; 0 = none */
    volatile unsigned long seen;    /* allocations made while armed */
    volatile unsigned long failed;  /* allocations refused */
    volatile size_t largest;        /* bytes of the largest request seen */
} oom;

/*
 * The one piece of mutable global state: malloc's signature is fixed, so
 * the wrappers cannot be handed a context and must find the armed one
 * here. NULL means "pass everything through" (outside scenarios, and while
 * the test itself allocates or runs its checks).
 */
static struct {
    /*
     * volatile: GCC treats malloc as a builtin that reads no user memory,
     * so without it `armed = NULL; p = malloc(n); armed = o;` loses its
     * first store and the test's own allocations get failed.
     */
    oom *volatile armed;
} injector;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static inline bool should_fail(size_t bytes)
{
    oom *o = injector.armed;
    if (!o)
        return false;
    o->seen++;
    if (bytes > o->largest)
        o->largest = bytes;
    if (!o->fail_at)
        return false;
    if (o->seen == o->fail_at ||
        (o->mode == OOM_FROM && o->seen > o->fail_at)) {
        o->failed++;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    return should_fail(n) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    size_t bytes = size && n > SIZE_MAX / size ? SIZE_MAX : n * size;
    return should_fail(bytes) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail(n) ? NULL : __real_realloc(p, n);
}

static inline void oom_start(oom *o, oom_mode mode, unsigned long k)
{
    *o = (oom){mode, k, 0, 0, 0};
    injector.armed = o;
}

static inline void oom_stop(void)
{
    injector.armed = NULL;
}

/* Let memory back after an injected failure; later allocations succeed. */
static inline void oom_relent(oom *o)
{
    o->fail_at = 0;
}

#endif
