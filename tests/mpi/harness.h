/* The MPI tests' harness: named cases, checks, verdicts all ranks agree on. */
#ifndef TF_TESTS_MPI_HARNESS_H
#define TF_TESTS_MPI_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "taskfarm.h"

/*
 * A test program makes one mt_suite, runs its cases with mt_run_case (on
 * every rank, in the same order) and ends with mt_finish:
 *
 *     mt_suite s;
 *     mt_init(&s, "test_foo");          after MPI_Init
 *     mt_run_case(&s, "a does b", case_a);
 *     int rc = mt_finish(&s);           the same on every rank
 *     MPI_Finalize();
 *     return rc;
 *
 * Any rank may check anything. A failed check prints file:line, the rank,
 * the expression and both values (status codes by their TF_E* names, as
 * tests/unit/check.h does), and counts against the current case; at the
 * end of a case the counts are summed over MPI_COMM_WORLD, so every rank
 * agrees on its verdict, and rank 0 prints one line for it:
 *
 *     ok   NAME
 *     FAIL NAME (N failed checks)       followed by rank 0's captured log
 *     skip NAME: WHY                    the case called mt_skip
 *
 * and mt_finish prints "NAME: P passed, F failed[, S skipped]". run.sh
 * fails a case that is skipped at every rank count it runs.
 *
 * Each EXPECT_* is an expression that yields true when the check held, so a
 * test can stop a long loop after the first failure. None of them returns,
 * jumps or calls MPI: checks may be made anywhere, also in a process that
 * never called MPI_Init (mt_init_local).
 */

/* Failed checks a rank prints per case; it counts the rest silently. */
#define MT_MAX_PRINTED 20
#define MT_LOG_LEN 8192

typedef struct mt_suite {
    int rank, size;        /* in MPI_COMM_WORLD; 0 and 1 under mt_init_local */
    const char *name;      /* the program, for the count line */
    long fails;            /* this rank's failed checks in the current case */
    const char *case_name; /* the current case */
    const char *skip_why;  /* set by mt_skip */
    int passed, failed, skipped; /* cases, counted on rank 0 */
    void *user;                  /* the test's own state for its cases */
    /* This rank's log of the current case, when the test gives mt_log to
       tf_config.log_fn; rank 0's is printed under a FAIL line. */
    char log[MT_LOG_LEN];
} mt_suite;

typedef void (*mt_case_fn)(mt_suite *s);

/* Fills s for this process in MPI_COMM_WORLD (MPI must be initialized). */
void mt_init(mt_suite *s, const char *name);

/* Fills s for a process outside MPI (a child a case forks): rank 0 of 1. */
void mt_init_local(mt_suite *s, const char *name);

/*
 * Runs fn as the case NAME: collective over MPI_COMM_WORLD (a barrier
 * before, the verdict after). Returns whether the case passed or was
 * skipped, on every rank alike.
 */
bool mt_run_case(mt_suite *s, const char *name, mt_case_fn fn);

/*
 * The same, for a case written inline between mt_begin_case and
 * mt_end_case (checks a program makes before its cases can start).
 */
void mt_begin_case(mt_suite *s, const char *name);
bool mt_end_case(mt_suite *s);

/*
 * Marks the current case as not run here, for WHY (a static string). A
 * case that also failed a check still fails. Every rank that skips should
 * say so; rank 0's reason is printed.
 */
void mt_skip(mt_suite *s, const char *why);

/*
 * Prints the summary on rank 0 and returns the exit status every rank
 * agrees on: 0 when no case failed, 1 otherwise. Collective.
 */
int mt_finish(mt_suite *s);

/*
 * This process's CPU time (user + system, every thread), and a monotonic
 * clock, in seconds: an idle rank's share of a core is their ratio.
 */
double mt_cpu_seconds(void);
double mt_wall_seconds(void);

/* A tf_log_fn appending to ((mt_suite *)user)->log. */
void mt_log(void *user, int level, int rank, const char *msg);

/* ---- checks ---- */

bool mt_check_i_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, intmax_t a, intmax_t b);
bool mt_check_u_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, uintmax_t a, uintmax_t b);
bool mt_check_rc_(mt_suite *s, const char *file, int line, const char *ea,
                  const char *eb, int a, int b);
bool mt_check_state_(mt_suite *s, const char *file, int line, const char *ea,
                     const tf_task_info *info, tf_task_state want);
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
bool mt_check_msg_(mt_suite *s, bool ok, const char *file, int line,
                   const char *fmt, ...);

/* Signed (EXPECT_EQ, _NE, _LE) and unsigned (EXPECT_EQ_U, _LE_U)
 * comparisons; both sides are widened to intmax_t or uintmax_t. */
#define MT_CMP_I_(s, a, op, b)                                                 \
    mt_check_i_((s), __FILE__, __LINE__, #a, op, #b, (intmax_t)(a),            \
                (intmax_t)(b))
#define MT_CMP_U_(s, a, op, b)                                                 \
    mt_check_u_((s), __FILE__, __LINE__, #a, op, #b, (uintmax_t)(a),           \
                (uintmax_t)(b))
#define EXPECT_EQ(s, a, b) MT_CMP_I_(s, a, "==", b)
#define EXPECT_NE(s, a, b) MT_CMP_I_(s, a, "!=", b)
#define EXPECT_LE(s, a, b) MT_CMP_I_(s, a, "<=", b)
#define EXPECT_EQ_U(s, a, b) MT_CMP_U_(s, a, "==", b)
#define EXPECT_LE_U(s, a, b) MT_CMP_U_(s, a, "<=", b)
#define EXPECT_TRUE(s, c)                                                      \
    mt_check_i_((s), __FILE__, __LINE__, #c, "==", "true", (intmax_t)!!(c), 1)
/* Status codes, printed by name: "TF_OK (0) vs TF_EIO (-11)". */
#define EXPECT_RC(s, a, b)                                                     \
    mt_check_rc_((s), __FILE__, __LINE__, #a, #b, (a), (b))
/* A task's state, with its status, attempts and rank when it differs. */
#define EXPECT_STATE(s, info, want)                                            \
    mt_check_state_((s), __FILE__, __LINE__, #info, &(info), (want))
/* A condition with a message of the caller's: EXPECT_MSG(s, ok, "fmt", ...).
 */
#define EXPECT_MSG(s, cond, ...)                                               \
    mt_check_msg_((s), (cond) ? true : false, __FILE__, __LINE__, __VA_ARGS__)

#endif
