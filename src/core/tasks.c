/* Rank 0's task table: records beside the scheduler, adding tasks all or nothing, ids, outcomes. */
#include "tasks.h"

#include <stdlib.h>

int tf_tasks_init(tf_tasks *tt, int retries)
{
    memset(tt, 0, sizeof *tt);
    tt->retries = retries;
    tf_idmap_init(&tt->ids);
    return tf_sched_init(&tt->sched);
}

/* Cells a chunk adds (its first links the chunks). */
#define CELLS_PER_CHUNK (TF_TASKS_CHUNK / TF_TASKS_CELL - 1)

/* One more chunk of free cells; false if memory cannot be had. */
static bool add_chunk(tf_tasks *tt)
{
    uint8_t *c = malloc(TF_TASKS_CHUNK);
    if (!c)
        return false;
    memcpy(c, &tt->chunks, sizeof(void *));
    tt->chunks = c;
    for (size_t off = TF_TASKS_CHUNK; (off -= TF_TASKS_CELL) > 0;) {
        memcpy(c + off, &tt->free_cells, sizeof(void *));
        tt->free_cells = c + off;
    }
    tt->ncells_free += CELLS_PER_CHUNK;
    return true;
}

/* A cell for an output of up to TF_TASKS_CELL bytes, or NULL. */
static void *cell_get(tf_tasks *tt)
{
    if (!tt->free_cells && !add_chunk(tt))
        return NULL;
    void *cell = tt->free_cells;
    memcpy(&tt->free_cells, cell, sizeof(void *));
    tt->ncells_free--;
    if (tt->cells_owed)
        tt->cells_owed--;
    return cell;
}

/*
 * A task was added: it will likely want a cell for its result. Chunks are
 * cut now, while the app submits, and not when results come in: a chunk's
 * first writes cost 16 page faults, ~10 us each on a VM, and rank 0
 * taking them mid-run stalled every core waiting for it (np 1 with 2
 * slots, 2,048 tasks of 1 us: ~19 faults a run, 0.2 ms of a 2 ms run).
 * At most TF_TASKS_CELLS_AHEAD cells wait so: tasks whose results are
 * bigger, or none, do not make rank 0 hold more than that for nothing.
 */
static void cells_ahead(tf_tasks *tt)
{
    if (tt->cells_owed < TF_TASKS_CELLS_AHEAD)
        tt->cells_owed++;
    if (tt->ncells_free < tt->cells_owed)
        (void)add_chunk(tt); /* not now: cell_get tries again */
}

/* Free an output's bytes, a cell or a block. */
static void free_out(tf_tasks *tt, tf_trec *r)
{
    if (r->oflags & TF_OUT_CELL) {
        memcpy(r->out, &tt->free_cells, sizeof(void *));
        tt->free_cells = r->out;
        tt->ncells_free++;
    } else {
        free(r->out);
    }
    r->oflags &= (uint8_t)~TF_OUT_CELL;
    r->out = NULL;
}

void tf_tasks_free(tf_tasks *tt)
{
    for (uint32_t t = 0; t < tt->sched.dag.n; t++) {
        free(tt->rec[t].req);
        free_out(tt, &tt->rec[t]); /* the chunks go below */
    }
    while (tt->chunks) {
        void *next;
        memcpy(&next, tt->chunks, sizeof next);
        free(tt->chunks);
        tt->chunks = next;
    }
    free(tt->rec);
    tf_idmap_free(&tt->ids);
    tf_sched_free(&tt->sched);
    memset(tt, 0, sizeof *tt);
}

uint32_t tf_tasks_index_of(const tf_tasks *tt, uint64_t gid)
{
    if (gid >> 32)
        return tf_idmap_get(&tt->ids, gid);
    /* Rank 0's own submissions use their index as id; check it is one. */
    if (gid < tt->sched.dag.n && tt->rec[gid].gid == gid)
        return (uint32_t)gid;
    return TF_NONE;
}

