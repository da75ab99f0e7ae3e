/* The report's SVG: the document, its styles, escaped text, times, axes. */
#ifndef TF_CLI_SVG_H
#define TF_CLI_SVG_H

#include <stddef.h>
#include <stdio.h>

/* The page, in pixels: labels left of the plots, which are PLOT_W wide. */
enum {
    TF_SVG_LEFT = 190,
    TF_SVG_PLOT_W = 1000,
    TF_SVG_RIGHT = 30,
    TF_SVG_TOP = 56, /* the first row of the chart */
};

/*
 * Begin a document height pixels tall: the styles the chart's classes use
 * (d, r, f: done, retried, failed; b0, b1: rank bands; ...), the title and
 * the legend. End it with tf_svg_end. Write errors show in ferror(f).
 */
void tf_svg_begin(FILE *f, double height, const char *title);
void tf_svg_end(FILE *f);

/* Text for an element or attribute: XML-escaped; control characters '?'. */
void tf_svg_text(FILE *f, const char *s);

/* A duration in microseconds as people read it ("12 us", "3.5 s"). */
void tf_svg_dur(double us, char *buf, size_t len);

/* A time axis from 0 to makespan (us) at y, its grid lines up to y_top. */
void tf_svg_axis(FILE *f, double makespan, double y, double y_top);

#endif
