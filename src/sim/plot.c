/* The scaling plot, written as SVG directly: efficiency and rank 0's load against workers. */
#include "plot.h"

#include <math.h>
#include <stdio.h>

#include "taskfarm_status.h"

enum { W = 640, H = 400, L = 60, R = 150, T = 30, B = 50 };

static double px(double x, double lo, double hi)
{
    return L + (log10(x) - lo) / (hi - lo) * (W - L - R);
}

static double py(double y) { return T + (1 - y) * (H - T - B); }

static void line(FILE *f, const uint32_t *x, const double *y, size_t n,
                 double lo, double hi, const char *col, const char *dash)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
               "points=\"",
            col, dash);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", px(x[i], lo, hi), py(y[i] > 1 ? 1 : y[i]));
    fprintf(f, "\"/>\n");
}

int sim_plot_svg(const char *path, const uint32_t *workers, size_t n,
                 const double *eff, const double *util,
                 const char *const *labels, size_t nseries)
{
    static const char *cols[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd"};
    FILE *f = fopen(path, "w");
    if (!f || !n)
        return f ? (fclose(f), TF_EINVAL) : TF_EIO;
    double lo = floor(log10(workers[0])), hi = ceil(log10(workers[n - 1]));
    if (hi <= lo)
        hi = lo + 1;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"18\" font-size=\"14\">Simulated efficiency "
            "(solid) and rank 0 busy fraction (dashed)</text>\n",
            W, H, L);
    for (int k = 0; k <= 10; k += 2) {
        double y = py(k / 10.0);
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/>\n<text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\">%.1f</text>\n",
                L, W - R, y, y, L - 6, y + 4, k / 10.0);
    }
    for (double e = lo; e <= hi + 1e-9; e++) {
        double x = px(pow(10, e), lo, hi);
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%d\" "
                "text-anchor=\"middle\">%.0f</text>\n",
                x, x, T, H - B, x, H - B + 16, pow(10, e));
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">worker ranks "
            "(1 slot each), 20 tasks per worker</text>\n"
            "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
            "text-anchor=\"middle\">fraction</text>\n",
            (L + W - R) / 2, H - 12, (T + H - B) / 2, (T + H - B) / 2);
    for (size_t s = 0; s < nseries; s++) {
        const char *col = cols[s % 4];
        line(f, workers, eff + s * n, n, lo, hi, col, "");
        line(f, workers, util + s * n, n, lo, hi, col,
             " stroke-dasharray=\"5,4\"");
        for (size_t i = 0; i < n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                    px(workers[i], lo, hi),
                    py(eff[s * n + i] > 1 ? 1 : eff[s * n + i]), col);
        double y = T + 20 + 20.0 * (double)s;
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"%s\" stroke-width=\"2\"/>\n<text x=\"%d\" "
                "y=\"%.1f\">%s</text>\n",
                W - R + 10, W - R + 30, y, y, col, W - R + 36, y + 4,
                labels[s]);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) ? TF_EIO : 0;
}
