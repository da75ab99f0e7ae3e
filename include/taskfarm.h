/* taskfarm: the public C API of the MPI task-farm runtime. */
#ifndef TASKFARM_H
#define TASKFARM_H

#include <mpi.h>

#include "taskfarm_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Collective over comm (MPI_COMM_WORLD or any intracommunicator). The runtime
 * works on its own MPI_Comm_dup with MPI_ERRORS_RETURN set on the duplicate
 * only; MPI must already be initialised (MPI_THREAD_FUNNELED is enough, as
 * only the calling thread makes MPI calls). cfg may be NULL for defaults.
 * Errors: TF_EINVAL, TF_ENOMEM, TF_EMPI.
 */
TF_API int tf_init(MPI_Comm comm, const tf_config *cfg, tf_runtime **out);


#ifdef __cplusplus
}
#endif
#endif
