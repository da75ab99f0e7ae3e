/* HDF5 snapshots: writing a generation in bounded blocks, reading one back with every check (format, version, sizes, checksums). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#define BLOCK 65536           /* tasks gathered from the getter per write */
#define DATA_CHUNK (1u << 20) /* largest chunk of a packed data array, bytes */

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
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT,
                                       H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return ok ? 0 : -1;
}

static int put_str(hid_t obj, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t n = strlen(s);
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

/* A string attribute of any fixed length into buf, NUL-terminated. */
static int get_str(hid_t obj, const char *name, char *buf, size_t len)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        char *tmp = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(ft);
        if (tmp && mt >= 0 && H5Aread(a, mt, tmp) >= 0) {
            snprintf(buf, len, "%s", tmp);
            rc = 0;
        }
        if (mt >= 0)
            H5Tclose(mt);
        free(tmp);
    }
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct wds {
    hid_t ds;
    uint32_t crc;
    uint64_t len; /* elements written */
} wds;

static hid_t create_ds(hid_t loc, const char *name, hid_t ftype, uint64_t n,
                       uint64_t chunk)
{
    hsize_t dims = n, maxd = H5S_UNLIMITED, ch = chunk ? chunk : 1;
    hid_t sp = H5Screate_simple(1, &dims, &maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &ch) >= 0)
        ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    return ds;
}

/* Appends cnt elements at w->len, growing the dataset if needed. */
static int append(wds *w, hid_t mtype, size_t esize, const void *buf,
                  uint64_t cnt, bool grow)
{
    if (!cnt)
        return 0;
    hsize_t off = w->len, c = cnt, end = w->len + cnt;
    if (grow && H5Dset_extent(w->ds, &end) < 0)
        return -1;
    hid_t fs = H5Dget_space(w->ds);
    hid_t ms = H5Screate_simple(1, &c, NULL);
    int ok = fs >= 0 && ms >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &c, NULL) >=
                 0 &&
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
    hid_t file, grp[1 + NVAR];
    wds fix[NFIX], off[NVAR], data[NVAR];
    uint8_t *col[NFIX];       /* one block of each fixed column */
    uint64_t *offs[NVAR];     /* one block of each family's offsets */
    bbuf bytes[NVAR];         /* one block of each family's data */
} writer;

