/* taskfarm status OUTDIR: how a run is doing, while it runs or after. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "runstate.h"

/*
 * The tasks failing now: each line whose last attempt in the joblog failed
 * and that has no successful attempt (one fixed and rerun with --resume is
 * not a failure any more; a retried one shows its last attempt). Printed
 * up to `max` (text), or all into `arr` (--json). Returns how many.
 */
static size_t failing(const char *outdir, int max, json_t *arr)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/joblog.tsv", outdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    /* Pass 1: each line's last row's offset, and whether it ever succeeded. */
    typedef struct {
        long off; /* of its last failed row; -1: none */
        bool ok;
    } seen;
    seen *v = NULL;
    size_t nv = 0, count = 0;
    char line[8192];
    for (long off = ftell(f); fgets(line, sizeof line, f); off = ftell(f)) {
        char *end;
        unsigned long seq = strtoul(line, &end, 10);
        if (end == line || *end != '\t' || seq == 0 || seq > (1ul << 30))
            continue; /* the header, or not a row */
        if (seq >= nv) {
            size_t n = nv ? nv : 1024;
            while (n <= seq)
                n *= 2;
            seen *nvv = realloc(v, n * sizeof *v);
            if (!nvv)
                break;
            for (size_t i = nv; i < n; i++)
                nvv[i] = (seen){-1, false};
            v = nvv;
            nv = n;
        }
        char *col[9];
        int k = 0;
        col[k++] = line;
        for (char *c = line; *c && k < 9; c++)
            if (*c == '\t')
                col[k++] = c + 1;
        if (k < 9)
            continue;
        if (!strncmp(col[6], "0\t", 2) && !strncmp(col[7], "0\t", 2))
            v[seq].ok = true;
        else
            v[seq].off = off;
    }
    /* Pass 2: the rows, in line order. */
    int shown = 0;
    for (size_t seq = 1; seq < nv; seq++) {
        if (v[seq].ok || v[seq].off < 0 || fseek(f, v[seq].off, SEEK_SET) ||
            !fgets(line, sizeof line, f))
            continue;
        count++;
        char *col[9];
        int k = 0;
        col[k++] = line;
        for (char *c = line; *c && k < 9; c++)
            if (*c == '\t') {
                *c = 0;
                col[k++] = c + 1;
            }
        if (k < 9)
            continue;
        col[8][strcspn(col[8], "\n")] = 0;
        if (arr)
            json_array_append_new(
                arr, json_pack("{s:I, s:s, s:I, s:I, s:s}", "line",
                               (json_int_t)seq, "host", col[1], "exit",
                               (json_int_t)atoll(col[6]), "signal",
                               (json_int_t)atoll(col[7]), "command", col[8]));
        else if (shown++ < max)
            printf("  failed: line %s on %s, exit %s, signal %s: %s\n",
                   col[0], col[1], col[6], col[7], col[8]);
    }
    if (!arr && shown > max)
        printf("  ... and %d more failing tasks in %s\n", shown - max, path);
    free(v);
    fclose(f);
    return count;
}

/* The run's exit status (docs/taskfile.md, "Exit status") from its state. */
static int exit_of(const char *state, bool gone)
{
    return !strcmp(state, "done")      ? EXIT_ALL_OK
           : !strcmp(state, "failed")  ? EXIT_SOME_FAILED
           : !strcmp(state, "stopped") ? EXIT_RESUMABLE
           : !strcmp(state, "running") ? (gone ? EXIT_RESUMABLE : EXIT_ALL_OK)
                                       : EXIT_RUNTIME;
}

