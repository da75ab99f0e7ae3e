/* taskfarm version macros (no MPI dependency, for tools that link no MPI). */
#ifndef TASKFARM_VERSION_H
#define TASKFARM_VERSION_H

#define TF_VERSION_MAJOR 0
#define TF_VERSION_MINOR 1
#define TF_VERSION_PATCH 0
#define TF_VERSION_HEX                                                         \
    ((TF_VERSION_MAJOR << 16) | (TF_VERSION_MINOR << 8) | TF_VERSION_PATCH)
/* "MAJOR.MINOR.PATCH", what tf_version() returns. */
#define TF_VERSION_STRING                                                      \
    TF_VERSION_STR_(TF_VERSION_MAJOR)                                          \
    "." TF_VERSION_STR_(TF_VERSION_MINOR) "." TF_VERSION_STR_(TF_VERSION_PATCH)
#define TF_VERSION_STR_(x) TF_VERSION_STR2_(x)
#define TF_VERSION_STR2_(x) #x

#endif