static int write_meta(writer *w, const tf_ck_meta *m, uint64_t n)
{
    hid_t f = w->file;
    uint32_t fv = TF_CK_FORMAT;
    if (put_str(f, "format", FORMAT_NAME) ||
        PUT_U(f, "format_version", &fv, 4) ||
        put_str(f, "taskfarm_version", m->version) ||
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

/* Equal chunks of at most BLOCK entries: no half-empty last chunk. */
static uint64_t chunk_for(uint64_t n)
{
    uint64_t chunks = (n + BLOCK - 1) / BLOCK;
    return chunks ? (n + chunks - 1) / chunks : 1;
}

static int create_all(writer *w, uint64_t n)
{
    uint64_t chunk = chunk_for(n);
    for (size_t g = 0; g < 1 + NVAR; g++) {
        w->grp[g] = H5Gcreate2(w->file, groups[g], H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT);
        if (w->grp[g] < 0)
            return fail(w->err, w->errlen, w->path, "cannot create /%s",
                        groups[g]);
    }
    for (size_t c = 0; c < NFIX; c++) {
        w->fix[c].ds = create_ds(w->grp[0], fixcols[c].name,
                                 file_type(fixcols[c].size, fixcols[c].sgn),
                                 n, chunk);
        if (w->fix[c].ds < 0)
            return fail(w->err, w->errlen, w->path, "cannot create /task/%s",
                        fixcols[c].name);
    }
    for (size_t v = 0; v < NVAR; v++) {
        w->off[v].ds = create_ds(w->grp[1 + v], "offsets", H5T_STD_U64LE,
                                 n + 1, chunk_for(n + 1));
        if (w->off[v].ds < 0)
            return fail(w->err, w->errlen, w->path,
                        "cannot create /%s/offsets", varcols[v].group);
    }
    return 0;
}

/* The data arrays are created once the first block shows how big a chunk
   fits: a small state gets one small chunk, a large one 1 MiB chunks. */
static int create_data(writer *w, size_t v, uint64_t first)
{
    uint64_t max = DATA_CHUNK / varcols[v].elem;
    w->data[v].ds = create_ds(w->grp[1 + v], "data",
                              varcols[v].elem == 8 ? H5T_STD_U64LE
                                                   : H5T_STD_U8LE,
                              0, first < max ? first : max);
    if (w->data[v].ds < 0)
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
            w->offs[v][k] = w->data[v].len + w->bytes[v].len / el;
            if (bytes && bbuf_add(&w->bytes[v],
                                  field_ptr(&t, varcols[v].ptr_off), bytes)) {
                snprintf(w->err, w->errlen, "%s: out of memory", w->path);
                return TF_ENOMEM;
            }
        }
    }
    for (size_t c = 0; c < NFIX; c++)
        if (append(&w->fix[c], mem_type(fixcols[c].size, fixcols[c].sgn),
                   fixcols[c].size, w->col[c], m, false))
            return fail(w->err, w->errlen, w->path, "cannot write /task/%s",
                        fixcols[c].name);
    for (size_t v = 0; v < NVAR; v++) {
        size_t el = varcols[v].elem, cnt = w->bytes[v].len / el;
        int rc = append(&w->off[v], H5T_NATIVE_UINT64, 8, w->offs[v], m,
                        false);
        if (!rc && w->data[v].ds < 0)
            rc = create_data(w, v, cnt);
        if (!rc)
            rc = append(&w->data[v], data_mtype(v), el, w->bytes[v].p, cnt,
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
        if (w->data[v].ds < 0 && create_data(w, v, 1))
            return TF_EIO;
        if (append(&w->off[v], H5T_NATIVE_UINT64, 8, &w->data[v].len, 1,
                   false))
            return fail(w->err, w->errlen, w->path,
                        "cannot write /%s/offsets", varcols[v].group);
    }
    for (size_t c = 0; c < NFIX; c++)
        if (PUT_U(w->fix[c].ds, "crc32c", &w->fix[c].crc, 4))
            return fail(w->err, w->errlen, w->path, "cannot write checksums");
    for (size_t v = 0; v < NVAR; v++)
        if (PUT_U(w->off[v].ds, "crc32c", &w->off[v].crc, 4) ||
            PUT_U(w->data[v].ds, "crc32c", &w->data[v].crc, 4))
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
        rc = close_ds(w, w->fix[c].ds, rc);
        free(w->col[c]);
    }
    for (size_t v = 0; v < NVAR; v++) {
        rc = close_ds(w, w->off[v].ds, rc);
        rc = close_ds(w, w->data[v].ds, rc);
        free(w->offs[v]);
        free(w->bytes[v].p);
    }
    for (size_t g = 0; g < 1 + NVAR; g++)
        if (w->grp[g] >= 0 && H5Gclose(w->grp[g]) < 0 && !rc)
            rc = fail(w->err, w->errlen, w->path, "cannot close a group");
    return rc;
}

/* The core driver's whole file, copied out of HDF5 before it is closed. */
static int take_image(writer *w, void **image, size_t *image_len)
{
    if (H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0)
        return fail(w->err, w->errlen, w->path, "cannot flush");
    ssize_t n = H5Fget_file_image(w->file, NULL, 0);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf) {
        snprintf(w->err, w->errlen, "%s: out of memory for the file image",
                 w->path);
        return TF_ENOMEM;
    }
    if (H5Fget_file_image(w->file, buf, (size_t)n) != n) {
        free(buf);
        return fail(w->err, w->errlen, w->path, "cannot get the file image");
    }
    *image = buf;
    *image_len = (size_t)n;
    return 0;
}

