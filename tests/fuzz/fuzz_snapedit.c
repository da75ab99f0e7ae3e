/* libFuzzer harness: snapshots written, edited as the input says, loaded. */
#include "../ckpt/h5edit.h"
#include "fuzz_ckpt.h"

/*
 * A structured fuzzer. Random bytes rarely make valid HDF5, so the input is
 * not the file but a recipe for one: a table of up to 8 tasks, which
 * tf_ck_snap_write writes as state-1.h5, then up to 8 edits through the
 * HDF5 API (h5edit.h), each of which leaves a valid HDF5 file whose
 * metadata checksums hold: an extent grown (sparse) or shrunk, an entry set
 * with or without its crc32c made to match, a root attribute set, a
 * dataset remade with another type or layout (contiguous, chunked,
 * compressed, compact) or made sparse with a fill value, a dataset or
 * group deleted, replaced by a soft or external link, a checksum changed
 * or removed, a string attribute made long. The loader must refuse or load
 * each without a crash, leak or undefined behaviour, within its memory
 * promise (fuzz_ckpt.h). Numbers come from the front of the input, 0 once
 * it is used up, so every input is a recipe.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

/* The next `bytes` bytes as a little-endian number. */
static uint64_t take(src *s, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < bytes && s->n; k++, s->n--)
        v |= (uint64_t)*s->p++ << (8 * k);
    return v;
}

/* A count: mostly near cur, sometimes a power of two up to 2^63. */
static uint64_t take_count(src *s, uint64_t cur)
{
    uint8_t v = (uint8_t)take(s, 1);
    if (v < 160)
        return cur + (uint64_t)(int64_t)((int)(v % 9) - 4);
    return (1ull << (v % 64)) - (v & 1);
}

#define MAX_TASKS 8

typedef struct table {
    tf_ck_task t[MAX_TASKS];
    uint8_t bytes[MAX_TASKS][64];
    uint64_t deps[MAX_TASKS][3];
} table;

static void get_task(void *user, uint64_t i, tf_ck_task *t)
{
    *t = ((table *)user)->t[i];
}

static uint64_t make_table(src *s, table *tb)
{
    uint64_t n = take(s, 1) % (MAX_TASKS + 1);
    for (uint64_t i = 0; i < n; i++) {
        tf_ck_task *t = &tb->t[i];
        uint8_t *b = tb->bytes[i];
        memset(t, 0, sizeof *t);
        t->gid = take(s, 1) < 200 ? i : take(s, 8);
        t->key = take(s, 8);
        t->parent = take(s, 1) & 1 ? TF_CK_NONE : take(s, 2);
        t->prio = (int32_t)take(s, 4);
        t->cores = (uint16_t)take(s, 2);
        t->state = (uint8_t)(take(s, 1) % 8);
        t->attempts = (uint16_t)take(s, 2);
        t->status = (int32_t)take(s, 4);
        t->rank = (int32_t)take(s, 4);
        t->start_ns = take(s, 8);
        t->end_ns = take(s, 8);
        t->name_len = (uint32_t)(take(s, 1) % 16);
        t->cmd_len = (uint32_t)(take(s, 1) % 24);
        t->out_len = (uint32_t)(take(s, 1) % 24);
        for (uint32_t k = 0; k < 64; k++)
            b[k] = (uint8_t)take(s, 1);
        t->name = (const char *)b;
        t->cmd = b + 16;
        t->out = b + 40;
        t->ndeps = (uint32_t)(take(s, 1) % 4);
        for (uint32_t k = 0; k < t->ndeps; k++)
            tb->deps[i][k] = take(s, 1);
        t->deps = tb->deps[i];
    }
    return n;
}

/* Entries of dataset path, or 0. */
static uint64_t extent_of(hid_t f, const char *path)
{
    hsize_t n = 0;
    hid_t d = H5Lexists(f, path, H5P_DEFAULT) > 0
                  ? H5Dopen2(f, path, H5P_DEFAULT)
                  : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, &n, NULL) != 1)
        n = 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    return n;
}

static hid_t any_type(uint64_t v)
{
    static const hid_t *const types[] = {
        &H5T_STD_U8LE_g, &H5T_STD_U16LE_g, &H5T_STD_U32LE_g,  &H5T_STD_U64LE_g,
        &H5T_STD_I8LE_g, &H5T_STD_I64LE_g, &H5T_IEEE_F64LE_g, &H5T_STD_U64BE_g};
    return *types[v % (sizeof types / sizeof *types)];
}

/* A dataset creation list: contiguous, chunked, compressed or compact. */
static hid_t any_layout(src *s)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 1 + take(s, 1);
    switch (take(s, 1) % 4) {
    case 1:
        H5Pset_chunk(dcpl, 1, &chunk);
        break;
    case 2:
        H5Pset_chunk(dcpl, 1, &chunk);
        H5Pset_deflate(dcpl, 1);
        break;
    case 3:
        H5Pset_layout(dcpl, H5D_COMPACT);
        break;
    }
    return dcpl;
}