int cli_status(int argc, char **argv)
{
    const char *dir = NULL;
    bool json = false, help = false, bad = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            help = true;
        else if (argv[i][0] == '-' || dir)
            bad = true;
        else
            dir = argv[i];
    }
    if (help || bad || !dir) {
        fprintf(help ? stdout : stderr,
                "usage: taskfarm status [--json] OUTDIR\nShow the state of "
                "the run writing to OUTDIR, while it runs or after, and exit "
                "with\nthe run's exit status (0 done or still running, 1 "
                "failed, 75 stopped or\ninterrupted: finish with --resume, "
                "3 error). --json: one JSON object.\n");
        return help ? EXIT_ALL_OK : EXIT_USAGE;
    }
    tf_runstate rs;
    int e = tf_runstate_read(dir, &rs);
    if (e) {
        fprintf(stderr, "taskfarm: %s: %s\n", dir,
                e == ENOENT ? "no taskfarm run there (no status file)"
                : e == EINVAL ? "status file is damaged"
                              : strerror(e));
        return EXIT_USAGE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = ts.tv_sec + ts.tv_nsec / 1e9;
    double started = rs.started_ns / 1e9, updated = rs.updated_ns / 1e9;
    bool running = !strcmp(rs.state, "running"), gone = false;
    const char *note = "";
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    /*
     * A run killed hard (kill -9, node failure) never writes its final
     * state. On rank 0's host we can tell; elsewhere the age of the last
     * update hints at it.
     */
    if (running && !strcmp(host, rs.host) && rs.pid > 0 &&
        kill(rs.pid, 0) != 0 && errno == ESRCH) {
        gone = true;
        note = " (interrupted: its process is gone; finish it with --resume)";
    } else if (running && now - updated > 60) {
        note = " (no update for over a minute: interrupted?)";
    }
    double elapsed = (running && !*note ? now : updated) - started;
    uint64_t ran = rs.done - rs.resumed;
    double rate = elapsed > 0 ? ran / elapsed : 0;
    uint64_t left = rs.total - rs.done - rs.failed - rs.skipped;
    uint64_t busy = running && !gone ? rs.running : 0;
    if (json) {
        json_t *fails = json_array();
        failing(dir, 0, fails);
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:s, s:i, s:I, s:s, s:I, s:I, s:I, s:I, s:I, "
            "s:I, s:I, s:f, s:f, s:o, s:o, s:i}",
            "outdir", dir, "state", rs.state, "interrupted", gone,
            "taskfile", rs.taskfile, "ranks", rs.ranks, "slots",
            (json_int_t)rs.slots, "host", rs.host, "pid", (json_int_t)rs.pid,
            "total", (json_int_t)rs.total, "done", (json_int_t)rs.done,
            "resumed", (json_int_t)rs.resumed, "running", (json_int_t)busy,
            "failed", (json_int_t)rs.failed, "skipped",
            (json_int_t)rs.skipped, "elapsed_s", elapsed, "tasks_per_s", rate,
            "eta_s",
            running && rate > 0 && !*note ? json_real(left / rate)
                                          : json_null(),
            "failing", fails, "exit", exit_of(rs.state, gone));
        json_object_set_new(o, "left", json_integer((json_int_t)left));
        /* Of those left, what a stop ended or kept from starting. */
        json_object_set_new(o, "interrupted_tasks",
                            json_integer((json_int_t)rs.interrupted));
        json_object_set_new(o, "not_started",
                            json_integer((json_int_t)rs.not_started));
        if (rs.output[0])
            json_object_set_new(o, "output", json_string(rs.output));
        char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                       : NULL;
        if (!text) {
            fprintf(stderr, "taskfarm: out of memory\n");
            json_decref(o);
            return EXIT_RUNTIME;
        }
        printf("%s\n", text);
        free(text);
        json_decref(o);
        return exit_of(rs.state, gone);
    }
    printf("%s: %s%s\n", dir, rs.state, note);
    printf("  task file %s, %d rank%s, %llu slots, rank 0 on %s (pid %ld)\n",
           rs.taskfile, rs.ranks, rs.ranks == 1 ? "" : "s",
           (unsigned long long)rs.slots, rs.host, (long)rs.pid);
    printf("  %llu/%llu done", (unsigned long long)rs.done,
           (unsigned long long)rs.total);
    if (rs.resumed)
        printf(" (%llu in an earlier run)", (unsigned long long)rs.resumed);
    printf(", %llu running, %llu failed, %llu skipped, %llu left",
           (unsigned long long)busy, (unsigned long long)rs.failed,
           (unsigned long long)rs.skipped, (unsigned long long)left);
    /* A stop's tasks are neither failed nor skipped: --resume runs them. */
    if (rs.interrupted || rs.not_started)
        printf(" (%llu interrupted, %llu not started)",
               (unsigned long long)rs.interrupted,
               (unsigned long long)rs.not_started);
    printf("\n");
    printf("  elapsed %.1f s, %.1f tasks/s", elapsed, rate);
    if (running && rate > 0 && !*note)
        printf(", ETA %.0f s", left / rate);
    printf("\n");
    if (rs.output[0])
        printf("  output %s\n", rs.output);
    failing(dir, 10, NULL);
    return exit_of(rs.state, gone);
}
