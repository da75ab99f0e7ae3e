/* The one logger: levels, rank prefix, an optional user sink; stderr by default. */
#ifndef TF_UTIL_LOG_H
#define TF_UTIL_LOG_H

#include "taskfarm_runtime.h" /* TF_LOG_* */

typedef void (*tf_log_sink)(void *user, int level, int rank, const char *msg);

typedef struct tf_logger {
    int level; /* TF_LOG_*: messages above it are dropped */
    int rank;
    tf_log_sink sink; /* NULL: stderr */
    void *user;
} tf_logger;

#if defined(__GNUC__)
#define TF_PRINTF_(a, b) __attribute__((format(printf, a, b)))
#else
#define TF_PRINTF_(a, b)
#endif

void tf_logf(const tf_logger *lg, int level, const char *fmt, ...)
    TF_PRINTF_(3, 4);

#endif
