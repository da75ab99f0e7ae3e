/* The MPI tests' harness: case bookkeeping, agreed verdicts, the checks. */
#include "harness.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
        printf("%d passed, %d failed", s->passed, s->failed);
        if (s->skipped)
            printf(", %d skipped", s->skipped);
        printf("\n");
        fflush(stdout);
    }
    return bad;
}

void mt_log(void *user, int level, int rank, const char *msg)
{
    mt_suite *s = user;
    size_t used = strlen(s->log);
    snprintf(s->log + used, sizeof s->log - used, "%d:%d:%s\n", level, rank,
             msg);
}

/* ---- checks ---- */

/* Counts a failed check; prints the first MT_MAX_PRINTED of a case. */
static bool failed(mt_suite *s, const char *file, int line, const char *msg)
{
    if (s->fails++ < MT_MAX_PRINTED) {
        printf("%s:%d: rank %d: check failed: %s\n", file, line, s->rank, msg);
        fflush(stdout);
    }
    return false;
}

static bool report(mt_suite *s, const char *file, int line, const char *what,
                   const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s vs %s", what, a, b);
    return failed(s, file, line, msg);
}

static bool holds(const char *op, int cmp)
{
    return op[0] == '=' ? cmp == 0 : op[0] == '!' ? cmp != 0 : cmp <= 0;
}

bool mt_check_i_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, intmax_t a, intmax_t b)
{
    if (holds(op, (a > b) - (a < b)))
        return true;
    char what[256], va[32], vb[32];
    snprintf(what, sizeof what, "%s %s %s", ea, op, eb);
    snprintf(va, sizeof va, "%jd", a);
    snprintf(vb, sizeof vb, "%jd", b);
    return report(s, file, line, what, va, vb);
}

bool mt_check_u_(mt_suite *s, const char *file, int line, const char *ea,
                 const char *op, const char *eb, uintmax_t a, uintmax_t b)
{
    if (holds(op, (a > b) - (a < b)))
        return true;
    char what[256], va[32], vb[32];
    snprintf(what, sizeof what, "%s %s %s", ea, op, eb);
    snprintf(va, sizeof va, "%ju", a);
    snprintf(vb, sizeof vb, "%ju", b);
    return report(s, file, line, what, va, vb);
}

bool mt_check_rc_(mt_suite *s, const char *file, int line, const char *ea,
                  const char *eb, int a, int b)
{
    if (a == b)
        return true;
    char what[256], va[64], vb[64];
    snprintf(what, sizeof what, "%s == %s", ea, eb);
    snprintf(va, sizeof va, "%s (%d)", tf_err_name(a), a);
    snprintf(vb, sizeof vb, "%s (%d)", tf_err_name(b), b);
    return report(s, file, line, what, va, vb);
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
    if (info->state == want)
        return true;
    char what[256], va[96];
    snprintf(what, sizeof what, "state of %s", ea);
    snprintf(va, sizeof va, "%s (status %d, attempts %d, rank %d)",
             state_name((int)info->state), info->status, info->attempts,
             info->rank);
    return report(s, file, line, what, va, state_name((int)want));
}

bool mt_check_msg_(mt_suite *s, bool ok, const char *file, int line,
                   const char *fmt, ...)
{
    if (ok)
        return true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return failed(s, file, line, msg);
}
