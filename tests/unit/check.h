/* CUnit checks that print both values, and the scheduler invariant check. */
#ifndef TF_TESTS_CHECK_H
#define TF_TESTS_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "sched.h"
#include "taskfarm_status.h"

/*
 * Each CHECK_* is an expression that records one CUnit assertion and yields
 * true when it held, so a test can stop a long loop after the first failure
 * (`if (!CHECK_EQ_U(a, b)) break;`) instead of drowning the report in a
 * million copies of it. None of them returns or jumps: CUnit's fatal asserts
 * longjmp out of the test, which would leak whatever the test holds.
 *
 * The message is formatted only on failure, so the checks are cheap enough
 * for loops over a million tasks. CUnit copies the message it is given.
 */

#define CHECK_MSG_LEN 512

static inline bool check_report_(bool ok, const char *file, unsigned line,
                                 const char *msg)
{
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, ok ? "" : msg, file,
                            "", CU_FALSE);
    return ok;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline bool
check_fmt_(bool ok, const char *file, unsigned line, const char *fmt, ...)
{
    if (ok)
        return check_report_(true, file, line, "");
    char msg[CHECK_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return check_report_(false, file, line, msg);
}

static inline bool check_eq_u_(uintmax_t a, uintmax_t b, const char *as,
                               const char *bs, const char *file, unsigned line)
{
    return check_fmt_(a == b, file, line, "%s == %s: %ju != %ju", as, bs, a, b);
}

static inline bool check_eq_i_(intmax_t a, intmax_t b, const char *as,
                               const char *bs, const char *file, unsigned line)
{
    return check_fmt_(a == b, file, line, "%s == %s: %jd != %jd", as, bs, a, b);
}

static inline bool check_le_u_(uintmax_t a, uintmax_t b, const char *as,
                               const char *bs, const char *file, unsigned line)
{
    return check_fmt_(a <= b, file, line, "%s <= %s: %ju > %ju", as, bs, a, b);
}

static inline bool check_rc_(int a, int b, const char *as, const char *bs,
                             const char *file, unsigned line)
{
    return check_fmt_(a == b, file, line, "%s == %s: %s (%d) != %s (%d)", as,
                      bs, tf_err_name(a), a, tf_err_name(b), b);
}

static inline bool check_state_(const tf_sched *s, uint32_t t, tf_state want,
                                const char *ts, const char *file, unsigned line)
{
    tf_state got = t < s->dag.n ? tf_sched_state(s, t) : TF_ST_COUNT_;
    return check_fmt_(got == want, file, line,
                      "state of task %s (%" PRIu32 "): %s != %s", ts, t,
                      tf_state_name(got), tf_state_name(want));
}

static inline bool check_sched_(const tf_sched *s, const char *ss,
                                const char *file, unsigned line)
{
    char why[256] = "";
    bool ok = tf_sched_check(s, why, sizeof why);
    return check_fmt_(ok, file, line, "tf_sched_check(%s): %s", ss, why);
}

#define CHECK_TRUE(x)                                                          \
    check_report_((x) ? true : false, __FILE__, __LINE__, "CHECK_TRUE(" #x ")")
#define CHECK_FALSE(x)                                                         \
    check_report_((x) ? false : true, __FILE__, __LINE__, "CHECK_FALSE(" #x ")")
/* Unsigned and signed equality; both sides are widened to (u)intmax_t. */
#define CHECK_EQ_U(a, b)                                                       \
    check_eq_u_((uintmax_t)(a), (uintmax_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_EQ_I(a, b)                                                       \
    check_eq_i_((intmax_t)(a), (intmax_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_LE_U(a, b)                                                       \
    check_le_u_((uintmax_t)(a), (uintmax_t)(b), #a, #b, __FILE__, __LINE__)
/* Status codes, printed by name: "TF_OK (0) != TF_ECYCLE (-5)". */
#define CHECK_RC(a, b) check_rc_((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STATE(s, t, want)                                                \
    check_state_((s), (t), (want), #t, __FILE__, __LINE__)
/* A condition with a message of the caller's: CHECK_MSG(ok, "fmt", ...). */
#define CHECK_MSG(cond, ...)                                                   \
    check_fmt_((cond) ? true : false, __FILE__, __LINE__, __VA_ARGS__)
/* Every scheduler invariant; on failure prints tf_sched_check's reason. */
#define CHECK_SCHED(s) check_sched_((s), #s, __FILE__, __LINE__)

/*
 * Run every registered suite, verbosely, and free the registry: 0 when
 * every check held, 1 otherwise (the test program's exit status).
 */
static inline int check_run(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#endif