int tf_ck_snap_write(const char *path, const tf_ck_meta *m, uint64_t n,
                     tf_ck_get_fn get, void *user, bool in_memory,
                     void **image, size_t *image_len, char *err,
                     size_t errlen)
{
    writer w;
    memset(&w, 0, sizeof w);
    w.path = path;
    w.err = err;
    w.errlen = errlen;
    w.file = -1;
    for (size_t g = 0; g < 1 + NVAR; g++)
        w.grp[g] = -1;
    for (size_t c = 0; c < NFIX; c++)
        w.fix[c].ds = -1;
    for (size_t v = 0; v < NVAR; v++)
        w.off[v].ds = w.data[v].ds = -1;
    uint64_t blk = n < BLOCK ? (n ? n : 1) : BLOCK;
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
    void *img = NULL;
    size_t img_len = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        (in_memory ? H5Pset_fapl_core(fapl, 64u << 20, 0)
                   : H5Pset_fapl_sec2(fapl)) < 0)
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
    for (uint64_t i = 0; !rc && i < n; i += BLOCK)
        rc = write_block(&w, i, n - i < BLOCK ? n - i : BLOCK, get, user);
    if (!rc)
        rc = finish(&w);
    rc = close_all(&w, rc);
    if (!rc && in_memory)
        rc = take_image(&w, &img, &img_len);
    if (w.file >= 0 && H5Fclose(w.file) < 0 && !rc)
        rc = fail(err, errlen, path, "cannot close");
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    if (rc) {
        free(img);
        if (!in_memory)
            remove(path);
        return rc;
    }
    if (in_memory) {
        *image = img;
        *image_len = img_len;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

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
        snprintf(err, errlen, "%s: attribute '%s' missing or unreadable "
                 "(corrupt)", path, bad);
        return TF_EIO;
    }
    return 0;
}

/*
 * Reads dataset grp/name whole into a new buffer (*out), checking that it
 * is 1-D with want entries (UINT64_MAX: any; the count goes to *count) and
 * that its bytes match its crc32c attribute.
 */
static int read_ds(hid_t g, const char *grp, const char *name, hid_t mtype,
                   size_t esize, uint64_t want, void **out, uint64_t *count,
                   const char *path, char *err, size_t errlen)
{
    hid_t ds = H5Lexists(g, name, H5P_DEFAULT) > 0
                   ? H5Dopen2(g, name, H5P_DEFAULT)
                   : -1;
    if (ds < 0)
        return fail(err, errlen, path, "dataset /%s/%s missing or unreadable "
                    "(corrupt)", grp, name);
    int rc = 0;
    void *buf = NULL;
    hsize_t dims = 0;
    hid_t sp = H5Dget_space(ds);
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, &dims, NULL) != 1)
        rc = fail(err, errlen, path, "/%s/%s is not a 1-D dataset (corrupt)",
                  grp, name);
    else if (want != UINT64_MAX && dims != want) {
        snprintf(err, errlen,
                 "%s: /%s/%s has %" PRIu64 " entries, expected %" PRIu64
                 " (corrupt)",
                 path, grp, name, (uint64_t)dims, want);
        rc = TF_EIO;
    } else if (!(buf = malloc(dims ? dims * esize : 1))) {
        snprintf(err, errlen, "%s: out of memory for /%s/%s", path, grp,
                 name);
        rc = TF_ENOMEM;
    } else if (dims && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               buf) < 0)
        rc = fail(err, errlen, path, "cannot read /%s/%s (corrupt)", grp,
                  name);
    if (!rc) {
        uint32_t crc;
        if (get_attr(ds, "crc32c", H5T_NATIVE_UINT32, &crc)) {
            snprintf(err, errlen, "%s: /%s/%s has no checksum (corrupt)",
                     path, grp, name);
            rc = TF_EIO;
        } else if (crc != tf_ck_crc32c(0, buf, dims * esize)) {
            snprintf(err, errlen, "%s: /%s/%s checksum mismatch (corrupt)",
                     path, grp, name);
            rc = TF_EIO;
        }
    }
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *count = dims;
    return 0;
}

