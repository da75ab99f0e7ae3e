/* The MPI tests' harness: case bookkeeping, agreed verdicts, the checks. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mpi.h>

void mt_init_local(mt_suite *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->size = 1;
}

void mt_init(mt_suite *s, const char *name)
{
    mt_init_local(s, name);
    MPI_Comm_rank(MPI_COMM_WORLD, &s->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s->size);
}

void mt_begin_case(mt_suite *s, const char *name)
{
    s->case_name = name;
    s->fails = 0;
    s->skip_why = NULL;
    s->log[0] = '\0';
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The verdict needs every rank's count: a rank may fail a check alone. */
bool mt_end_case(mt_suite *s)
{
    const char *name = s->case_name;
    long total = 0;
    MPI_Allreduce(&s->fails, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (s->rank == 0) {
        if (total) {
            s->failed++;
            printf("FAIL %s (%ld failed checks)\n%s", name, total, s->log);
        } else if (s->skip_why) {
            s->skipped++;
            printf("skip %s: %s\n", name, s->skip_why);
        } else {
            s->passed++;
            printf("ok   %s\n", name);
        }
        fflush(stdout);
    }
    return total == 0;
}

bool mt_run_case(mt_suite *s, const char *name, mt_case_fn fn)
{
    mt_begin_case(s, name);
    fn(s);
    return mt_end_case(s);
}

void mt_skip(mt_suite *s, const char *why) { s->skip_why = why; }

int mt_finish(mt_suite *s)
{
    int bad = s->failed != 0;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (s->rank == 0) {
        printf("%s: %d passed, %d failed", s->name, s->passed, s->failed);
        if (s->skipped)
            printf(", %d skipped", s->skipped);
        printf("\n");
        fflush(stdout);
    }
    return bad;
}

double mt_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double mt_wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mt_log(void *user, int level, int rank, const char *msg)
{
    mt_suite *s = user;
    size_t used = strlen(s->log);
    snprintf(s->log + used, sizeof s->log - used, "%d:%d:%s\n", level, rank,
             msg);
}

/* ---- checks ---- */

static bool holds(const char *op, int cmp)
{
    return op[0] == '=' ? cmp == 0 : op[0] == '!' ? cmp != 0 : cmp <= 0;
}

bool mt_check_i_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, intmax_t a, intmax_t b)
{
    return mt_check_msg_(s, holds(op, (a > b) - (a < b)), file, line,
                         "%s %s %s: %jd vs %jd", ea, op, eb, a, b);
}

bool mt_check_u_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, uintmax_t a, uintmax_t b)
{
    return mt_check_msg_(s, holds(op, (a > b) - (a < b)), file, line,
                         "%s %s %s: %ju vs %ju", ea, op, eb, a, b);
}

bool mt_check_rc_(mt_suite *s, const char *file, int line, const char *ea,
                  const char *eb, int a, int b)
{
    return mt_check_msg_(s, a == b, file, line, "%s == %s: %s (%d) vs %s (%d)",
                         ea, eb, tf_err_name(a), a, tf_err_name(b), b);
}

static const char *state_name(int st)
{
    static const char *const names[] = {
        "HELD", "PENDING", "READY", "DISPATCHED", "DONE", "FAILED", "SKIPPED"};
    return st >= 0 && st < 7 ? names[st] : "?";
}

bool mt_check_state_(mt_suite *s, const char *file, int line, const char *ea,
                     const tf_task_info *info, tf_task_state want)
{
    return mt_check_msg_(
        s, info->state == want, file, line,
        "state of %s: %s (status %d, attempts %d, rank %d) vs %s", ea,
        state_name((int)info->state), info->status, info->attempts, info->rank,
        state_name((int)want));
}

/* The message is formatted only on failure: checks in long loops stay cheap.
 * A rank prints the first MT_MAX_PRINTED failures of a case and counts the
 * rest. */
bool mt_check_msg_(mt_suite *s, bool ok, const char *file, int line,
                   const char *fmt, ...)
{
    if (ok)
        return true;
    if (s->fails++ >= MT_MAX_PRINTED)
        return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("%s:%d: rank %d: check failed: %s\n", file, line, s->rank, msg);
    fflush(stdout);
    return false;
}
