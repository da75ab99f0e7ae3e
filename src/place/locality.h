/* A rank's locality (host, PUs, NUMA nodes) as one line of text, and the distance between two. */
#ifndef TF_PLACE_LOCALITY_H
#define TF_PLACE_LOCALITY_H

#include <stdbool.h>
#include <stddef.h>

#include "place/topo.h"

/*
 * The locality of this process as one line of text that ranks exchange
 * (tf_net_allgather_text) and rank 0 prints:
 *
 *   host=n01 cpus=0-15 cores=16 pus=16 numa=0 bound=yes
 *   machine=2,8,128,256 topology=this machine
 *
 * (one line; machine= counts the host's packages, NUMA nodes, cores and
 * PUs; topology= says where hwloc's view came from and runs to the end).
 * host is the caller's (gethostname); host names hold no blank. Returns
 * 0 with *out malloc'd, or TF_ENOMEM.
 */
int tf_topo_locality(const tf_topo *t, const char *host, char **out);

/* A parsed locality line. All strings point into buf. */
typedef struct tf_locality {
    char *buf;
    const char *host, *cpus, *numa, *source;
    unsigned ncores, npus;
    unsigned machine[4]; /* packages, NUMA nodes, cores, PUs of the host */
    bool bound;
} tf_locality;

/*
 * Parse a line of tf_topo_locality. Errors: TF_EINVAL (not such a line:
 * missing host, cpus or numa), TF_ENOMEM; *out untouched then.
 */
int tf_locality_parse(const char *text, tf_locality *out);
void tf_locality_free(tf_locality *l);

/* How near two ranks are, for steal victims and locality hints. */
enum {
    TF_NEAR_NUMA = 0, /* same host and a NUMA node in common */
    TF_NEAR_HOST = 1, /* same host */
    TF_NEAR_NONE = 2, /* different hosts */
};

/*
 * TF_NEAR_NUMA, TF_NEAR_HOST or TF_NEAR_NONE: smaller is nearer, so
 * sorting peers by it gives the steal order "same NUMA domain, then same
 * node, then any". Symmetric; a rank is TF_NEAR_NUMA to itself (or
 * TF_NEAR_HOST when hwloc knows no NUMA node). Pure and thread-safe.
 */
int tf_locality_distance(const tf_locality *a, const tf_locality *b);

/*
 * Whether two ranks on the same host may run on a common PU; if so, and
 * buf is not NULL, the common PUs as a list ("0-1") into buf.
 */
bool tf_locality_overlap(const tf_locality *a, const tf_locality *b, char *buf,
                         size_t len);

/* Whether two ranks are on the same host with exactly the same PUs. */
bool tf_locality_same_cpus(const tf_locality *a, const tf_locality *b);

#endif