static int read_columns(hid_t f, tf_ck_snap *s, const char *path, char *err,
                        size_t errlen)
{
    int rc = 0;
    uint64_t n = s->n, cnt;
    hid_t g[1 + NVAR];
    for (size_t k = 0; k < 1 + NVAR; k++)
        g[k] = -1;
    for (size_t k = 0; !rc && k < 1 + NVAR; k++) {
        g[k] = H5Lexists(f, groups[k], H5P_DEFAULT) > 0
                   ? H5Gopen2(f, groups[k], H5P_DEFAULT)
                   : -1;
        if (g[k] < 0)
            rc = fail(err, errlen, path, "group /%s missing (corrupt)",
                      groups[k]);
    }
    for (size_t c = 0; !rc && c < NFIX; c++) {
        void *col;
        size_t sz = fixcols[c].size;
        rc = read_ds(g[0], "task", fixcols[c].name,
                     mem_type(sz, fixcols[c].sgn), sz, n, &col, &cnt, path,
                     err, errlen);
        if (rc)
            break;
        for (uint64_t i = 0; i < n; i++)
            memcpy((char *)&s->task[i] + fixcols[c].off,
                   (const char *)col + i * sz, sz);
        free(col);
    }
    for (size_t v = 0; !rc && v < NVAR; v++) {
        void *ov;
        uint64_t *off;
        rc = read_ds(g[1 + v], varcols[v].group, "offsets", H5T_NATIVE_UINT64,
                     8, n + 1, &ov, &cnt, path, err, errlen);
        if (rc)
            break;
        off = ov;
        for (uint64_t i = 0; !rc && i < n; i++)
            if (off[i] > off[i + 1] || off[i + 1] - off[i] > UINT32_MAX)
                rc = TF_EIO;
        if (rc || off[0] != 0) {
            snprintf(err, errlen, "%s: /%s/offsets out of order (corrupt)",
                     path, varcols[v].group);
            free(off);
            rc = TF_EIO;
            break;
        }
        size_t el = varcols[v].elem;
        rc = read_ds(g[1 + v], varcols[v].group, "data", data_mtype(v), el,
                     off[n], &s->bytes[v], &cnt, path, err, errlen);
        for (uint64_t i = 0; !rc && i < n; i++) {
            const void *p = (const char *)s->bytes[v] + off[i] * el;
            uint32_t len = (uint32_t)(off[i + 1] - off[i]);
            memcpy((char *)&s->task[i] + varcols[v].ptr_off, &p, sizeof p);
            memcpy((char *)&s->task[i] + varcols[v].len_off, &len, sizeof len);
        }
        free(off);
    }
    for (size_t k = 0; k < 1 + NVAR; k++)
        if (g[k] >= 0)
            H5Gclose(g[k]);
    return rc;
}

/* Opens path read-only, quietly; err says why not. */
static hid_t open_quiet(const char *path, char *err, size_t errlen)
{
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

int tf_ck_snap_read(const char *path, tf_ck_snap *out, char *err,
                    size_t errlen)
{
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    tf_ck_snap s;
    memset(&s, 0, sizeof s);
    int rc = TF_EIO;
    hid_t f = open_quiet(path, err, errlen);
    if (f >= 0)
        rc = read_meta(f, path, &s.meta, &s.n, err, errlen);
    if (!rc && !(s.task = calloc(s.n ? s.n : 1, sizeof *s.task))) {
        snprintf(err, errlen, "%s: out of memory for %" PRIu64 " tasks", path,
                 s.n);
        rc = TF_ENOMEM;
    }
    if (!rc)
        rc = read_columns(f, &s, path, err, errlen);
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
