/* The report's SVG: the document, its styles, escaped text, times, axes. */
#include <math.h>
#include <stdio.h>

#include "svg.h"

#define SVG_W (TF_SVG_LEFT + TF_SVG_PLOT_W + TF_SVG_RIGHT)

void tf_svg_begin(FILE *f, double height, const char *title)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<style>.d{fill:#43a047}.i{fill:#9e9e9e}.r{fill:#fb8c00}.f{fill:#e53935}"
            ".b0{fill:#f5f5f5}.b1{fill:#e8eaf6}.lab{text-anchor:end}"
            ".slot{text-anchor:end;fill:#757575;font-size:9px}"
            ".ax line{stroke:#424242}.grid{stroke:#bdbdbd;stroke-width:0.5}"
            ".gl{stroke-width:1;stroke-dasharray:4 3}"
            ".u{fill:#64b5f6;stroke:#1565c0;stroke-width:0.7}"
            ".mean{stroke:#0d47a1;stroke-dasharray:6 3}"
            ".note{text-anchor:end;fill:#757575}.h{font-weight:bold}"
            "</style>\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n<text class=\"h\" x=\"%d\" y=\"20\">",
            SVG_W, height, SVG_W, height, TF_SVG_LEFT);
    tf_svg_text(f, title);
    fprintf(f,
            "</text>\n<text x=\"%d\" y=\"36\"><tspan class=\"d\">"
            "&#9632;</tspan> done  <tspan class=\"r\">&#9632;</tspan> "
            "failed, retried  <tspan class=\"f\">&#9632;</tspan> failed  "
            "&#9660; rank events (retry, failed, steal)  &#124; global "
            "events (halt, signal, checkpoint); hover for details"
            "</text>\n",
            TF_SVG_LEFT);
}

void tf_svg_end(FILE *f)
{
    fputs("</svg>\n", f);
}

void tf_svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&')
            fputs("&amp;", f);
        else if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c < 0x20 && c != '\t' && c != '\n')
            fputc('?', f);
        else
            fputc(c, f);
    }
}

void tf_svg_dur(double us, char *buf, size_t len)
{
    if (us < 1000)
        snprintf(buf, len, "%.0f us", us);
    else if (us < 1e6)
        snprintf(buf, len, "%.3g ms", us / 1e3);
    else if (us < 600e6)
        snprintf(buf, len, "%.4g s", us / 1e6);
    else
        snprintf(buf, len, "%ld:%02ld:%02ld", (long)(us / 3600e6),
                 (long)(us / 60e6) % 60, (long)(us / 1e6) % 60);
}

/* A tick label: the time t in the unit of the tick step. */
static void fmt_tick(double t, double step, char *buf, size_t len)
{
    if (step >= 60e6)
        snprintf(buf, len, "%ld:%02ld:%02ld", (long)(t / 3600e6),
                 (long)(t / 60e6) % 60, (long)(t / 1e6 + 0.5) % 60);
    else if (step >= 1e5)
        snprintf(buf, len, "%g s", round(t / 1e5) / 10);
    else if (step >= 100)
        snprintf(buf, len, "%g ms", round(t / 100) / 10);
    else
        snprintf(buf, len, "%g us", round(t * 10) / 10);
}

/* About 8 ticks, each 1, 2 or 5 times a power of ten. */
static double nice_step(double span_us)
{
    double raw = span_us / 8, mag = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (m[i] * mag >= raw)
            return m[i] * mag;
    return 10 * mag;
}

void tf_svg_axis(FILE *f, double makespan, double y, double y_top)
{
    double step = nice_step(makespan);
    fprintf(f,
            "<g class=\"ax\"><line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
            "y2=\"%.1f\"/>\n",
            TF_SVG_LEFT, y, TF_SVG_LEFT + TF_SVG_PLOT_W, y);
    for (double t = 0; t <= makespan * 1.0001; t += step) {
        double x = TF_SVG_LEFT + t / makespan * TF_SVG_PLOT_W;
        char lab[32];
        fmt_tick(t, step, lab, sizeof lab);
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                "text-anchor=\"middle\">%s</text>\n",
                x, y_top, x, y, x, y, x, y + 4, x, y + 16, lab);
    }
    fputs("</g>\n", f);
}