int tf_tasks_add(tf_tasks *tt, uint64_t gid, uint32_t fn, int32_t prio,
                 uint16_t cores, int retries, const uint32_t *deps,
                 const uint32_t *parts, uint32_t ndeps, const void *in,
                 uint32_t in_len, unsigned flags, uint32_t *idx)
{
    bool with_parts = false;
    for (uint32_t i = 0; parts && i < ndeps; i++)
        with_parts |= parts[i] != 0;
    tf_sched *s = &tt->sched;
    if (s->dag.n == tt->rcap) {
        uint32_t ncap = tt->rcap ? tt->rcap * 2 : 1024;
        tf_trec *p = realloc(tt->rec, (size_t)ncap * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        tt->rec = p;
        tt->rcap = ncap;
    }
    uint8_t *req = NULL;
    size_t dep_bytes = ((size_t)ndeps * sizeof(uint32_t) * (with_parts ? 2 : 1) +
                        15) / 16 * 16;
    if (ndeps || in_len) {
        req = malloc(dep_bytes + in_len);
        if (!req)
            return TF_ENOMEM;
        if (ndeps)
            memcpy(req, deps, (size_t)ndeps * 4);
        if (with_parts)
            memcpy(req + (size_t)ndeps * 4, parts, (size_t)ndeps * 4);
        if (in_len)
            memcpy(req + dep_bytes, in, in_len);
    }
    if (retries < 0)
        retries = tt->retries;
    uint32_t t, first_edge = s->dag.ne;
    int rc = tf_sched_add_task(s, prio, cores, (uint8_t)retries, &t);
    if (rc)
        goto fail_with_req;
    for (uint32_t i = 0; i < ndeps && !rc; i++)
        rc = tf_sched_add_dep(s, deps[i], t);
    if (!rc && (flags & TF_TASKS_DOOMED))
        rc = tf_sched_doom(s, t);
    if (!rc && (flags & TF_TASKS_NOOP))
        rc = tf_sched_set_noop(s, t);
    /* Room for its id first: once sealed, nothing may fail. */
    if (!rc && gid >> 32)
        rc = tf_idmap_reserve(&tt->ids);
    /* Dependencies are older tasks, so sealing costs a scan of its edges. */
    if (!rc && !tt->batching)
        rc = tf_sched_seal(s, NULL, 0, NULL);
    if (rc)
        goto fail_with_task;
    if (gid >> 32)
        tf_idmap_put(&tt->ids, gid, t); /* reserved: cannot fail */
    else
        gid = t;
    tt->rec[t] = (tf_trec){.gid = gid, .req = req, .fn = fn, .in_len = in_len,
                           .ndeps = ndeps, .rank = -1, .holder = -1, .pin = -1,
                           .oflags = (uint8_t)(((flags & TF_TASKS_KEEP)
                                                    ? TF_OUT_WANT_KEEP
                                                    : 0) |
                                                   (with_parts
                                                        ? TF_REC_DEP_PARTS
                                                        : 0))};
    /* A no-op reads nothing: its dependencies' outputs need not wait for it. */
    for (uint32_t i = 0; i < ndeps && !(flags & TF_TASKS_NOOP); i++)
        tt->rec[deps[i]].uses++;
    tt->data_bytes += dep_bytes + in_len;
    cells_ahead(tt);
    *idx = t;
    return 0;

fail_with_task:
    tf_sched_drop_from(s, t, first_edge); /* this task, not its batch */
fail_with_req:
    free(req);
    return rc;
}

void tf_tasks_drop_held(tf_tasks *tt)
{
    for (uint32_t t = tt->sched.sealed; t < tt->sched.dag.n; t++) {
        tf_trec *r = &tt->rec[t];
        for (uint32_t i = 0;
             i < r->ndeps && !(tt->sched.dag.flags[t] & TF_TF_NOOP); i++)
            tt->rec[tf_tasks_dep(tt, t, i)].uses--;
        tt->data_bytes -= tf_tasks_input_offset(r) + r->in_len;
        free_out(tt, r);
        free(r->req); /* rank 0's own tasks: no dynamic id to forget */
    }
    tf_sched_drop_held(&tt->sched);
}

tf_task_state tf_tasks_public_state(tf_state st)
{
    switch (st) {
    case TF_ST_HELD: return TF_TASK_HELD;
    case TF_ST_PENDING: return TF_TASK_PENDING;
    case TF_ST_READY: return TF_TASK_READY;
    case TF_ST_DISPATCHED:
    case TF_ST_PARKED: return TF_TASK_DISPATCHED;
    case TF_ST_DONE: return TF_TASK_DONE;
    case TF_ST_FAILED: return TF_TASK_FAILED;
    default: return TF_TASK_SKIPPED;
    }
}

void tf_tasks_record(tf_tasks *tt, uint32_t t, int rank, int32_t status,
                     uint64_t start_ns, uint64_t end_ns, uint16_t slot)
{
    tf_trec *r = &tt->rec[t];
    r->status = status;
    r->rank = rank;
    r->start_ns = start_ns;
    r->end_ns = end_ns;
    r->slot = slot;
}

/*
 * The packed form: u32 nparts, u32 zero, then per part u32 len and u32
 * offset of its bytes in the blob (PART_AWAY: held by rec.holder), then
 * the bytes, each at a multiple of ALIGN.
 */
#define PART_AWAY UINT32_MAX
#define ALIGN 16u

static size_t up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static void count_output(tf_tasks *tt, size_t n)
{
    tt->data_bytes += n;
    tt->out_bytes += n;
    if (tt->out_bytes > tt->out_peak)
        tt->out_peak = tt->out_bytes;
}

static void drop_output(tf_tasks *tt, tf_trec *r)
{
    free_out(tt, r);
    tt->data_bytes -= r->out_len;
    tt->out_bytes -= r->out_len;
    r->out_len = 0;
    r->oflags &= (uint8_t)~(TF_OUT_PACKED | TF_OUT_AWAY);
}

int tf_tasks_set_output(tf_tasks *tt, uint32_t t, const tf_outpart *parts,
                        uint32_t nparts, int holder)
{
    tf_trec *r = &tt->rec[t];
    bool away = false, held = false;
    size_t size = up(8 + (size_t)nparts * 8);
    for (uint32_t i = 0; i < nparts; i++) {
        away |= !parts[i].bytes && parts[i].len;
        held |= parts[i].held;
        size += parts[i].bytes ? up(parts[i].len) : 0;
    }
    bool packed = nparts > 1 || away;
    if (!packed)
        size = nparts ? parts[0].len : 0;
    if (size > UINT32_MAX)
        return TF_ERANGE;
    bool cell = !packed && size && size <= TF_TASKS_CELL;
    uint8_t *blob = cell ? cell_get(tt) : size ? malloc(size) : NULL;
    if (size && !blob)
        return TF_ENOMEM;
    if (!packed && size) {
        memcpy(blob, parts[0].bytes, size);
    } else if (packed) {
        uint32_t hdr[2] = {nparts, 0}, off = (uint32_t)up(8 + (size_t)nparts * 8);
        memcpy(blob, hdr, sizeof hdr);
        for (uint32_t i = 0; i < nparts; i++) {
            uint32_t e[2] = {parts[i].len, parts[i].bytes ? off : PART_AWAY};
            memcpy(blob + 8 + (size_t)i * 8, e, sizeof e);
            if (parts[i].bytes) {
                memcpy(blob + off, parts[i].bytes, parts[i].len);
                off += (uint32_t)up(parts[i].len);
            }
        }
    }
    drop_output(tt, r);
    r->out = blob;
    r->out_len = (uint32_t)size;
    count_output(tt, size);
    r->oflags &= (uint8_t)~TF_OUT_GONE;
    r->oflags |= (uint8_t)((packed ? TF_OUT_PACKED : 0) |
                           (away ? TF_OUT_AWAY : 0) | (cell ? TF_OUT_CELL : 0));
    r->holder = held ? holder : -1;
    return 0;
}

void tf_tasks_take_output(tf_tasks *tt, uint32_t t, void *blob, uint32_t len,
                          bool packed)
{
    tf_trec *r = &tt->rec[t];
    drop_output(tt, r);
    r->out = blob;
    r->out_len = len;
    count_output(tt, len);
    r->oflags &= (uint8_t)~TF_OUT_GONE;
    r->oflags |= (uint8_t)(TF_OUT_KEEP | (packed ? TF_OUT_PACKED : 0));
    r->holder = -1;
}

bool tf_tasks_part(const tf_tasks *tt, uint32_t t, uint32_t part,
                   const void **buf, uint32_t *len)
{
    const tf_trec *r = &tt->rec[t];
    *buf = NULL;
    *len = 0;
    if (r->oflags & TF_OUT_GONE)
        return false;
    if (!(r->oflags & TF_OUT_PACKED)) {
        if (part == 0 && r->out_len) {
            *buf = r->out;
            *len = r->out_len;
        }
        return true;
    }
    uint32_t n, e[2];
    memcpy(&n, r->out, 4);
    if (part >= n)
        return true;
    memcpy(e, r->out + 8 + (size_t)part * 8, sizeof e);
    *len = e[0];
    *buf = e[1] == PART_AWAY || !e[0] ? NULL : r->out + e[1];
    return true;
}

uint64_t tf_tasks_output_bytes(const tf_tasks *tt, uint32_t t)
{
    const tf_trec *r = &tt->rec[t];
    if (!(r->oflags & TF_OUT_PACKED))
        return r->out_len;
    uint32_t n, e[2];
    uint64_t sum = 0;
    memcpy(&n, r->out, 4);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(e, r->out + 8 + (size_t)i * 8, sizeof e);
        sum += e[0];
    }
    return sum;
}

