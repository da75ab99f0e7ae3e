/* The report's chart: rows per rank and slot, attempts, marks, utilisation. */
#include <stdlib.h>
#include <string.h>

#include "gantt.h"
#include "svg.h"
#include "taskfarm_status.h"

/* Short names for the page's geometry: every line below uses them. */
enum { LEFT = TF_SVG_LEFT, PLOT_W = TF_SVG_PLOT_W, TOP = TF_SVG_TOP };
enum { UTIL_H = 160 }; /* the utilisation plot's height */
/* Spans drawn one rectangle each up to this many; beyond, merged. */
#define DETAIL_MAX 10000
/* Rectangles in all when merging, about 100 bytes each. */
#define RECT_BUDGET 40000
#define INSTANT_MAX 5000

/* Indexed by TF_RES_*. */
static const char *const res_class[] = {"d", "i", "r", "f"};
static const char *const res_name[] = {"done", "interrupted", "retry",
                                       "failed"};

int tf_gantt_plan(const tf_timeline *T, tf_gantt *G)
{
    tf_gantt g = {0};
    g.band = calloc(T->nrk ? (size_t)T->nrk : 1, sizeof *g.band);
    if (!g.band)
        return TF_ENOMEM;
    for (size_t i = 0; i < T->nsp; i++)
        if (T->sp[i].ts + T->sp[i].dur > g.makespan)
            g.makespan = T->sp[i].ts + T->sp[i].dur;
    for (size_t i = 0; i < T->nin; i++)
        if (T->in[i].ts > g.makespan)
            g.makespan = T->in[i].ts;
    if (g.makespan < 1)
        g.makespan = 1;
    int row = 0;
    for (int r = 0; r < T->nrk; r++) {
        if (!T->rk[r].seen)
            continue;
        long n = tf_timeline_slots(&T->rk[r]);
        g.total_slots += (double)n;
        g.band[r].row0 = row;
        g.band[r].nrows = n > 0 ? (int)n : 1;
        row += g.band[r].nrows;
    }
    g.rows = row;
    /* At most about 2400 px of rows; past 9600 rows they get thinner than
       a pixel, which browsers draw blended. */
    g.row_h = row ? 2400.0 / row : 16;
    if (g.row_h > 16)
        g.row_h = 16;
    if (g.row_h < 0.25)
        g.row_h = 0.25;
    *G = g;
    return 0;
}

void tf_gantt_free(tf_gantt *G)
{
    free(G->band);
    G->band = NULL;
}

/* A background band and a label per rank. */
static void bands(FILE *f, const tf_timeline *T, const tf_gantt *G)
{
    double h = G->row_h;
    for (int r = 0; r < T->nrk; r++) {
        const tf_timeline_rank *ri = &T->rk[r];
        const tf_gantt_band *b = &G->band[r];
        if (!ri->seen)
            continue;
        double y = TOP + b->row0 * h, bh = b->nrows * h;
        fprintf(f,
                "<rect class=\"%s\" x=\"%d\" y=\"%.2f\" width=\"%d\" "
                "height=\"%.2f\"/>\n",
                r % 2 ? "b1" : "b0", LEFT, y, PLOT_W, bh);
        if (bh >= 9) {
            fprintf(f, "<text class=\"lab\" x=\"%d\" y=\"%.2f\">", LEFT - 6,
                    y + (b->nrows > 1 && h >= 10 ? h : bh) / 2 + 4);
            if (ri->label)
                tf_svg_text(f, tf_timeline_str(T, ri->label));
            else
                fprintf(f, "rank %d", r);
            fputs("</text>\n", f);
        }
        for (int s = 1; h >= 10 && s < b->nrows; s++)
            fprintf(f,
                    "<text class=\"slot\" x=\"%d\" y=\"%.2f\">slot "
                    "%d</text>\n",
                    LEFT - 6, y + s * h + h / 2 + 3.5, s);
    }
}

