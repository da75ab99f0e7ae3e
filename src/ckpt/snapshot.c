/* HDF5 snapshots: writing one in bounded blocks, reading one with checks. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "ckpt_int.h"

/*
 * Layout (docs/checkpoint-format.md): meta as attributes of "/"; the
 * fixed-size columns as 1-D datasets in /task; each variable-length family
 * (/name, /cmd, /deps, /out) as one packed data array plus an offsets array
 * of n + 1 entries. Every dataset carries a "crc32c" attribute over its
 * little-endian bytes. HDF5 itself checksums the metadata (superblock v3,
 * version 2 object headers: the 1.10 format, which h5dump 1.10 reads).
 */
#define FORMAT_NAME "taskfarm-state"
/* Most tasks gathered from the getter per write (and per column chunk). */
#define BLOCK 65536
/* Largest chunk of a packed data array, in bytes. */
#define DATA_CHUNK (1u << 20)

static const struct fixcol {
    const char *name;
    size_t off, size;
    bool sgn;
} fixcols[] = {
    {"gid", offsetof(tf_ck_task, gid), 8, false},
    {"key", offsetof(tf_ck_task, key), 8, false},
    {"parent", offsetof(tf_ck_task, parent), 8, false},
    {"prio", offsetof(tf_ck_task, prio), 4, true},
    {"cores", offsetof(tf_ck_task, cores), 2, false},
    {"state", offsetof(tf_ck_task, state), 1, false},
    {"attempts", offsetof(tf_ck_task, attempts), 2, false},
    {"status", offsetof(tf_ck_task, status), 4, true},
    {"rank", offsetof(tf_ck_task, rank), 4, true},
    {"start_ns", offsetof(tf_ck_task, start_ns), 8, false},
    {"end_ns", offsetof(tf_ck_task, end_ns), 8, false},
};
#define NFIX (sizeof fixcols / sizeof fixcols[0])

/* Variable-length families: a pointer field and its uint32_t length. */
static const struct varcol {
    const char *group;
    size_t ptr_off, len_off, elem;
} varcols[] = {
    {"name", offsetof(tf_ck_task, name), offsetof(tf_ck_task, name_len), 1},
    {"cmd", offsetof(tf_ck_task, cmd), offsetof(tf_ck_task, cmd_len), 1},
    {"deps", offsetof(tf_ck_task, deps), offsetof(tf_ck_task, ndeps), 8},
    {"out", offsetof(tf_ck_task, out), offsetof(tf_ck_task, out_len), 1},
};
#define NVAR (sizeof varcols / sizeof varcols[0])

static hid_t file_type(size_t size, bool sgn)
{
    switch (size) {
    case 1:
        return sgn ? H5T_STD_I8LE : H5T_STD_U8LE;
    case 2:
        return sgn ? H5T_STD_I16LE : H5T_STD_U16LE;
    case 4:
        return sgn ? H5T_STD_I32LE : H5T_STD_U32LE;
    default:
        return sgn ? H5T_STD_I64LE : H5T_STD_U64LE;
    }
}

static hid_t mem_type(size_t size, bool sgn)
{
    switch (size) {
    case 1:
        return sgn ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
    case 2:
        return sgn ? H5T_NATIVE_INT16 : H5T_NATIVE_UINT16;
    case 4:
        return sgn ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32;
    default:
        return sgn ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64;
    }
}

static const void *field_ptr(const tf_ck_task *t, size_t off)
{
    const void *p;
    memcpy(&p, (const char *)t + off, sizeof p);
    return p;
}

static uint32_t field_len(const tf_ck_task *t, size_t off)
{
    uint32_t n;
    memcpy(&n, (const char *)t + off, sizeof n);
    return n;
}

/* ---- errors ----------------------------------------------------------- */

/*
 * HDF5's innermost error says what the system call said ("... error
 * message = 'No space left on device' ..."); keep that part.
 */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *why = data;
    if (n == 0 && e->desc) {
        const char *m = strstr(e->desc, "error message = '");
        if (m) {
            m += strlen("error message = '");
            size_t len = strcspn(m, "'");
            snprintf(why, 128, "%.*s", (int)len, m);
        } else {
            snprintf(why, 128, "%s", e->desc);
        }
    }
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    char what[256], why[128] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, why);
    if (why[0])
        snprintf(err, errlen, "%s: %s: %s", path, what, why);
    else
        snprintf(err, errlen, "%s: %s", path, what);
    return TF_EIO;
}

/* ---- attributes -------------------------------------------------------- */

static int put_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype,
                    const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0
                  ? -1
                  : H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return ok ? 0 : -1;
}

/* A fixed-length string of at most max bytes (s need not end in NUL). */
static int put_str(hid_t obj, const char *name, const char *s, size_t max)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t n = strnlen(s, max);
    int rc = t >= 0 && H5Tset_size(t, n ? n : 1) >= 0 &&
                     H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0
                 ? put_attr(obj, name, t, t, n ? s : "")
                 : -1;
    if (t >= 0)
        H5Tclose(t);
    return rc;
}

#define PUT_U(obj, name, v, size)                                              \
    put_attr(obj, name, file_type(size, false), mem_type(size, false), v)
#define PUT_I(obj, name, v, size)                                              \
    put_attr(obj, name, file_type(size, true), mem_type(size, true), v)

