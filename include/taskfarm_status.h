/* taskfarm status codes: the one error contract, shared by the library and its pure core. */
#ifndef TASKFARM_STATUS_H
#define TASKFARM_STATUS_H

/*
 * Every taskfarm function that can fail returns 0 on success or one of these
 * negative codes. Out-parameters are written only on success. This header has
 * no MPI dependency so that the scheduler core can use it too.
 */
#define TF_ERRNO_MAP(X)                                                        \
    X(ENOMEM, -1, "out of memory")                                             \
    X(EINVAL, -2, "invalid argument")                                          \
    X(ENOENT, -3, "no such task or function")                                  \
    X(EEXIST, -4, "name already registered")                                   \
    X(ECYCLE, -5, "dependency cycle")                                          \
    X(EDEP, -6, "dependency on an unknown task")                               \
    X(ESTATE, -7, "call not allowed in the runtime's current state")           \
    X(EMPI, -8, "MPI call failed")                                             \
    X(EFAILED, -9, "one or more tasks failed or were skipped")                 \
    X(ERANGE, -10, "value out of range")                                       \
    X(EIO, -11, "input/output error")                                          \
    X(EPROTO, -12, "malformed or unexpected message")                          \
    X(ENOTROOT, -13, "only rank 0 may make this call")                         \
    X(ECORES, -14, "task needs more cores than any worker has")               \
    X(ELOST, -15, "a rank stopped answering")                                  \
    X(EDEADLINE, -16, "the deadline came before every task had run")         \
    X(EDEPOSED, -17, "another rank has taken over the scheduling")

/*
 * Marks the library's public functions: it is built with
 * -fvisibility=hidden, so that everything else in it stays internal.
 */
#if defined(__GNUC__)
#define TF_API __attribute__((visibility("default")))
#else
#define TF_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
#define TF_ERR_ENUM_(name, val, msg) TF_##name = (val),
    TF_ERRNO_MAP(TF_ERR_ENUM_)
#undef TF_ERR_ENUM_
    TF_OK = 0
};

/* A short English description of a status code; never NULL. */
TF_API const char *tf_strerror(int code);

/* The code's symbolic name ("TF_ENOMEM"), or "TF_UNKNOWN"; never NULL. */
TF_API const char *tf_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
