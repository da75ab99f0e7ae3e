/* Snapshots edited through the HDF5 API: hostile files for tests, fuzzers. */
#ifndef TF_TESTS_H5EDIT_H
#define TF_TESTS_H5EDIT_H

/*
 * Each edit makes one field of a snapshot (docs/checkpoint-format.md) what
 * an attacker would make it, through the HDF5 API, so that HDF5's own
 * checksums hold and only the loader's checks stand in the way. Every
 * function returns true if the edit was made; none aborts, as the fuzzer
 * asks for edits that HDF5 refuses (a dataset that is not extensible, a
 * dataset that is not there).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "ckpt/ckpt_int.h"

/*
 * Every dataset of a snapshot, with its file type (the address of HDF5's
 * global, read once the library is open); the columns (n entries) first,
 * then the offsets (n + 1), then the packed data.
 */
static const struct h5e_ds {
    const char *path;
    const hid_t *ftype;
} h5e_datasets[] = {
    {"/task/gid", &H5T_STD_U64LE_g},      {"/task/key", &H5T_STD_U64LE_g},
    {"/task/parent", &H5T_STD_U64LE_g},   {"/task/prio", &H5T_STD_I32LE_g},
    {"/task/cores", &H5T_STD_U16LE_g},    {"/task/state", &H5T_STD_U8LE_g},
    {"/task/attempts", &H5T_STD_U16LE_g}, {"/task/status", &H5T_STD_I32LE_g},
    {"/task/rank", &H5T_STD_I32LE_g},     {"/task/start_ns", &H5T_STD_U64LE_g},
    {"/task/end_ns", &H5T_STD_U64LE_g},   {"/name/offsets", &H5T_STD_U64LE_g},
    {"/cmd/offsets", &H5T_STD_U64LE_g},   {"/deps/offsets", &H5T_STD_U64LE_g},
    {"/out/offsets", &H5T_STD_U64LE_g},   {"/name/data", &H5T_STD_U8LE_g},
    {"/cmd/data", &H5T_STD_U8LE_g},       {"/deps/data", &H5T_STD_U64LE_g},
    {"/out/data", &H5T_STD_U8LE_g}};
#define H5E_NDS (sizeof h5e_datasets / sizeof h5e_datasets[0])
#define H5E_NCOLS 11  /* the first 11: n entries each */
#define H5E_NSIZED 15 /* and the offsets: n + 1 */

/* Writes the existing scalar attribute name of obj. */
static inline bool h5e_attr(hid_t obj, const char *name, hid_t mtype,
                            const void *v)
{
    hid_t a = H5Aexists(obj, name) > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
    bool ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    return ok;
}

/* Creates or replaces a u32 attribute "crc32c" of d holding crc. */
static inline bool h5e_set_crc(hid_t d, uint32_t crc)
{
    if (H5Aexists(d, "crc32c") > 0 && H5Adelete(d, "crc32c") < 0)
        return false;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(d, "crc32c", H5T_STD_U32LE, sp, H5P_DEFAULT,
                                   H5P_DEFAULT)
                      : -1;
    bool ok = a >= 0 && H5Awrite(a, H5T_NATIVE_UINT32, &crc) >= 0;
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return ok;
}

/* Dataset ds grown or shrunk to len entries, nothing written: a grown one
   is sparse, its new chunks never allocated. */
static inline bool h5e_extent(hid_t f, const char *ds, uint64_t len)
{
    hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
    hsize_t e = len;
    bool ok = d >= 0 && H5Dset_extent(d, &e) >= 0;
    if (d >= 0)
        H5Dclose(d);
    return ok;
}

/*
 * The most bytes an edit reads (and rewrites) of a dataset. Small: the
 * files of the tests are, and a dataset grown sparse to many chunks costs
 * HDF5 memory per chunk it visits, which its free lists then keep for the
 * life of the process (a fuzzer reading 16 MiB of one-entry chunks ran out
 * of its 2 GiB).
 */
#define H5E_MAX_READ (64u << 10)

/* A dataset open, and its values read whole as their native type. */
typedef struct h5e_vals {
    hid_t d, mt; /* the dataset, the memory type of its entries */
    size_t es;   /* bytes an entry */
    hsize_t n;   /* entries */
    uint8_t *buf;
} h5e_vals;

/* Closes what h5e_read opened; harmless on a failed one. */
static inline void h5e_done(h5e_vals *v)
{
    free(v->buf);
    if (v->mt >= 0)
        H5Tclose(v->mt);
    if (v->d >= 0)
        H5Dclose(v->d);
    v->buf = NULL;
    v->mt = v->d = -1;
}