static void set_string(hid_t f, const char *name, size_t len, bool vlen)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    char *v = calloc(len + 1, 1);
    if (!v)
        return;
    memset(v, 'x', len);
    H5Tset_size(t, vlen ? H5T_VARIABLE : (len ? len : 1));
    if (H5Aexists(f, name) > 0)
        H5Adelete(f, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, t, vlen ? (const void *)&v : (const void *)v);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
    free(v);
}

/* Dataset ds replaced by a scalar one, or one of 2 or 3 dimensions. */
static void reshape(hid_t f, const struct h5e_ds *ds, uint64_t v)
{
    hsize_t dims[3] = {2, 1 + v % 3, 2};
    if (H5Ldelete(f, ds->path, H5P_DEFAULT) < 0)
        return;
    hid_t sp = v & 4 ? H5Screate(H5S_SCALAR)
                     : H5Screate_simple(2 + (int)(v & 1), dims, NULL);
    hid_t d = H5Dcreate2(f, ds->path, *ds->ftype, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    if (d >= 0) {
        h5e_set_crc(d, 0);
        H5Dclose(d);
    }
    H5Sclose(sp);
}

static void edit(hid_t f, src *s)
{
    static const char *const attrs[] = {
        "n",          "format_version", "kind",        "world_size", "time_ns",
        "generation", "journal_id",     "journal_pos", "source_hash"};
    static const char *const groups[] = {"/task", "/name", "/cmd", "/deps",
                                         "/out"};
    unsigned op = (unsigned)(take(s, 1) % 12);
    const struct h5e_ds *ds = &h5e_datasets[take(s, 1) % H5E_NDS];
    uint64_t n = extent_of(f, ds->path), v;
    hid_t d, dcpl;
    switch (op) {
    case 0:
        /* HDF5 prunes a shrunk dataset chunk by chunk, over its whole old
           extent: shrinking one grown to 2^60 would take hours (a timeout
           this harness once hit in H5D__chunk_prune_by_extent), and one of
           millions of chunks gigabytes that HDF5's free lists then keep. */
        v = take_count(s, n);
        if (v >= n || n <= (1u << 16))
            h5e_extent(f, ds->path, v);
        break;
    case 1:
        v = take(s, 1) & 1 ? take(s, 8) : take(s, 1);
        h5e_poke(f, ds->path, n ? take(s, 2) % n : 0, v, take(s, 1) & 1);
        break;
    case 2:
        v = take(s, 1);
        if (v < 128) {
            uint64_t x = take_count(s, 0);
            h5e_attr(f, attrs[v % 9], H5T_NATIVE_UINT64, &x);
        } else {
            uint64_t x = take(s, 8);
            h5e_attr(f, attrs[v % 9], H5T_NATIVE_UINT64, &x);
        }
        break;
    case 3:
        dcpl = any_layout(s);
        h5e_remake(f, ds->path, any_type(take(s, 1)), dcpl);
        H5Pclose(dcpl);
        break;
    case 4:
        h5e_sparse(f, ds->path,
                   take(s, 1) & 1 ? *ds->ftype : any_type(take(s, 1)),
                   take_count(s, n), (uint32_t)take(s, 4));
        break;
    case 5:
        H5Ldelete(f, take(s, 1) & 1 ? ds->path : groups[take(s, 1) % 5],
                  H5P_DEFAULT);
        break;
    case 6:
        if (H5Ldelete(f, ds->path, H5P_DEFAULT) < 0)
            break;
        if (take(s, 1) & 1)
            H5Lcreate_soft(h5e_datasets[take(s, 1) % H5E_NDS].path, f, ds->path,
                           H5P_DEFAULT, H5P_DEFAULT);
        else
            H5Lcreate_external("state-1.h5", "/task/gid", f, ds->path,
                               H5P_DEFAULT, H5P_DEFAULT);
        break;
    case 7:
        d = H5Lexists(f, ds->path, H5P_DEFAULT) > 0
                ? H5Dopen2(f, ds->path, H5P_DEFAULT)
                : -1;
        if (d >= 0 && take(s, 1) & 1)
            h5e_set_crc(d, (uint32_t)take(s, 4));
        else if (d >= 0)
            H5Adelete(d, "crc32c");
        if (d >= 0)
            H5Dclose(d);
        break;
    case 8:
        set_string(f, take(s, 1) & 1 ? "format" : "taskfarm_version",
                   (size_t)take(s, 2) % 4096, take(s, 1) & 1);
        break;
    case 9:
        h5e_cut_one(f, ds->path);
        break;
    case 10:
        reshape(f, ds, take(s, 1));
        break;
    case 11:
        H5Adelete(f, attrs[take(s, 1) % 9]);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[400], err[512];
    src s = {data, size};
    static table tb;
    fz_path(path, sizeof path, "state-1.h5");
    uint64_t n = make_table(&s, &tb);
    tf_ck_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.kind = TF_CK_LIB;
    meta.generation = 1;
    meta.journal_id = 1;
    meta.journal_pos = TF_CK_JHDR;
    if (tf_ck_snap_write(path, &meta, n, get_task, &tb, NULL, err, sizeof err))
        abort(); /* the writer must write any table */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        abort();
    unsigned nedits = (unsigned)(take(&s, 1) % 9);
    for (unsigned k = 0; k < nedits; k++)
        edit(f, &s);
    H5Fclose(f);
    fz_load();
    unlink(path);
    return 0;
}