static int get_attr(hid_t obj, const char *name, hid_t mtype, void *v)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t sp = H5Aget_space(a);
    int ok = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SCALAR &&
             H5Aread(a, mtype, v) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return ok ? 0 : -1;
}

/*
 * A fixed-length string attribute of at most 255 bytes into buf,
 * NUL-terminated (truncated to len). Longer ones are refused unread: no
 * attribute of ours is, and a hostile size must not become an allocation.
 */
static int get_str(hid_t obj, const char *name, char *buf, size_t len)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    char tmp[256] = "";
    int rc = -1;
    if (ft >= 0 && sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SCALAR &&
        H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft) &&
        H5Tget_size(ft) < sizeof tmp) {
        hid_t mt = H5Tcopy(ft);
        if (mt >= 0 && H5Aread(a, mt, tmp) >= 0) {
            snprintf(buf, len, "%s", tmp);
            rc = 0;
        }
        if (mt >= 0)
            H5Tclose(mt);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* A dataset being written or read. */
typedef struct dset {
    hid_t ds;
    uint64_t len;       /* entries written; or, read, its extent */
    uint32_t want, crc; /* read: the stored checksum; the running one */
} dset;

/* A snapshot's groups (in the order of groups[] below) and datasets (of
   fixcols and varcols), as the writer and the reader hold them. */
typedef struct dsets {
    hid_t grp[1 + NVAR];
    dset fix[NFIX], off[NVAR], data[NVAR];
} dsets;

static void dsets_init(dsets *d)
{
    for (size_t g = 0; g < 1 + NVAR; g++)
        d->grp[g] = -1;
    for (size_t c = 0; c < NFIX; c++)
        d->fix[c].ds = -1;
    for (size_t v = 0; v < NVAR; v++)
        d->off[v].ds = d->data[v].ds = -1;
}

/*
 * A chunked, extensible 1-D dataset. Columns written one whole chunk per
 * block (cached = false) bypass HDF5's chunk cache, which would only copy
 * them once more; the packed data arrays, written in pieces that straddle
 * chunks, keep it.
 */
static hid_t create_ds(hid_t loc, const char *name, hid_t ftype, uint64_t n,
                       uint64_t chunk, bool cached)
{
    hsize_t dims = n, maxd = H5S_UNLIMITED, ch = chunk ? chunk : 1;
    hid_t sp = H5Screate_simple(1, &dims, &maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    hid_t ds = -1;
    /* Every element is written exactly once: no fill values (HDF5 would
       otherwise memset each new chunk first). */
    if (sp >= 0 && dcpl >= 0 && dapl >= 0 && H5Pset_chunk(dcpl, 1, &ch) >= 0 &&
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
        (cached || H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0))
        ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, dapl);
    if (dapl >= 0)
        H5Pclose(dapl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    return ds;
}

/* Appends cnt elements at w->len, growing the dataset if needed. */
static int append(dset *w, hid_t mtype, size_t esize, const void *buf,
                  uint64_t cnt, bool grow)
{
    if (!cnt)
        return 0;
    hsize_t off = w->len, c = cnt, end = w->len + cnt;
    if (grow && H5Dset_extent(w->ds, &end) < 0)
        return -1;
    hid_t fs = H5Dget_space(w->ds);
    hid_t ms = H5Screate_simple(1, &c, NULL);
    int ok =
        fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &c, NULL) >= 0 &&
        H5Dwrite(w->ds, mtype, ms, fs, H5P_DEFAULT, buf) >= 0;
    /* Closing clears HDF5's error stack: keep it for the message. */
    hid_t es = ok ? -1 : H5Eget_current_stack();
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (es >= 0)
        H5Eset_current_stack(es);
    if (!ok)
        return -1;
    w->crc = tf_ck_crc32c(w->crc, buf, cnt * esize);
    w->len = end;
    return 0;
}

/* A growable byte buffer for one block of one family. */
typedef struct bbuf {
    uint8_t *p;
    size_t len, cap;
} bbuf;

static int bbuf_add(bbuf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n)
            c *= 2;
        uint8_t *q = realloc(b->p, c);
        if (!q)
            return -1;
        b->p = q;
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

typedef struct writer {
    const char *path;
    char *err;
    size_t errlen;
    hid_t file;
    dsets d;
    uint8_t *col[NFIX];   /* one block of each fixed column */
    uint64_t *offs[NVAR]; /* one block of each family's offsets */
    bbuf bytes[NVAR];     /* one block of each family's data */
} writer;

static int write_meta(writer *w, const tf_ck_meta *m, uint64_t n)
{
    hid_t f = w->file;
    uint32_t fv = TF_CK_FORMAT;
    if (put_str(f, "format", FORMAT_NAME, sizeof FORMAT_NAME) ||
        PUT_U(f, "format_version", &fv, 4) ||
        put_str(f, "taskfarm_version", m->version, sizeof m->version) ||
        PUT_U(f, "kind", &m->kind, 4) ||
        PUT_U(f, "source_hash", &m->source_hash, 8) ||
        PUT_I(f, "world_size", &m->world_size, 4) ||
        PUT_U(f, "time_ns", &m->time_ns, 8) ||
        PUT_U(f, "generation", &m->generation, 8) ||
        PUT_U(f, "journal_id", &m->journal_id, 8) ||
        PUT_U(f, "journal_pos", &m->journal_pos, 8) || PUT_U(f, "n", &n, 8))
        return fail(w->err, w->errlen, w->path, "cannot write the metadata");
    return 0;
}

static const char *const groups[1 + NVAR] = {"task", "name", "cmd", "deps",
                                             "out"};

/*
 * Tasks per block, and per chunk of the columns: equal chunks of at most
 * BLOCK tasks, so that no last chunk is mostly empty and each block fills
 * whole chunks. (The offsets, n + 1 entries, end with a chunk holding one.)
 */
static uint64_t block_for(uint64_t n)
{
    uint64_t chunks = (n + BLOCK - 1) / BLOCK;
    return chunks ? (n + chunks - 1) / chunks : 1;
}

static int create_all(writer *w, uint64_t n)
{
    uint64_t chunk = block_for(n);
    for (size_t g = 0; g < 1 + NVAR; g++) {
        w->d.grp[g] = H5Gcreate2(w->file, groups[g], H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT);
        if (w->d.grp[g] < 0)
            return fail(w->err, w->errlen, w->path, "cannot create /%s",
                        groups[g]);
    }
    for (size_t c = 0; c < NFIX; c++) {
        w->d.fix[c].ds = create_ds(w->d.grp[0], fixcols[c].name,
                                   file_type(fixcols[c].size, fixcols[c].sgn),
                                   n, chunk, false);
        if (w->d.fix[c].ds < 0)
            return fail(w->err, w->errlen, w->path, "cannot create /task/%s",
                        fixcols[c].name);
    }
    for (size_t v = 0; v < NVAR; v++) {
        w->d.off[v].ds = create_ds(w->d.grp[1 + v], "offsets", H5T_STD_U64LE,
                                   n + 1, chunk, false);
        if (w->d.off[v].ds < 0)
            return fail(w->err, w->errlen, w->path, "cannot create /%s/offsets",
                        varcols[v].group);
    }
    return 0;
}

/* The data arrays are created once the first block shows how big a chunk
   fits: a small state gets one small chunk, a large one 1 MiB chunks. */
static int create_data(writer *w, size_t v, uint64_t first)
{
    uint64_t max = DATA_CHUNK / varcols[v].elem;
    w->d.data[v].ds =
        create_ds(w->d.grp[1 + v], "data",
                  varcols[v].elem == 8 ? H5T_STD_U64LE : H5T_STD_U8LE, 0,
                  first < max ? first : max, true);
    if (w->d.data[v].ds < 0)
        return fail(w->err, w->errlen, w->path, "cannot create /%s/data",
                    varcols[v].group);
    return 0;
}

static hid_t data_mtype(size_t v)
{
    return varcols[v].elem == 8 ? H5T_NATIVE_UINT64 : H5T_NATIVE_UINT8;
}

/* Gathers tasks [i0, i0 + m) from the getter and appends them everywhere. */
static int write_block(writer *w, uint64_t i0, uint64_t m, tf_ck_get_fn get,
                       void *user)
{
    for (size_t v = 0; v < NVAR; v++)
        w->bytes[v].len = 0;
    for (uint64_t k = 0; k < m; k++) {
        tf_ck_task t;
        memset(&t, 0, sizeof t);
        get(user, i0 + k, &t);
        for (size_t c = 0; c < NFIX; c++)
            memcpy(w->col[c] + k * fixcols[c].size,
                   (const char *)&t + fixcols[c].off, fixcols[c].size);
        for (size_t v = 0; v < NVAR; v++) {
            size_t el = varcols[v].elem;
            size_t bytes = (size_t)field_len(&t, varcols[v].len_off) * el;
            w->offs[v][k] = w->d.data[v].len + w->bytes[v].len / el;
            if (bytes && bbuf_add(&w->bytes[v],
                                  field_ptr(&t, varcols[v].ptr_off), bytes)) {
                snprintf(w->err, w->errlen, "%s: out of memory", w->path);
                return TF_ENOMEM;
            }
        }
    }
    for (size_t c = 0; c < NFIX; c++)
        if (append(&w->d.fix[c], mem_type(fixcols[c].size, fixcols[c].sgn),
                   fixcols[c].size, w->col[c], m, false))
            return fail(w->err, w->errlen, w->path, "cannot write /task/%s",
                        fixcols[c].name);
    for (size_t v = 0; v < NVAR; v++) {
        size_t el = varcols[v].elem, cnt = w->bytes[v].len / el;
        int rc =
            append(&w->d.off[v], H5T_NATIVE_UINT64, 8, w->offs[v], m, false);
        if (!rc && w->d.data[v].ds < 0)
            rc = create_data(w, v, cnt);
        if (!rc)
            rc = append(&w->d.data[v], data_mtype(v), el, w->bytes[v].p, cnt,
                        true);
        if (rc)
            return rc == TF_EIO ? rc
                                : fail(w->err, w->errlen, w->path,
                                       "cannot write /%s", varcols[v].group);
    }
    return 0;
}

/* The last offset of every family, then every dataset's checksum. */
static int finish(writer *w)
{
    for (size_t v = 0; v < NVAR; v++) {
        if (w->d.data[v].ds < 0 && create_data(w, v, 1))
            return TF_EIO;
        if (append(&w->d.off[v], H5T_NATIVE_UINT64, 8, &w->d.data[v].len, 1,
                   false))
            return fail(w->err, w->errlen, w->path, "cannot write /%s/offsets",
                        varcols[v].group);
    }
    for (size_t c = 0; c < NFIX; c++)
        if (PUT_U(w->d.fix[c].ds, "crc32c", &w->d.fix[c].crc, 4))
            return fail(w->err, w->errlen, w->path, "cannot write checksums");
    for (size_t v = 0; v < NVAR; v++)
        if (PUT_U(w->d.off[v].ds, "crc32c", &w->d.off[v].crc, 4) ||
            PUT_U(w->d.data[v].ds, "crc32c", &w->d.data[v].crc, 4))
            return fail(w->err, w->errlen, w->path, "cannot write checksums");
    return 0;
}

/* Closes one dataset; a dataset writes its cached chunks as it closes, so
   a failure (ENOSPC) there is the snapshot's failure. */
static int close_ds(writer *w, hid_t ds, int rc)
{
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc)
        rc = fail(w->err, w->errlen, w->path, "cannot write a dataset out");
    return rc;
}

