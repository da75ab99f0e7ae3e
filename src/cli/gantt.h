/* The report's chart: rows per rank and slot, attempts, marks, utilisation. */
#ifndef TF_CLI_GANTT_H
#define TF_CLI_GANTT_H

#include <stdio.h>

#include "timeline.h"

/* Where a rank's rows are. */
typedef struct tf_gantt_band {
    int row0, nrows;
} tf_gantt_band;

typedef struct tf_gantt {
    double makespan;    /* us: the last end of an attempt or instant, >= 1 */
    double total_slots; /* of all ranks seen */
    int rows;
    double row_h;        /* pixels */
    tf_gantt_band *band; /* one per entry of the timeline's rk */
} tf_gantt;

/*
 * Lay out T: one row per slot of each rank that has slots or spans, else
 * one. Returns 0 or TF_ENOMEM (then *G holds nothing to free).
 */
int tf_gantt_plan(const tf_timeline *T, tf_gantt *G);
void tf_gantt_free(tf_gantt *G);

/*
 * Write the whole SVG document to f: title, Gantt chart, utilisation plot.
 * Returns the mean utilisation (0 to 1); write errors show in ferror(f).
 */
double tf_gantt_write(FILE *f, const tf_timeline *T, const tf_gantt *G,
                      const char *title);

#endif