void tf_tasks_release(tf_tasks *tt, uint32_t d,
                      void (*away)(void *u, uint32_t d, int holder), void *u)
{
    tf_trec *r = &tt->rec[d];
    if (r->holder >= 0 && away)
        away(u, d, r->holder);
    drop_output(tt, r);
    r->holder = -1;
    r->oflags = (uint8_t)((r->oflags & ~TF_OUT_KEEP) | TF_OUT_GONE);
}

void tf_tasks_ended(tf_tasks *tt, uint32_t t,
                    void (*away)(void *u, uint32_t d, int holder), void *u)
{
    const tf_trec *r = &tt->rec[t];
    for (uint32_t i = 0; i < r->ndeps; i++) {
        uint32_t d = tf_tasks_dep(tt, t, i);
        tf_trec *dr = &tt->rec[d];
        if (!dr->uses || --dr->uses ||
            tt->sched.dag.state[d] != TF_ST_DONE)
            continue;
        if ((dr->oflags & TF_OUT_KEEP) && !(dr->oflags & TF_OUT_AWAY)) {
            /* Rank 0 keeps its copy; the holder's was for the readers. */
            if (dr->holder >= 0 && away)
                away(u, d, dr->holder);
            dr->holder = -1;
            continue;
        }
        tf_tasks_release(tt, d, away, u);
    }
}

void tf_tasks_info(const tf_tasks *tt, uint32_t t, tf_task_info *info)
{
    const tf_trec *r = &tt->rec[t];
    *info = (tf_task_info){
        tf_tasks_public_state((tf_state)tt->sched.dag.state[t]),
        r->status,
        r->rank,
        tt->sched.dag.attempts[t],
        r->start_ns,
        r->end_ns};
}

size_t tf_tasks_bytes(const tf_tasks *tt)
{
    return (size_t)tt->rcap * sizeof *tt->rec + tt->data_bytes;
}

bool tf_tasks_new_failures(tf_tasks *tt)
{
    const tf_sched *s = &tt->sched;
    uint64_t bad = (uint64_t)s->count[TF_ST_FAILED] + s->count[TF_ST_SKIPPED];
    bool more = bad > tt->bad_reported;
    tt->bad_reported = bad;
    return more;
}
