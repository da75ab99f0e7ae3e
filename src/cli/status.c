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

#include "cli.h"
#include "runstate.h"

/* Up to `max` failed attempts from the joblog (Exitval or Signal not 0). */
static void list_failures(const char *outdir, int max)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/joblog.tsv", outdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[4096];
    int shown = 0, more = 0;
    while (fgets(line, sizeof line, f)) {
        char *col[9];
        int k = 0;
        col[k++] = line;
        for (char *c = line; *c && k < 9; c++)
            if (*c == '\t') {
                *c = 0;
                col[k++] = c + 1;
            }
        if (k < 9 || line[0] < '0' || line[0] > '9')
            continue;
        if (!strcmp(col[6], "0") && !strcmp(col[7], "0"))
            continue;
        if (shown == max) {
            more++;
            continue;
        }
        col[8][strcspn(col[8], "\n")] = 0;
        printf("  failed: line %s on %s, exit %s, signal %s: %s\n", col[0],
               col[1], col[6], col[7], col[8]);
        shown++;
    }
    if (more)
        printf("  ... and %d more failed attempts in %s\n", more, path);
    fclose(f);
}

int cli_status(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        bool help = argc == 2 && (!strcmp(argv[1], "-h") ||
                                  !strcmp(argv[1], "--help"));
        fprintf(help ? stdout : stderr,
                "usage: taskfarm status OUTDIR\nShow the progress of the "
                "run writing to OUTDIR, while it runs or after.\n");
        return help ? EXIT_ALL_OK : EXIT_USAGE;
    }
    const char *dir = argv[1];
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
    bool running = !strcmp(rs.state, "running");
    const char *note = "";
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    /*
     * A run killed hard (kill -9, node failure) never writes its final
     * state. On rank 0's host we can tell; elsewhere the age of the last
     * update hints at it.
     */
    if (running && !strcmp(host, rs.host) && rs.pid > 0 &&
        kill(rs.pid, 0) != 0 && errno == ESRCH)
        note = " (interrupted: its process is gone; finish it with --resume)";
    else if (running && now - updated > 60)
        note = " (no update for over a minute: interrupted?)";
    double elapsed = (running && !*note ? now : updated) - started;
    uint64_t ran = rs.done - rs.resumed;
    double rate = elapsed > 0 ? ran / elapsed : 0;
    uint64_t left = rs.total - rs.done - rs.failed - rs.skipped;
    printf("%s: %s%s\n", dir, rs.state, note);
    printf("  task file %s, %d rank%s, %llu slots, rank 0 on %s (pid %ld)\n",
           rs.taskfile, rs.ranks, rs.ranks == 1 ? "" : "s",
           (unsigned long long)rs.slots, rs.host, (long)rs.pid);
    printf("  %llu/%llu done", (unsigned long long)rs.done,
           (unsigned long long)rs.total);
    if (rs.resumed)
        printf(" (%llu in an earlier run)", (unsigned long long)rs.resumed);
    printf(", %llu running, %llu failed, %llu skipped, %llu left\n",
           (unsigned long long)(running ? rs.running : 0),
           (unsigned long long)rs.failed, (unsigned long long)rs.skipped,
           (unsigned long long)left);
    printf("  elapsed %.1f s, %.1f tasks/s", elapsed, rate);
    if (running && rate > 0 && !*note)
        printf(", ETA %.0f s", left / rate);
    printf("\n");
    list_failures(dir, 10);
    return EXIT_ALL_OK;
}