/* Frees everything but the file; returns rc, or the first close's error. */
static int close_all(writer *w, int rc)
{
    for (size_t c = 0; c < NFIX; c++) {
        rc = close_ds(w, w->d.fix[c].ds, rc);
        free(w->col[c]);
    }
    for (size_t v = 0; v < NVAR; v++) {
        rc = close_ds(w, w->d.off[v].ds, rc);
        rc = close_ds(w, w->d.data[v].ds, rc);
        free(w->offs[v]);
        free(w->bytes[v].p);
    }
    for (size_t g = 0; g < 1 + NVAR; g++)
        if (w->d.grp[g] >= 0 && H5Gclose(w->d.grp[g]) < 0 && !rc)
            rc = fail(w->err, w->errlen, w->path, "cannot close a group");
    return rc;
}

/*
 * The core driver's memory is img's buffer: it survives the file, so the
 * next snapshot writes into pages already mapped (on this VM a first touch
 * costs more than the copy itself), and the I/O thread writes it out. Its
 * length is the driver's last size: the file rounded up to the driver's
 * increment, the tail zeros, which HDF5 accepts after its end of data.
 */
static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op,
                         void *udata)
{
    tf_ck_image *im = udata;
    (void)ptr, (void)op;
    if (size > im->cap) {
        size_t cap = im->cap * 2 > size ? im->cap * 2 : size;
        uint8_t *q = realloc(im->p, cap);
        if (!q)
            return NULL;
        im->p = q;
        im->cap = cap;
    }
    im->len = size;
    return im->p;
}

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    return img_realloc(NULL, size, op, udata);
}

