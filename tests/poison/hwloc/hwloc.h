/* Poison: a layer compiled with this folder on its include path may not use hwloc (docs/architecture.md, the dependency rule). */
#error "this layer may not include <hwloc.h>: only src/place may"