/* Attempts of one row drawn as one rectangle. */
typedef struct group {
    const tf_timeline_span *first;
    size_t n, count[TF_RES_N]; /* attempts, and of each result */
    double t0, t1, busy;       /* microseconds */
} group;

/* The colour of a merged group is its most common result. */
static int group_result(const group *g)
{
    if (g->n == 1)
        return g->first->res;
    int best = TF_RES_DONE;
    for (int r = TF_RES_DONE + 1; r < TF_RES_N; r++)
        if (g->count[r] > g->count[best])
            best = r;
    return best;
}

/* Its hover text: the attempt, or what the merged group holds. */
static void rect_title(FILE *f, const tf_timeline *T, const group *g, int res,
                       double frac)
{
    char d[32], a[32], b[32];
    const tf_timeline_span *s = g->first;
    if (g->n == 1) {
        tf_svg_dur(s->dur, d, sizeof d);
        tf_svg_dur(s->ts, a, sizeof a);
        tf_svg_text(f, tf_timeline_str(T, s->name));
        fprintf(f, ": attempt %d, %s (status %d), %s from %s", s->attempt,
                res_name[res], s->status, d, a);
        if (s->cores > 1)
            fprintf(f, ", %u cores", s->cores);
    } else {
        tf_svg_dur(g->t0, a, sizeof a);
        tf_svg_dur(g->t1, b, sizeof b);
        fprintf(f,
                "%zu attempts from %s to %s, %.0f%% busy: %zu done, %zu "
                "retried, %zu failed, %zu interrupted",
                g->n, a, b, 100 * frac, g->count[TF_RES_DONE],
                g->count[TF_RES_RETRY], g->count[TF_RES_FAILED],
                g->count[TF_RES_INTERRUPTED]);
    }
}

static void rect(FILE *f, const tf_timeline *T, const group *g, double x0,
                 double x1, double y, double h)
{
    int res = group_result(g);
    /* A hair of space after each, so that back-to-back tasks stay apart. */
    double w = x1 - x0 > 1.5 ? x1 - x0 - 0.5 : x1 - x0 < 0.3 ? 0.3 : x1 - x0;
    fprintf(f,
            "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\"",
            res_class[res], x0, y, w, h);
    double frac = g->t1 > g->t0 ? g->busy / (g->t1 - g->t0) : 1;
    /* Merged: as opaque as the tasks kept the slot busy. */
    if (g->n > 1 && frac < 1)
        fprintf(f, " fill-opacity=\"%.2f\"", frac < 0.15 ? 0.15 : frac);
    fputs("><title>", f);
    rect_title(f, T, g, res, frac);
    fputs("</title></rect>\n", f);
}

/*
 * The gap in pixels under which attempts of one row merge: -1 (never) up
 * to DETAIL_MAX attempts, else what keeps each row under its share of
 * RECT_BUDGET.
 */
static double merge_gap(const tf_timeline *T)
{
    if (T->nsp <= DETAIL_MAX)
        return -1;
    size_t tracks = 0;
    for (size_t i = 0; i < T->nsp; i++)
        tracks += i == 0 || T->sp[i].pid != T->sp[i - 1].pid ||
                  T->sp[i].tid != T->sp[i - 1].tid;
    double per_row = (double)RECT_BUDGET / (tracks ? tracks : 1);
    double gap = per_row < 2 ? PLOT_W / 2.0 : PLOT_W / per_row;
    return gap < 1 ? 1 : gap;
}

/*
 * Tasks: one rectangle per attempt, on its rank's row of its lowest slot
 * and as many rows tall as it had cores (its slots need not have been
 * adjacent: then it covers a neighbour's row). Past DETAIL_MAX attempts,
 * the attempts of a row closer than merge_gap are merged into one
 * rectangle, one row tall.
 */