/*
 * Opens dataset ds of f and reads its values, if there are at most max
 * bytes of them; false (and *v closed) if it is not there, larger, not 1-D
 * or unreadable. Close with h5e_done.
 */
static inline bool h5e_read(hid_t f, const char *ds, size_t max, h5e_vals *v)
{
    memset(v, 0, sizeof *v);
    v->mt = -1;
    /* H5Lexists fails (< 0) when a group on the way is missing. */
    v->d =
        H5Lexists(f, ds, H5P_DEFAULT) > 0 ? H5Dopen2(f, ds, H5P_DEFAULT) : -1;
    hid_t ft = v->d >= 0 ? H5Dget_type(v->d) : -1;
    hid_t sp = v->d >= 0 ? H5Dget_space(v->d) : -1;
    v->mt = ft >= 0 ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : -1;
    v->es = v->mt >= 0 ? H5Tget_size(v->mt) : 0;
    if (v->es && sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
        H5Sget_simple_extent_dims(sp, &v->n, NULL) == 1 &&
        v->n <= max / v->es && (v->buf = calloc(v->n + 1, v->es)) &&
        H5Dread(v->d, v->mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->buf) < 0) {
        free(v->buf);
        v->buf = NULL;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (!v->buf)
        h5e_done(v);
    return v->buf != NULL;
}

/* The checksum the loader computes over what v holds. */
static inline uint32_t h5e_crc(const h5e_vals *v, hsize_t entries)
{
    return tf_ck_crc32c(0, v->buf, entries * v->es);
}

/* Entry at of dataset ds set to x (its low bytes); with fix_crc its
   checksum made to match, so that only the value is hostile. */
static inline bool h5e_poke(hid_t f, const char *ds, uint64_t at, uint64_t x,
                            bool fix_crc)
{
    h5e_vals v;
    bool ok = h5e_read(f, ds, H5E_MAX_READ, &v) && at < v.n;
    if (ok) {
        memcpy(v.buf + at * v.es, &x, v.es < 8 ? v.es : 8); /* LE: low bytes */
        ok = H5Dwrite(v.d, v.mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.buf) >= 0 &&
             (!fix_crc || h5e_set_crc(v.d, h5e_crc(&v, v.n)));
    }
    h5e_done(&v);
    return ok;
}

/* Dataset ds shrunk by one entry, its checksum made to match. */
static inline bool h5e_cut_one(hid_t f, const char *ds)
{
    h5e_vals v;
    bool ok = h5e_read(f, ds, H5E_MAX_READ, &v) && v.n > 0;
    if (ok) {
        hsize_t e = v.n - 1;
        ok = H5Dset_extent(v.d, &e) >= 0 && h5e_set_crc(v.d, h5e_crc(&v, e));
    }
    h5e_done(&v);
    return ok;
}

/*
 * Dataset ds replaced by one of file type ftype made with dcpl (chunked,
 * compressed, contiguous, compact ...), holding the same values and the
 * checksum the loader computes over them, read as their native type: a
 * file another program could have written.
 */
static inline bool h5e_remake(hid_t f, const char *ds, hid_t ftype, hid_t dcpl)
{
    h5e_vals v;
    if (!h5e_read(f, ds, H5E_MAX_READ, &v))
        return false;
    H5Dclose(v.d);
    hid_t sp = H5Ldelete(f, ds, H5P_DEFAULT) >= 0
                   ? H5Screate_simple(1, &v.n, NULL)
                   : -1;
    v.d = sp >= 0 ? H5Dcreate2(f, ds, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)
                  : -1;
    bool ok = v.d >= 0 &&
              (v.n == 0 || H5Dwrite(v.d, v.mt, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    v.buf) >= 0) &&
              h5e_set_crc(v.d, h5e_crc(&v, v.n));
    if (sp >= 0)
        H5Sclose(sp);
    h5e_done(&v);
    return ok;
}

/*
 * Dataset ds replaced by a sparse one of n entries of type ftype: chunked,
 * nothing written, its fill value the default 0, so that every entry reads
 * as 0 (the writer's datasets have no fill value, and a read of an
 * unwritten chunk of one leaves the buffer as it was), with checksum crc.
 */
static inline bool h5e_sparse(hid_t f, const char *ds, hid_t ftype, uint64_t n,
                              uint32_t crc)
{
    hsize_t dims = n, maxd = H5S_UNLIMITED, chunk = 65536;
    if (H5Lexists(f, ds, H5P_DEFAULT) > 0 && H5Ldelete(f, ds, H5P_DEFAULT) < 0)
        return false;
    hid_t sp = H5Screate_simple(1, &dims, &maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0
                  ? H5Dcreate2(f, ds, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)
                  : -1;
    bool ok = d >= 0 && h5e_set_crc(d, crc);
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    return ok;
}

#endif
