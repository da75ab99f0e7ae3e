/* Unit tests of the wire codec: round trips, overruns, and the layouts against docs/architecture.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "check.h"
#include "wire.h"

static const char *doc_path = "docs/architecture.md";

/* Every record round-trips, and its size is the sum of its fields. */
static void test_round_trip(void)
{
    tf_buf b = {0};
    CHECK_RC(tf_buf_reserve(&b, 256), 0);
    tf_wire_task t = {7, 3, 0x123456789ull, 4, 2, 0, 5, 2};
    tf_wire_put_task(&b, &t);
    CHECK_EQ_U(b.n, TF_WIRE_TASK_SIZE);
    CHECK_EQ_U(TF_WIRE_TASK_SIZE, 4 + 4 + 8 + 2 + 1 + 1 + 4 + 4);
    tf_buf_put(&b, "hello", 5);
    tf_wire_put_output(&b, "xy", 2);
    tf_wire_put_anchor(&b, 99);
    tf_wire_done d = {TF_REC_DONE, 7, 2, -3, 10, 20, 1, 0};
    tf_wire_put_done(&b, &d);
    CHECK_EQ_U(TF_WIRE_DONE_SIZE, 1 + 4 + 1 + 4 + 8 + 8 + 2 + 4);

    tf_rd r = tf_rd_make(b.p, b.n);
    tf_wire_task t2;
    CHECK_TRUE(tf_wire_get_task(&r, &t2));
    CHECK_EQ_U(t2.index, 7);
    CHECK_EQ_U(t2.id, 0x123456789ull);
    CHECK_EQ_U(t2.cores, 4);
    CHECK_EQ_U(t2.ndeps, 2);
    CHECK_TRUE(memcmp(tf_rd_take(&r, t2.input_len), "hello", 5) == 0);
    const void *buf;
    uint32_t len, anchor;
    CHECK_TRUE(tf_wire_get_output(&r, &buf, &len, &anchor));
    CHECK_EQ_U(len, 2);
    CHECK_EQ_U(anchor, TF_WIRE_ANCHOR);
    CHECK_TRUE(memcmp(buf, "xy", 2) == 0);
    CHECK_TRUE(tf_wire_get_output(&r, &buf, &len, &anchor));
    CHECK_EQ_U(anchor, 99);
    CHECK_EQ_U(len, 0);
    CHECK_EQ_U(tf_rd_peek_u8(&r), TF_REC_DONE);
    tf_wire_done d2;
    CHECK_TRUE(tf_wire_get_done(&r, &d2));
    CHECK_EQ_I(d2.status, -3);
    CHECK_EQ_U(d2.end_ns, 20);
    CHECK_FALSE(tf_rd_more(&r));

    /* skip_task walks exactly one record with its input and entries. */
    r = tf_rd_make(b.p, b.n);
    size_t nd = 0;
    CHECK_TRUE(tf_wire_skip_task(&r, &nd));
    CHECK_EQ_U(nd, 2);
    CHECK_EQ_U(r.off, b.n - TF_WIRE_DONE_SIZE);
    tf_buf_free(&b);
}

/* A record cut short at any byte is an overrun, never a read past the end. */
static void test_truncated(void)
{
    tf_buf b = {0};
    CHECK_RC(tf_buf_reserve(&b, 128), 0);
    tf_wire_task t = {1, 0, 1, 1, 1, 0, 3, 1};
    tf_wire_put_task(&b, &t);
    tf_buf_put(&b, "abc", 3);
    tf_wire_put_output(&b, "defg", 4);
    for (size_t cut = 0; cut < b.n; cut++) {
        tf_rd r = tf_rd_make(b.p, cut);
        size_t nd = 0;
        if (!CHECK_FALSE(tf_wire_skip_task(&r, &nd)))
            break;
    }
    tf_rd r = tf_rd_make(b.p, b.n);
    size_t nd = 0;
    CHECK_TRUE(tf_wire_skip_task(&r, &nd));
    /* A dependency claiming more bytes than the message holds. */
    uint32_t huge = 0x7fffffff;
    memcpy(b.p + TF_WIRE_TASK_SIZE + 3, &huge, 4);
    r = tf_rd_make(b.p, b.n);
    CHECK_FALSE(tf_wire_skip_task(&r, &nd));
    tf_buf_free(&b);
}

/* The field list of record `name` in the doc's table, or NULL. */
static char *doc_fields(const char *text, const char *name, int *size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\n| %s | ", name);
    const char *row = strstr(text, pat);
    if (!row)
        return NULL;
    row += strlen(pat);
    *size = atoi(row);
    const char *a = strchr(row, '`'), *z = a ? strchr(a + 1, '`') : NULL;
    const char *eol = strchr(row, '\n');
    if (!a || !z || (eol && z > eol))
        return NULL;
    size_t n = (size_t)(z - a - 1);
    char *f = malloc(n + 1);
    if (f) {
        memcpy(f, a + 1, n);
        f[n] = 0;
    }
    return f;
}

/*
 * Whole messages: a batch is validated and counted before use; a report
 * is read record by record; each refuses what is cut short or unknown.
 */