static void *img_memcpy(void *dst, const void *src, size_t size,
                        H5FD_file_image_op_t op, void *udata)
{
    (void)op, (void)udata;
    return memcpy(dst, src, size);
}

static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr, (void)op, (void)udata; /* img keeps it */
    return 0;
}

static void *img_udata_copy(void *udata)
{
    return udata;
}

static herr_t img_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

static int set_driver(hid_t fapl, tf_ck_image *img)
{
    if (!img)
        return H5Pset_fapl_sec2(fapl);
    H5FD_file_image_callbacks_t cb = {
        img_malloc,     img_memcpy,     img_realloc, img_free,
        img_udata_copy, img_udata_free, img};
    img->len = 0;
    return H5Pset_fapl_core(fapl, 64u << 10, 0) < 0 ||
                   H5Pset_file_image_callbacks(fapl, &cb) < 0
               ? -1
               : 0;
}

int tf_ck_snap_write(const char *path, const tf_ck_meta *m, uint64_t n,
                     tf_ck_get_fn get, void *user, tf_ck_image *img, char *err,
                     size_t errlen)
{
    writer w;
    memset(&w, 0, sizeof w);
    w.path = path;
    w.err = err;
    w.errlen = errlen;
    w.file = -1;
    dsets_init(&w.d);
    uint64_t blk = block_for(n);
    for (size_t c = 0; c < NFIX; c++)
        if (!(w.col[c] = malloc(blk * fixcols[c].size))) {
            close_all(&w, TF_ENOMEM);
            return TF_ENOMEM;
        }
    for (size_t v = 0; v < NVAR; v++)
        if (!(w.offs[v] = malloc(blk * sizeof(uint64_t)))) {
            close_all(&w, TF_ENOMEM);
            return TF_ENOMEM;
        }

    /* An application may print HDF5 errors; we report ours in err. */
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        set_driver(fapl, img) < 0)
        rc = fail(err, errlen, path, "cannot set up HDF5 file access");
    if (!rc) {
        w.file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (w.file < 0)
            rc = fail(err, errlen, path, "cannot create");
    }
    if (!rc)
        rc = write_meta(&w, m, n);
    if (!rc)
        rc = create_all(&w, n);
    for (uint64_t i = 0; !rc && i < n; i += blk)
        rc = write_block(&w, i, n - i < blk ? n - i : blk, get, user);
    if (!rc)
        rc = finish(&w);
    rc = close_all(&w, rc);
    if (w.file >= 0 && H5Fclose(w.file) < 0 && !rc)
        rc = fail(err, errlen, path, "cannot close");
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    if (rc && !img)
        remove(path);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