static void tasks(FILE *f, const tf_timeline *T, const tf_gantt *G)
{
    double h = G->row_h, gap = h >= 6 ? 1 : 0;
    double scale = PLOT_W / G->makespan, min_gap = merge_gap(T);
    fputs("<g>\n", f);
    for (size_t i = 0; i < T->nsp;) {
        const tf_timeline_span *s = &T->sp[i];
        const tf_gantt_band *b = &G->band[s->pid];
        double y = TOP + (b->row0 + s->tid) * h;
        double x0 = LEFT + s->ts * scale, x1 = x0 + s->dur * scale;
        group g = {s, 1, {0}, s->ts, s->ts + s->dur, s->dur};
        g.count[s->res]++;
        size_t k = i + 1;
        while (k < T->nsp && T->sp[k].pid == s->pid && T->sp[k].tid == s->tid &&
               LEFT + T->sp[k].ts * scale - x1 < min_gap) {
            const tf_timeline_span *o = &T->sp[k++];
            double e = o->ts + o->dur;
            if (e > g.t1)
                g.t1 = e, x1 = LEFT + e * scale;
            g.busy += o->dur;
            g.n++;
            g.count[o->res]++;
        }
        double rows = 1;
        if (g.n == 1 && s->cores > 1)
            rows = (int)s->cores < b->nrows - s->tid ? (double)s->cores
                                                     : b->nrows - s->tid;
        rect(f, T, &g, x0, x1, y + gap / 2, rows * h - gap);
        i = k;
    }
    fputs("</g>\n", f);
}

/* Colour of an instant event's mark, by its name. */
static const char *mark_colour(const char *name)
{
    return !strcmp(name, "retry")        ? "#f57c00"
           : !strcmp(name, "failed")     ? "#c62828"
           : !strcmp(name, "interrupted") ? "#757575"
           : !strcmp(name, "steal")      ? "#7b1fa2"
           : !strcmp(name, "checkpoint") ? "#1565c0"
                                         : "#212121";
}

/* One instant: a dashed line across the chart, or a triangle on its rank. */
static void mark(FILE *f, const tf_timeline *T, const tf_gantt *G,
                 const tf_timeline_instant *e, double x)
{
    const char *name = tf_timeline_str(T, e->name);
    char t[32];
    tf_svg_dur(e->ts, t, sizeof t);
    if (e->global) {
        fprintf(f,
                "<line class=\"gl\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" "
                "y2=\"%.2f\" stroke=\"%s\"><title>",
                x, TOP - 6, x, TOP + G->rows * G->row_h, mark_colour(name));
    } else {
        /* Inside its band. */
        double y = TOP + G->band[e->pid].row0 * G->row_h + 6.5;
        fprintf(f,
                "<path class=\"mk\" d=\"M%.2f %.2fl-3.5 -6h7z\" "
                "fill=\"%s\"><title>",
                x, y, mark_colour(name));
    }
    tf_svg_text(f, name);
    fprintf(f, " at %s", t);
    if (e->detail) {
        fputs(": ", f);
        tf_svg_text(f, tf_timeline_str(T, e->detail));
    }
    fputs(e->global ? "</title></line>\n" : "</title></path>\n", f);
}

/* Instant events: per-rank marks on top of its rows, global ones as lines. */
static void instants(FILE *f, const tf_timeline *T, const tf_gantt *G)
{
    double scale = PLOT_W / G->makespan;
    size_t drawn = 0, hidden = 0;
    double last_x = -1e9;
    int last_pid = -1;
    size_t last_name = (size_t)-1;
    for (size_t i = 0; i < T->nin; i++) {
        const tf_timeline_instant *e = &T->in[i];
        double x = LEFT + (e->ts < 0 ? 0 : e->ts) * scale;
        /* Marks of one kind closer than 2 px on one rank would overlap. */
        if (!e->global && ((e->pid == last_pid && x - last_x < 2 &&
                            !strcmp(tf_timeline_str(T, e->name),
                                    tf_timeline_str(T, last_name))) ||
                           drawn >= INSTANT_MAX)) {
            hidden++;
            continue;
        }
        drawn++;
        if (!e->global)
            last_x = x, last_pid = e->pid, last_name = e->name;
        mark(f, T, G, e, x);
    }
    if (hidden)
        fprintf(f,
                "<text class=\"note\" x=\"%d\" y=\"%d\">%zu close or "
                "excess event marks not drawn</text>\n",
                LEFT + PLOT_W, TOP - 22, hidden);
}