static void test_messages(void)
{
    tf_buf b = {0};
    CHECK_RC(tf_buf_reserve(&b, 256), 0);
    tf_wire_put_batch(&b, &(tf_wire_batch){TF_WIRE_DRY});
    tf_wire_put_task(&b, &(tf_wire_task){1, 0, 11, 1, 1, 0, 0, 0});
    tf_wire_put_task(&b, &(tf_wire_task){2, 0, 12, 1, 1, 0, 2, 2});
    tf_buf_put(&b, "in", 2);
    tf_wire_put_output(&b, "out", 3);
    tf_wire_put_anchor(&b, 1);
    tf_wire_batch hd;
    size_t nt, nd;
    CHECK_TRUE(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd));
    CHECK_EQ_U(hd.flags, TF_WIRE_DRY);
    CHECK_EQ_U(nt, 2);
    CHECK_EQ_U(nd, 2);
    for (size_t cut = 1; cut < b.n; cut++)
        if (!CHECK_FALSE(tf_wire_scan_batch(b.p, cut, &hd, &nt, &nd) &&
                         cut != TF_WIRE_BATCH_SIZE &&
                         cut != TF_WIRE_BATCH_SIZE + TF_WIRE_TASK_SIZE))
            break;
    /* An anchor to index TF_WIRE_ANCHOR would read as an empty output. */
    tf_wire_put_task(&b, &(tf_wire_task){3, 0, 13, 1, 1, 0, 0, 1});
    tf_wire_put_anchor(&b, TF_WIRE_ANCHOR);
    CHECK_FALSE(tf_wire_scan_batch(b.p, b.n, &hd, &nt, &nd));

    b.n = 0;
    tf_wire_put_done(&b, &(tf_wire_done){TF_REC_DONE, 4, 1, 0, 1, 2, 0, 3});
    tf_buf_put(&b, "res", 3);
    tf_wire_put_submit(
        &b, &(tf_wire_submit){TF_REC_SUBMIT, 9, 11, 0, 0, 1, 0, 1, 2});
    tf_buf_put_u64(&b, 11);
    tf_buf_put(&b, "ab", 2);
    tf_wire_put_unrun(&b, &(tf_wire_unrun){TF_REC_UNRUN, 5});
    tf_wire_put_moved(&b, &(tf_wire_moved){TF_REC_MOVED, 6, 1, 2});
    size_t n = b.n;
    tf_rd r = tf_rd_make(b.p, n);
    tf_wire_rec rec;
    uint8_t kinds[4];
    size_t k = 0;
    while (k < 4 && tf_rd_more(&r) && tf_wire_get_rec(&r, &rec))
        kinds[k++] = rec.kind;
    CHECK_TRUE(r.ok);
    CHECK_FALSE(tf_rd_more(&r));
    CHECK_EQ_U(k, 4);
    CHECK_EQ_U(kinds[0], TF_REC_DONE);
    CHECK_EQ_U(kinds[3], TF_REC_MOVED);
    r = tf_rd_make(b.p, n);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_TRUE(memcmp(rec.out, "res", 3) == 0);
    CHECK_TRUE(tf_wire_get_rec(&r, &rec));
    CHECK_EQ_U(rec.u.submit.parent, 11);
    CHECK_TRUE(memcmp(rec.in, "ab", 2) == 0);
    /* An unknown kind, and a record cut short. */
    b.p[0] = 9;
    r = tf_rd_make(b.p, n);
    CHECK_FALSE(tf_wire_get_rec(&r, &rec));
    b.p[0] = TF_REC_DONE;
    r = tf_rd_make(b.p, TF_WIRE_DONE_SIZE + 2);
    CHECK_FALSE(tf_wire_get_rec(&r, &rec));
    tf_buf_free(&b);
}

/*
 * docs/architecture.md's wire table lists every record with its size and
 * its fields in order, exactly as the codec sends them.
 */
static void test_doc_table(void)
{
    FILE *f = fopen(doc_path, "rb");
    if (!CHECK_MSG(f != NULL, "cannot open %s", doc_path))
        return;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    size_t nl;
    const tf_wire_layout *l = tf_wire_layouts(&nl);
    CHECK_EQ_U(nl, 11);
    for (size_t i = 0; i < nl; i++) {
        int size = -1;
        char *fields = doc_fields(text, l[i].name, &size);
        CHECK_MSG(fields != NULL, "%s: no row for record %s", doc_path,
                  l[i].name);
        if (!fields)
            continue;
        CHECK_MSG(strcmp(fields, l[i].fields) == 0,
                  "%s, record %s: the doc says `%s`, the codec sends `%s`",
                  doc_path, l[i].name, fields, l[i].fields);
        CHECK_MSG(size == l[i].size,
                  "%s, record %s: the doc says %d bytes, the codec %d",
                  doc_path, l[i].name, size, l[i].size);
        free(fields);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        doc_path = argv[1];
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("wire", NULL, NULL);
    CU_add_test(s, "round trips and sizes", test_round_trip);
    CU_add_test(s, "records cut short", test_truncated);
    CU_add_test(s, "whole messages", test_messages);
    CU_add_test(s, "layouts against docs/architecture.md", test_doc_table);
    return check_run();
}