/*
 * A file to be read is hostile until checked (docs/checkpoint-format.md,
 * "Loading"). Before anything is allocated for it, every size it claims is
 * held against the file: n against the file's bytes; each dataset's extent
 * against n, its link (hard, never to another file), type (integers of the
 * right size), filters (none) and the bytes HDF5 has stored for it (a
 * sparse dataset, its chunks never written, stores fewer than its extent
 * needs); all the stored bytes together against the file's size. Then every
 * checksum and offset is verified in a first pass that keeps one block of
 * each column in memory; the packed data arrays, which the tasks will point
 * into, are read whole and verified first. Only then is the task array
 * allocated and filled, in a second pass that checks again everything it
 * uses, so that a file changed in between cannot lead it out of bounds.
 */

/* The root's metadata; err says what is wrong (foreign, newer, corrupt). */
static int read_meta(hid_t f, const char *path, tf_ck_meta *m, uint64_t *n,
                     char *err, size_t errlen)
{
    char format[64];
    uint32_t fv;
    if (get_str(f, "format", format, sizeof format) ||
        strcmp(format, FORMAT_NAME)) {
        snprintf(err, errlen,
                 "%s: an HDF5 file but not a taskfarm state (foreign format)",
                 path);
        return TF_EIO;
    }
    if (get_attr(f, "format_version", H5T_NATIVE_UINT32, &fv) || fv == 0) {
        snprintf(err, errlen, "%s: no valid format_version (corrupt)", path);
        return TF_EIO;
    }
    if (fv > TF_CK_FORMAT) {
        snprintf(err, errlen,
                 "%s: foreign format: version %" PRIu32
                 " is newer than this taskfarm reads (%d)",
                 path, fv, TF_CK_FORMAT);
        return TF_EIO;
    }
    memset(m, 0, sizeof *m);
    const char *bad = NULL;
    if (get_str(f, "taskfarm_version", m->version, sizeof m->version))
        bad = "taskfarm_version";
    else if (get_attr(f, "kind", H5T_NATIVE_UINT32, &m->kind))
        bad = "kind";
    else if (get_attr(f, "source_hash", H5T_NATIVE_UINT64, &m->source_hash))
        bad = "source_hash";
    else if (get_attr(f, "world_size", H5T_NATIVE_INT32, &m->world_size))
        bad = "world_size";
    else if (get_attr(f, "time_ns", H5T_NATIVE_UINT64, &m->time_ns))
        bad = "time_ns";
    else if (get_attr(f, "generation", H5T_NATIVE_UINT64, &m->generation))
        bad = "generation";
    else if (get_attr(f, "journal_id", H5T_NATIVE_UINT64, &m->journal_id))
        bad = "journal_id";
    else if (get_attr(f, "journal_pos", H5T_NATIVE_UINT64, &m->journal_pos))
        bad = "journal_pos";
    else if (get_attr(f, "n", H5T_NATIVE_UINT64, n))
        bad = "n";
    if (bad) {
        snprintf(err, errlen,
                 "%s: attribute '%s' missing or unreadable "
                 "(corrupt)",
                 path, bad);
        return TF_EIO;
    }
    return 0;
}

/* What reading one snapshot holds; indexes follow fixcols and varcols. */
typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
    uint64_t unclaimed; /* bytes of the file no dataset has claimed yet */
    dsets d;
    void *col[NFIX];    /* one block of each column */
    uint64_t *ob[NVAR]; /* one block of each family's offsets, plus one */
} reader;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
corrupt(reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s (corrupt)", r->path, what);
    return TF_EIO;
}

/* malloc of cnt * size bytes, or TF_ENOMEM with err naming the file. */
static int alloc(reader *r, void **p, uint64_t cnt, size_t size,
                 const char *what)
{
    if (cnt > SIZE_MAX / size || !(*p = malloc(cnt ? cnt * size : 1))) {
        snprintf(r->err, r->errlen,
                 "%s: out of memory for %s (%" PRIu64 " x %zu bytes)", r->path,
                 what, cnt, size);
        return TF_ENOMEM;
    }
    return 0;
}

/* Fewest bytes a task takes in a file: its fixed columns and offsets. */
static uint64_t min_task_bytes(void)
{
    uint64_t b = NVAR * sizeof(uint64_t);
    for (size_t c = 0; c < NFIX; c++)
        b += fixcols[c].size;
    return b;
}

/* Whether name is in g as a hard link: no soft link, no other file. */
static bool has_hard_link(hid_t g, const char *name)
{
    H5L_info_t li;
    return H5Lexists(g, name, H5P_DEFAULT) > 0 &&
           H5Lget_info(g, name, &li, H5P_DEFAULT) >= 0 &&
           li.type == H5L_TYPE_HARD;
}

