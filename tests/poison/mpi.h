/* Poison: a layer compiled with this folder on its include path may not use mpi (docs/architecture.md, the dependency rule). */
#error "this layer may not include <mpi.h>: only src/net may"
