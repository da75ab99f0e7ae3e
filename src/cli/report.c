/* taskfarm report: trace.json in; an SVG Gantt chart and a summary out. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gantt.h"
#include "svg.h"
#include "taskfarm_status.h"
#include "timeline.h"

static void report_usage(FILE *out)
{
    fprintf(out, "usage: taskfarm report OUTDIR [-o FILE]\n"
                 "Read OUTDIR/trace.json (written by taskfarm run, or by a "
                 "library run with\ntrace_path) and write an SVG Gantt chart "
                 "(one row per rank and slot) with a\nutilisation plot to "
                 "OUTDIR/report.svg or FILE; print a summary.\n\n"
                 "exit status: 0 written, 2 usage or a missing or bad trace, 3 "
                 "cannot write.\n");
}

/*
 * Returns -1 to go on with *dir and *out (NULL: OUTDIR/report.svg) set,
 * else the exit status.
 */
static int parse_args(int argc, char **argv, const char **dir, const char **out)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            report_usage(stdout);
            return EXIT_ALL_OK;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            *out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "taskfarm report: unknown option or missing "
                    "value: '%s'\n",
                    a);
            report_usage(stderr);
            return EXIT_USAGE;
        } else if (*dir) {
            fprintf(stderr, "taskfarm report: one OUTDIR at a time\n");
            return EXIT_USAGE;
        } else {
            *dir = a;
        }
    }
    if (!*dir) {
        report_usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* Read path into *T; returns -1 when read, else the exit status. */
static int load(const char *path, tf_timeline *T)
{
    file_text ft = {0};
    int e = cli_read_file(path, &ft);
    if (e) {
        fprintf(stderr, "taskfarm report: %s: %s\n", path, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    tf_timeline_err err;
    int rc = tf_timeline_read(ft.p, ft.len, T, &err);
    cli_file_text_free(&ft);
    if (rc == TF_EINVAL) {
        fprintf(stderr, "taskfarm report: %s:%zu: byte %zu: %s\n", path,
                err.line, err.byte, err.msg);
        return EXIT_USAGE;
    }
    if (rc) {
        fprintf(stderr, "taskfarm report: %s: %s\n", path, tf_strerror(rc));
        return EXIT_RUNTIME;
    }
    tf_timeline_sort(T);
    return -1;
}

/* The chart's title, also the summary's first line. */
static void title_of(const char *path, const tf_timeline *T, const tf_gantt *G,
                     char *buf, size_t len)
{
    /* Tasks that ran: each has exactly one first attempt. */
    size_t tasks = 0, count[TF_RES_N] = {0};
    for (size_t i = 0; i < T->nsp; i++) {
        tasks += T->sp[i].attempt == 1;
        count[T->sp[i].res]++;
    }
    int nranks = 0;
    for (int r = 0; r < T->nrk; r++)
        nranks += T->rk[r].seen;
    char ms[32], stop[48] = "";
    tf_svg_dur(G->makespan, ms, sizeof ms);
    /* Ended by a stop (Ctrl-C, SIGTERM, the walltime warning): not failures. */
    if (count[TF_RES_INTERRUPTED])
        snprintf(stop, sizeof stop, ", %zu interrupted by a stop",
                 count[TF_RES_INTERRUPTED]);
    snprintf(buf, len,
             "%s: %zu tasks, %zu attempts (%zu done, %zu failed and "
             "retried, %zu failed%s) on %d rank%s, %.0f slots, makespan %s",
             path, tasks, T->nsp, count[TF_RES_DONE], count[TF_RES_RETRY],
             count[TF_RES_FAILED], stop, nranks, nranks == 1 ? "" : "s",
             G->total_slots, ms);
}

/* Each rank's share of busy slots, for the first 32 that ran or could. */
static void print_ranks(const tf_timeline *T, const tf_gantt *G)
{
    int listed = 0;
    for (int r = 0; r < T->nrk; r++) {
        const tf_timeline_rank *ri = &T->rk[r];
        if (!ri->seen || (!ri->attempts && ri->slots == 0))
            continue;
        if (++listed > 32) {
            printf("... more ranks not listed\n");
            break;
        }
        double slots = (double)tf_timeline_slots(ri);
        char name[32];
        snprintf(name, sizeof name, "rank %d", r);
        printf("  %s: %.1f%% busy, %zu attempts\n",
               ri->label ? tf_timeline_str(T, ri->label) : name,
               slots > 0 ? 100 * ri->busy / (slots * G->makespan) : 0.0,
               ri->attempts);
    }
}

/* Write the SVG to out; returns -1 when written, else the exit status. */
static int write_svg(const char *out, const tf_timeline *T, const tf_gantt *G,
                     const char *title, double *mean, long *size)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "taskfarm report: cannot create %s: %s\n", out,
                strerror(errno));
        return EXIT_RUNTIME;
    }
    *mean = tf_gantt_write(f, T, G, title);
    *size = ftell(f);
    if (fflush(f) != 0 || ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "taskfarm report: cannot write %s: %s\n", out,
                strerror(errno));
        return EXIT_RUNTIME;
    }
    return -1;
}

int cli_report(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    int rc = parse_args(argc, argv, &dir, &out);
    if (rc >= 0)
        return rc;
    char path[PATH_MAX + 32], svg[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/trace.json", dir);
    snprintf(svg, sizeof svg, "%s/report.svg", dir);
    if (!out)
        out = svg;

    tf_timeline T = {0};
    rc = load(path, &T);
    if (rc >= 0)
        return rc;
    tf_gantt G;
    if (tf_gantt_plan(&T, &G)) {
        fprintf(stderr, "taskfarm report: %s\n", tf_strerror(TF_ENOMEM));
        rc = EXIT_RUNTIME;
        goto out_with_timeline;
    }
    char title[PATH_MAX + 300];
    title_of(path, &T, &G, title, sizeof title);
    double mean;
    long size;
    rc = write_svg(out, &T, &G, title, &mean, &size);
    if (rc >= 0)
        goto out_with_gantt;
    printf("%s\nmean utilisation %.1f%% of %.0f slots\n", title, mean * 100,
           G.total_slots);
    print_ranks(&T, &G);
    printf("report: %s (%ld KB)\n", out, (size + 1023) / 1024);
    rc = EXIT_ALL_OK;
out_with_gantt:
    tf_gantt_free(&G);
out_with_timeline:
    tf_timeline_free(&T);
    return rc;
}