/* The type, filters and stored bytes of an open dataset of len entries. */
static int check_storage(reader *r, hid_t ds, const char *grp, const char *name,
                         uint64_t len, size_t esize)
{
    hid_t ft = H5Dget_type(ds);
    bool typed =
        ft >= 0 && H5Tget_class(ft) == H5T_INTEGER && H5Tget_size(ft) == esize;
    if (ft >= 0)
        H5Tclose(ft);
    if (!typed)
        return corrupt(r, "/%s/%s is not %zu-byte integers", grp, name, esize);
    hid_t dcpl = H5Dget_create_plist(ds);
    int nfilters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (nfilters != 0)
        return corrupt(r,
                       "/%s/%s has a filter (compression?), which taskfarm "
                       "never writes: its size cannot be checked before "
                       "reading it",
                       grp, name);
    /* The chunks of a sparse dataset were never written: fewer bytes. */
    uint64_t stored = H5Dget_storage_size(ds);
    if (len > UINT64_MAX / esize || stored < len * esize)
        return corrupt(r,
                       "/%s/%s has %" PRIu64 " entries but stores only "
                       "%" PRIu64 " bytes (sparse or cut short)",
                       grp, name, len, stored);
    if (stored > r->unclaimed)
        return corrupt(r,
                       "its datasets store more bytes than the file has "
                       "(/%s/%s: %" PRIu64 ")",
                       grp, name, stored);
    r->unclaimed -= stored;
    return 0;
}

/*
 * Opens grp/name (group g), checking that it is a 1-D dataset of want
 * entries (UINT64_MAX: any) of esize-byte integers, all stored, with a
 * checksum. Without the chunk cache (cached = false) whole chunks are read
 * straight into the caller's buffer.
 */
static int open_ds(reader *r, hid_t g, const char *grp, const char *name,
                   uint64_t want, size_t esize, bool cached, dset *d)
{
    d->crc = 0;
    d->len = 0;
    if (!has_hard_link(g, name))
        return corrupt(r, "dataset /%s/%s missing, or a link elsewhere", grp,
                       name);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    d->ds = dapl >= 0 && (cached || H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0)
                ? H5Dopen2(g, name, dapl)
                : -1;
    if (dapl >= 0)
        H5Pclose(dapl);
    if (d->ds < 0)
        return fail(r->err, r->errlen, r->path,
                    "dataset /%s/%s unreadable (corrupt)", grp, name);
    int rc = 0;
    hsize_t dims = 0;
    hid_t sp = H5Dget_space(d->ds);
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, &dims, NULL) != 1)
        rc = corrupt(r, "/%s/%s is not a 1-D dataset", grp, name);
    else if (want != UINT64_MAX && dims != want)
        rc = corrupt(r, "/%s/%s has %" PRIu64 " entries, expected %" PRIu64,
                     grp, name, (uint64_t)dims, want);
    else if (get_attr(d->ds, "crc32c", H5T_NATIVE_UINT32, &d->want))
        rc = corrupt(r, "/%s/%s has no checksum", grp, name);
    else
        rc = check_storage(r, d->ds, grp, name, dims, esize);
    if (sp >= 0)
        H5Sclose(sp);
    if (rc) {
        H5Dclose(d->ds);
        d->ds = -1;
    }
    d->len = dims;
    return rc;
}

/* Every group and dataset, each checked against n and the file. */
static int open_all(reader *r, hid_t f, uint64_t n)
{
    int rc = 0;
    for (size_t k = 0; !rc && k < 1 + NVAR; k++) {
        r->d.grp[k] = has_hard_link(f, groups[k])
                          ? H5Gopen2(f, groups[k], H5P_DEFAULT)
                          : -1;
        if (r->d.grp[k] < 0)
            rc = fail(r->err, r->errlen, r->path, "group /%s missing (corrupt)",
                      groups[k]);
    }
    for (size_t c = 0; !rc && c < NFIX; c++)
        rc = open_ds(r, r->d.grp[0], "task", fixcols[c].name, n,
                     fixcols[c].size, false, &r->d.fix[c]);
    /* Offsets keep the chunk cache: each block also reads the first entry
       of the next chunk. */
    for (size_t v = 0; !rc && v < NVAR; v++) {
        rc = open_ds(r, r->d.grp[1 + v], varcols[v].group, "offsets", n + 1,
                     sizeof(uint64_t), true, &r->d.off[v]);
        if (!rc)
            rc = open_ds(r, r->d.grp[1 + v], varcols[v].group, "data",
                         UINT64_MAX, varcols[v].elem, false, &r->d.data[v]);
    }
    return rc;
}

/*
 * Entries [off, off + cnt) into buf (room for cnt); the first sum of them
 * into d->crc.
 */
static int read_range(dset *d, hid_t mtype, size_t esize, uint64_t off,
                      uint64_t cnt, uint64_t sum, void *buf)
{
    if (!cnt)
        return 0;
    hsize_t o = off, c = cnt;
    hid_t fs = H5Dget_space(d->ds);
    hid_t ms = H5Screate_simple(1, &c, NULL);
    int ok = fs >= 0 && ms >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, &o, NULL, &c, NULL) >= 0 &&
             H5Dread(d->ds, mtype, ms, fs, H5P_DEFAULT, buf) >= 0;
    hid_t es = ok ? -1 : H5Eget_current_stack();
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (es >= 0)
        H5Eset_current_stack(es);
    if (ok)
        d->crc = tf_ck_crc32c(d->crc, buf, sum * esize);
    return ok ? 0 : -1;
}

