/* taskfarm run's progress on rank 0: counters, the live line or periodic status lines, OUTDIR/status, the summary. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "farm.h"
#include "runstate.h"

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cli_progress_break(cli_progress *p)
{
    if (p->line_len)
        fputc('\n', stderr);
    p->line_len = 0;
}

static void format_duration(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* done/total, running, failed, skipped, rate, ETA; rate counts this run. */
static void progress_text(cli_progress *p, tf_runtime *rt, char *buf,
                          size_t len)
{
    double el = (cli_now_ns() - p->t0_ns) / 1e9;
    uint64_t ran = p->done - p->resumed;
    double rate = el > 0 ? ran / el : 0;
    uint64_t left =
        p->total - p->done - p->failed - p->skipped - p->not_needed;
    char eta[32] = "?", elapsed[32];
    if (rate > 0)
        format_duration(left / rate, eta, sizeof eta);
    format_duration(el, elapsed, sizeof elapsed);
    tf_stats st;
    tf_get_stats(rt, &st);
    snprintf(buf, len,
             "%llu/%llu done, %llu running, %llu failed, %llu skipped, "
             "%.1f tasks/s, elapsed %s, ETA %s",
             (unsigned long long)p->done, (unsigned long long)p->total,
             (unsigned long long)st.running, (unsigned long long)p->failed,
             (unsigned long long)p->skipped, rate, elapsed, eta);
}

void cli_progress_status(cli_progress *p, tf_runtime *rt, const char *state)
{
    tf_stats st;
    tf_get_stats(rt, &st);
    tf_runstate rs = {
        .pid = getpid(),
        .ranks = p->ranks,
        .slots = p->total_slots,
        .total = p->total,
        .done = p->done,
        .resumed = p->resumed,
        .failed = p->failed,
        .skipped = p->skipped,
        .not_needed = p->not_needed,
        .running = st.running,
        .interrupted = p->interrupted,
        .not_started = p->not_started,
        .started_ns = p->t0_ns,
        .updated_ns = cli_now_ns(),
        .follow = p->follow,
        .taken = p->taken,
    };
    snprintf(rs.state, sizeof rs.state, "%s", state);
    snprintf(rs.host, sizeof rs.host, "%s", p->host);
    snprintf(rs.taskfile, sizeof rs.taskfile, "%s", p->o->taskfile);
    if (!getcwd(rs.cwd, sizeof rs.cwd))
        rs.cwd[0] = 0; /* too long: status looks under its own */
    snprintf(rs.output, sizeof rs.output, "%s", p->output);
    tf_runstate_write(p->o->outdir, &rs);
}

void cli_progress_summary(cli_progress *p, double secs)
{
    cli_progress_break(p);
    double util = secs > 0 && p->total_slots
                      ? p->busy_slot_ns / 1e9 / (secs * p->total_slots)
                      : 0;
    char resumed[64] = "", stop[96] = "", unneeded[48] = "";
    if (p->resumed)
        snprintf(resumed, sizeof resumed, " (%llu in an earlier run)",
                 (unsigned long long)p->resumed);
    /* What a stop left for --resume: neither failed nor skipped. */
    if (p->interrupted || p->not_started)
        snprintf(stop, sizeof stop, ", %llu interrupted, %llu not started",
                 (unsigned long long)p->interrupted,
                 (unsigned long long)p->not_started);
    /* @afternotok tasks with no failure to handle: neither done nor skipped. */
    if (p->not_needed)
        snprintf(unneeded, sizeof unneeded, ", %llu not needed",
                 (unsigned long long)p->not_needed);
    fprintf(stderr,
            "taskfarm: %llu tasks: %llu done%s%s, %llu failed, %llu skipped%s, "
            "%llu retried; %.3f s on %d rank%s, %llu slot%s, %.0f%% slot "
            "utilisation; joblog %s/joblog.tsv\n",
            (unsigned long long)p->total, (unsigned long long)p->done,
            resumed, stop,
            (unsigned long long)p->failed, (unsigned long long)p->skipped,
            unneeded,
            (unsigned long long)p->retried, secs, p->ranks,
            p->ranks > 1 ? "s" : "", (unsigned long long)p->total_slots,
            p->total_slots == 1 ? "" : "s", util * 100, p->o->outdir);
}


void cli_progress_tick(cli_progress *p, tf_runtime *rt)
{
    if (p->o->quiet)
        return;
    char line[256];
    double el = (cli_now_ns() - p->t0_ns) / 1e9;
    if (p->tty) {
        progress_text(p, rt, line, sizeof line);
        int len = fprintf(stderr, "\r%s", line) - 1;
        if (len < p->line_len)
            fprintf(stderr, "%*s", p->line_len - len, "");
        p->line_len = len;
    } else if (p->o->status_every > 0 && el >= p->next_status) {
        progress_text(p, rt, line, sizeof line);
        fprintf(stderr, "taskfarm: %s\n", line);
        p->next_status = el + p->o->status_every;
    }
}