enum { BINS = 250 }; /* of the utilisation plot */

/* Busy slot-microseconds per bin of width w; returns the sum over spans. */
static double bin_busy(const tf_timeline *T, double w, double *busy)
{
    double total = 0;
    for (size_t i = 0; i < T->nsp; i++) {
        const tf_timeline_span *s = &T->sp[i];
        double a = s->ts < 0 ? 0 : s->ts, b = s->ts + s->dur;
        total += s->dur * s->cores;
        for (long k = (long)(a / w); k < BINS && k * w < b; k++) {
            double lo = k * w > a ? k * w : a,
                   hi = (k + 1) * w < b ? (k + 1) * w : b;
            if (hi > lo)
                busy[k] += (hi - lo) * s->cores;
        }
    }
    return total;
}

/* Busy slots over total slots in bins, as a filled step curve. */
static double utilisation(FILE *f, const tf_timeline *T, const tf_gantt *G,
                          double y0)
{
    double busy[BINS] = {0}, w = G->makespan / BINS;
    double total = bin_busy(T, w, busy);
    double slots = G->total_slots > 0 ? G->total_slots : 1;
    char d[32];
    tf_svg_dur(w, d, sizeof d);
    fprintf(f,
            "<text class=\"h\" x=\"%d\" y=\"%.1f\">utilisation: busy "
            "slots / %.0f slots, %d bins of %s</text>\n",
            LEFT, y0 - 8, slots, BINS, d);
    fprintf(f,
            "<rect class=\"b0\" x=\"%d\" y=\"%.1f\" width=\"%d\" "
            "height=\"%d\"/>\n",
            LEFT, y0, PLOT_W, UTIL_H);
    tf_svg_axis(f, G->makespan, y0 + UTIL_H, y0);
    for (int p = 0; p <= 100; p += 25) {
        double y = y0 + UTIL_H - p / 100.0 * UTIL_H;
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                "y2=\"%.1f\"/><text class=\"lab\" x=\"%d\" y=\"%.1f\">%d%%"
                "</text>\n",
                LEFT, y, LEFT + PLOT_W, y, LEFT - 6, y + 4, p);
    }
    fprintf(f, "<path class=\"u\" d=\"M%d %d", LEFT, (int)y0 + UTIL_H);
    for (int k = 0; k < BINS; k++) {
        double u = busy[k] / (w * slots);
        if (u > 1)
            u = 1;
        double y = y0 + UTIL_H - u * UTIL_H;
        fprintf(f, "V%.2fH%.2f", y, LEFT + (k + 1) * (double)PLOT_W / BINS);
    }
    fprintf(f, "V%dz\"/>\n", (int)y0 + UTIL_H);
    double mean = total / (G->makespan * slots);
    double ym = y0 + UTIL_H - (mean > 1 ? 1 : mean) * UTIL_H;
    fprintf(f,
            "<line class=\"mean\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" "
            "y2=\"%.2f\"><title>mean %.1f%%</title></line>\n",
            LEFT, ym, LEFT + PLOT_W, ym, mean * 100);
    return mean;
}

double tf_gantt_write(FILE *f, const tf_timeline *T, const tf_gantt *G,
                      const char *title)
{
    double gh = G->rows * G->row_h;
    double uy = TOP + gh + 60;
    tf_svg_begin(f, uy + UTIL_H + 60, title);
    bands(f, T, G);
    tf_svg_axis(f, G->makespan, TOP + gh, TOP);
    tasks(f, T, G);
    instants(f, T, G);
    double mean = utilisation(f, T, G, uy);
    tf_svg_end(f);
    return mean;
}