static int check_crc(reader *r, const dset *d, const char *grp,
                     const char *name)
{
    return d->crc == d->want
               ? 0
               : corrupt(r, "/%s/%s checksum mismatch", grp, name);
}

/* The packed data arrays, whole, each verified (the tasks point into
   them); their sizes were checked against the file. */
static int read_data(reader *r, tf_ck_snap *s)
{
    int rc = 0;
    for (size_t v = 0; !rc && v < NVAR; v++) {
        const char *grp = varcols[v].group;
        dset *d = &r->d.data[v];
        char what[32];
        snprintf(what, sizeof what, "/%s/data", grp);
        rc = alloc(r, &s->bytes[v], d->len, varcols[v].elem, what);
        if (!rc && read_range(d, data_mtype(v), varcols[v].elem, 0, d->len,
                              d->len, s->bytes[v]))
            rc = fail(r->err, r->errlen, r->path,
                      "cannot read /%s/data (corrupt)", grp);
        if (!rc)
            rc = check_crc(r, d, grp, "data");
        s->len[v] = d->len;
    }
    return rc;
}

/*
 * Tasks [i0, i0 + m) from one block of the columns (col[c][k] is task
 * i0 + k) and of the offsets (off[v][k], k <= m), which scan has checked.
 */
static void build_tasks(tf_ck_snap *s, uint64_t i0, uint64_t m,
                        void *const col[NFIX], uint64_t *const off[NVAR])
{
    const uint64_t *gid = col[0], *key = col[1], *parent = col[2];
    const int32_t *prio = col[3];
    const uint16_t *cores = col[4];
    const uint8_t *state = col[5];
    const uint16_t *attempts = col[6];
    const int32_t *status = col[7], *rank = col[8];
    const uint64_t *start = col[9], *end = col[10];
    const char *name = s->bytes[0];
    const uint8_t *cmd = s->bytes[1], *out = s->bytes[3];
    const uint64_t *deps = s->bytes[2];
    for (uint64_t k = 0; k < m; k++) {
        tf_ck_task *t = &s->task[i0 + k];
        t->gid = gid[k];
        t->key = key[k];
        t->parent = parent[k];
        t->prio = prio[k];
        t->cores = cores[k];
        t->state = state[k];
        t->attempts = attempts[k];
        t->status = status[k];
        t->rank = rank[k];
        t->start_ns = start[k];
        t->end_ns = end[k];
        t->name = name + off[0][k];
        t->name_len = (uint32_t)(off[0][k + 1] - off[0][k]);
        t->cmd = cmd + off[1][k];
        t->cmd_len = (uint32_t)(off[1][k + 1] - off[1][k]);
        t->deps = deps + off[2][k];
        t->ndeps = (uint32_t)(off[2][k + 1] - off[2][k]);
        t->out = out + off[3][k];
        t->out_len = (uint32_t)(off[3][k + 1] - off[3][k]);
    }
}

/* Offsets never decrease, no task has 4 GiB or more, none points past the
   data (len entries). */
static bool offsets_ok(const uint64_t *off, uint64_t m, uint64_t len)
{
    for (uint64_t k = 0; k < m; k++)
        if (off[k] > off[k + 1] || off[k + 1] - off[k] > UINT32_MAX)
            return false;
    return off[m] <= len;
}

/* The first task of a block whose state is not a tf_task_state, or m. */
static uint64_t bad_state(const uint8_t *state, uint64_t m)
{
    uint64_t k = 0;
    while (k < m && state[k] <= TF_TASK_SKIPPED)
        k++;
    return k;
}

/*
 * One pass over the columns and offsets, a block at a time into buffers
 * used again and again, so that loading touches fresh memory only for what
 * it keeps: every offset checked against the data, every state against the
 * states that exist, every checksum compared at the end. With s->task (the
 * second pass), the tasks are built from the checked blocks too.
 */
static int scan(reader *r, tf_ck_snap *s)
{
    int rc = 0;
    uint64_t n = s->n, blk = block_for(n);
    for (size_t c = 0; c < NFIX; c++)
        r->d.fix[c].crc = 0;
    for (size_t v = 0; v < NVAR; v++)
        r->d.off[v].crc = 0;
    for (uint64_t i = 0; !rc && i < n + (n == 0); i += blk) {
        uint64_t m = n - i < blk ? n - i : blk, k;
        for (size_t c = 0; !rc && c < NFIX; c++)
            if (read_range(&r->d.fix[c],
                           mem_type(fixcols[c].size, fixcols[c].sgn),
                           fixcols[c].size, i, m, m, r->col[c]))
                rc = fail(r->err, r->errlen, r->path,
                          "cannot read /task/%s (corrupt)", fixcols[c].name);
        if (!rc && (k = bad_state(r->col[5], m)) < m)
            rc = corrupt(r, "task %" PRIu64 " has state %u, which no task has",
                         i + k, ((const uint8_t *)r->col[5])[k]);
        for (size_t v = 0; !rc && v < NVAR; v++) {
            const uint64_t *o = r->ob[v];
            /* m + 1 entries; the last one counts in the checksum only at
               the end, since the next block reads it again. */
            uint64_t sum = i + m == n ? m + 1 : m;
            if (read_range(&r->d.off[v], H5T_NATIVE_UINT64, 8, i, m + 1, sum,
                           r->ob[v]))
                rc =
                    fail(r->err, r->errlen, r->path,
                         "cannot read /%s/offsets (corrupt)", varcols[v].group);
            else if ((i == 0 && o[0] != 0) || !offsets_ok(o, m, s->len[v]) ||
                     (i + m == n && o[m] != s->len[v]))
                rc = corrupt(r, "/%s/offsets do not match the data",
                             varcols[v].group);
        }
        if (!rc && s->task)
            build_tasks(s, i, m, r->col, r->ob);
    }
    for (size_t c = 0; !rc && c < NFIX; c++)
        rc = check_crc(r, &r->d.fix[c], "task", fixcols[c].name);
    for (size_t v = 0; !rc && v < NVAR; v++)
        rc = check_crc(r, &r->d.off[v], varcols[v].group, "offsets");
    return rc;
}

