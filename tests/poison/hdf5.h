/* Poison: a layer compiled with this folder on its include path may not use hdf5 (docs/architecture.md, the dependency rule). */
#error "this layer may not include <hdf5.h>: only src/ckpt may"
