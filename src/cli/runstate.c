/* Writing and reading OUTDIR/status. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "runstate.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tf_runstate_write(const char *outdir, const tf_runstate *rs)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/status.tmp", outdir);
    snprintf(path, sizeof path, "%s/status", outdir);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return errno;
    fprintf(f,
            "state %s\nhost %s\npid %ld\nranks %d\nslots %" PRIu64
            "\ntaskfile %s\ncwd %s\ntotal %" PRIu64 "\ndone %" PRIu64
            "\nresumed %" PRIu64 "\nfailed %" PRIu64 "\nskipped %" PRIu64
            "\nnot_needed %" PRIu64 "\nrunning %" PRIu64
            "\ninterrupted %" PRIu64 "\nnot_started %" PRIu64
            "\nstarted %.3f\nupdated %.3f\noutput %s\n",
            rs->state, rs->host, (long)rs->pid, rs->ranks, rs->slots,
            rs->taskfile, rs->cwd, rs->total, rs->done, rs->resumed, rs->failed,
            rs->skipped, rs->not_needed, rs->running, rs->interrupted,
            rs->not_started,
            rs->started_ns / 1e9, rs->updated_ns / 1e9, rs->output);
    if (rs->follow)
        fprintf(f, "follow %" PRIu64 "\n", rs->taken);
    int e = ferror(f) ? EIO : 0;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e)
        unlink(tmp); /* no half-written status.tmp left behind (a full disk) */
    return e;
}

int tf_runstate_read(const char *outdir, tf_runstate *rs)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/status", outdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno;
    memset(rs, 0, sizeof *rs);
    char line[2048];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strchr(line, ' ');
        if (!v)
            continue;
        *v++ = 0;
        seen++;
        if (!strcmp(line, "state"))
            snprintf(rs->state, sizeof rs->state, "%s", v);
        else if (!strcmp(line, "host"))
            snprintf(rs->host, sizeof rs->host, "%s", v);
        else if (!strcmp(line, "output"))
            snprintf(rs->output, sizeof rs->output, "%s", v);
        else if (!strcmp(line, "taskfile"))
            snprintf(rs->taskfile, sizeof rs->taskfile, "%s", v);
        else if (!strcmp(line, "cwd"))
            snprintf(rs->cwd, sizeof rs->cwd, "%s", v);
        else if (!strcmp(line, "pid"))
            rs->pid = (pid_t)atol(v);
        else if (!strcmp(line, "ranks"))
            rs->ranks = atoi(v);
        else if (!strcmp(line, "started"))
            rs->started_ns = (uint64_t)(strtod(v, NULL) * 1e9);
        else if (!strcmp(line, "updated"))
            rs->updated_ns = (uint64_t)(strtod(v, NULL) * 1e9);
        else if (!strcmp(line, "follow")) {
            rs->follow = true;
            rs->taken = strtoull(v, NULL, 10);
        }
        else {
            static const struct {
                const char *key;
                size_t off;
            } nums[] = {
                {"slots", offsetof(tf_runstate, slots)},
                {"total", offsetof(tf_runstate, total)},
                {"done", offsetof(tf_runstate, done)},
                {"resumed", offsetof(tf_runstate, resumed)},
                {"failed", offsetof(tf_runstate, failed)},
                {"skipped", offsetof(tf_runstate, skipped)},
                {"not_needed", offsetof(tf_runstate, not_needed)},
                {"running", offsetof(tf_runstate, running)},
                {"interrupted", offsetof(tf_runstate, interrupted)},
                {"not_started", offsetof(tf_runstate, not_started)},
            };
            for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
                if (!strcmp(line, nums[i].key))
                    *(uint64_t *)((char *)rs + nums[i].off) =
                        strtoull(v, NULL, 10);
        }
    }
    fclose(f);
    return seen && rs->state[0] ? 0 : EINVAL;
}