/* The buffers for one block of each column and offsets array. */
static int alloc_blocks(reader *r, uint64_t n)
{
    uint64_t blk = block_for(n);
    int rc = 0;
    for (size_t c = 0; !rc && c < NFIX; c++)
        rc = alloc(r, &r->col[c], blk, fixcols[c].size, "a block of columns");
    for (size_t v = 0; !rc && v < NVAR; v++)
        rc = alloc(r, (void **)&r->ob[v], blk + 1, sizeof(uint64_t),
                   "a block of offsets");
    return rc;
}

static void close_reader(reader *r)
{
    for (size_t c = 0; c < NFIX; c++) {
        if (r->d.fix[c].ds >= 0)
            H5Dclose(r->d.fix[c].ds);
        free(r->col[c]);
    }
    for (size_t v = 0; v < NVAR; v++) {
        if (r->d.off[v].ds >= 0)
            H5Dclose(r->d.off[v].ds);
        if (r->d.data[v].ds >= 0)
            H5Dclose(r->d.data[v].ds);
        free(r->ob[v]);
    }
    for (size_t k = 0; k < 1 + NVAR; k++)
        if (r->d.grp[k] >= 0)
            H5Gclose(r->d.grp[k]);
}

/* Opens path read-only, quietly; err says why not. */
static hid_t open_quiet(const char *path, char *err, size_t errlen)
{
    /* A FIFO or a device under a state file's name would block HDF5's
       open, or feed it without end. */
    struct stat sb;
    const char *why = stat(path, &sb)        ? strerror(errno)
                      : !S_ISREG(sb.st_mode) ? "not a regular file"
                                             : NULL;
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        snprintf(err, errlen,
                 "%s: not an HDF5 file (foreign format, or damaged at its "
                 "start)",
                 path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fail(err, errlen, path, "HDF5 cannot open it (truncated or corrupt)");
    return f;
}

/* n against the file's size: every task takes min_task_bytes in it. */
static int check_count(reader *r, uint64_t n)
{
    struct stat st;
    if (stat(r->path, &st)) {
        snprintf(r->err, r->errlen, "%s: %s", r->path, strerror(errno));
        return TF_EIO;
    }
    r->unclaimed = (uint64_t)st.st_size;
    if (n > r->unclaimed / min_task_bytes())
        return corrupt(r,
                       "claims %" PRIu64 " tasks, more than its %" PRIu64
                       " bytes can hold",
                       n, r->unclaimed);
    return 0;
}

int tf_ck_snap_read(const char *path, tf_ck_snap *out, char *err, size_t errlen)
{
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    tf_ck_snap s;
    memset(&s, 0, sizeof s);
    reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.err = err;
    r.errlen = errlen;
    dsets_init(&r.d);
    int rc = TF_EIO;
    hid_t f = open_quiet(path, err, errlen);
    if (f >= 0)
        rc = read_meta(f, path, &s.meta, &s.n, err, errlen);
    if (!rc)
        rc = check_count(&r, s.n);
    if (!rc)
        rc = open_all(&r, f, s.n);
    /* Every size is now bounded by the file's. */
    if (!rc)
        rc = alloc_blocks(&r, s.n);
    if (!rc)
        rc = read_data(&r, &s);
    if (!rc)
        rc = scan(&r, &s); /* verify */
    if (!rc)
        rc = alloc(&r, (void **)&s.task, s.n, sizeof *s.task, "the tasks");
    if (!rc)
        rc = scan(&r, &s); /* build */
    close_reader(&r);
    if (f >= 0 && H5Fclose(f) < 0 && !rc)
        rc = fail(err, errlen, path, "cannot close");
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    if (rc) {
        tf_ck_snap_free(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int tf_ck_snap_read_meta(const char *path, tf_ck_meta *m)
{
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[256];
    uint64_t n;
    hid_t f = open_quiet(path, err, sizeof err);
    int rc = f >= 0 ? read_meta(f, path, m, &n, err, sizeof err) : TF_EIO;
    if (f >= 0)
        H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    return rc;
}

void tf_ck_snap_free(tf_ck_snap *s)
{
    free(s->task);
    for (size_t v = 0; v < NVAR; v++)
        free(s->bytes[v]);
    memset(s, 0, sizeof *s);
}

void tf_ck_no_exit_cleanup(void)
{
    H5dont_atexit();
}
