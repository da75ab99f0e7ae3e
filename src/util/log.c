/* Logger: formats one line and hands it to the sink, or writes it to stderr whole. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void tf_logf(const tf_logger *lg, int level, const char *fmt, ...)
{
    if (level > lg->level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lg->sink) {
        lg->sink(lg->user, level, lg->rank, msg);
        return;
    }
    /* One fprintf per line so lines from concurrent ranks do not interleave. */
    const char *name = level >= 0 && level <= 3 ? level_names[level] : "log";
    fprintf(stderr, "taskfarm[%d] %s: %s\n", lg->rank, name, msg);
}
