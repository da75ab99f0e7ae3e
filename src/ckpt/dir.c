/* The state directory: file names, and the generations and journals in it. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_int.h"

void tf_ck_state_path(char *buf, size_t len, const char *dir, uint64_t g)
{
    snprintf(buf, len, "%s/state-%" PRIu64 ".h5", dir, g);
}

void tf_ck_journal_path(char *buf, size_t len, const char *dir, uint64_t j)
{
    snprintf(buf, len, "%s/journal-%" PRIu64 ".tfj", dir, j);
}

/* The number in prefix NUMBER suffix, exactly (no sign, no spaces). */
static bool parse_name(const char *name, const char *prefix, const char *suffix,
                       uint64_t *v)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), ln = strlen(name);
    if (ln <= lp + ls || strncmp(name, prefix, lp) ||
        strcmp(name + ln - ls, suffix))
        return false;
    uint64_t x = 0;
    for (size_t i = lp; i < ln - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(name[i] - '0');
    }
    *v = x;
    return true;
}

static int push(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        uint64_t *b = realloc(*a, c * sizeof *b);
        if (!b)
            return TF_ENOMEM;
        *a = b;
        *cap = c;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int tf_ck_dir_scan(const char *dir, tf_ck_dir *d)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT ? TF_ENOENT : TF_EIO;
    tf_ck_dir r = {0};
    size_t capg = 0, capj = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dp))) {
        uint64_t v;
        if (parse_name(e->d_name, "state-", ".h5", &v))
            rc = push(&r.gen, &r.ngen, &capg, v);
        else if (parse_name(e->d_name, "journal-", ".tfj", &v))
            rc = push(&r.jid, &r.njid, &capj, v);
    }
    closedir(dp);
    if (rc) {
        tf_ck_dir_free(&r);
        return rc;
    }
    if (r.ngen)
        qsort(r.gen, r.ngen, sizeof *r.gen, cmp_u64);
    if (r.njid)
        qsort(r.jid, r.njid, sizeof *r.jid, cmp_u64);
    *d = r;
    return 0;
}

void tf_ck_dir_free(tf_ck_dir *d)
{
    free(d->gen);
    free(d->jid);
    memset(d, 0, sizeof *d);
}

/* A snapshot (state-G.h5 and its .tmp and .damaged forms) or a journal. */
static bool is_state_file(const char *n)
{
    size_t len = strlen(n);
    return (!strncmp(n, "state-", 6) && strstr(n, ".h5")) ||
           (!strncmp(n, "journal-", 8) && len > 4 &&
            !strcmp(n + len - 4, ".tfj"));
}

bool tf_ck_holds_state(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)))
        found = is_state_file(de->d_name);
    closedir(d);
    return found;
}

int tf_ck_remove_state(const char *dir, char *why, size_t len)
{
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT)
        return 0; /* no directory yet: nothing to remove */
    if (!d) {
        int e = errno;
        snprintf(why, len, "%s: %s", dir, strerror(e));
        return e;
    }
    int e = 0;
    struct dirent *de;
    char path[4096];
    while (!e && (de = readdir(d))) {
        if (!is_state_file(de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0) {
            e = errno;
            snprintf(why, len, "%s: %s", path, strerror(e));
        }
    }
    closedir(d);
    return e;
}
