/* OUTDIR/joblog.tsv: one row per ended attempt in GNU parallel's --joblog columns, and an earlier run's success rows for --resume. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "farm.h"

/*
 * One joblog row per finished attempt, in GNU parallel's --joblog columns,
 * so tools written for it read ours.
 */
int cli_joblog_row(cli_joblog *jl, const tf_run_event *ev, unsigned line,
                   const char *host, const char *cmd)
{
    shell_out so = {-1, 0, 0, 0, 0, 0};
    uint64_t t[2] = {ev->start_ns, ev->end_ns};
    if (ev->output_len >= sizeof so)
        memcpy(&so, ev->output, sizeof so);
    else
        so.exitval = ev->status; /* the runtime's own code */
    /* A command adopted after a take-over: its own times, not its task's. */
    if (so.times && ev->output_len >= shell_out_text(&so))
        memcpy(t, (const char *)ev->output + sizeof so, sizeof t);
    /*
     * Line-buffered: the row reaches the file here, so a full disk shows
     * now, not at the end (a row lost there would not come back).
     */
    errno = 0;
    if (fprintf(jl->f, "%u\t%s\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s\n", line, host,
                t[0] / 1e9, (t[1] - t[0]) / 1e9,
                so.exitval, so.signal, cmd) < 0 ||
        ferror(jl->f))
        return errno ? errno : EIO;
    return 0;
}

static int cmp_jl(const void *a, const void *b)
{
    const jl_done *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->cmd_key < y->cmd_key ? -1 : x->cmd_key > y->cmd_key;
}

/*
 * The success rows (exit 0, no signal) of an earlier joblog into jl->done.
 * Rows that do not parse, the header and a last row torn by a kill (no
 * newline) are skipped: a task without a whole success row runs again.
 */
static int read_done(const char *path, cli_joblog *jl)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : errno;
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    int e = 0;
    while (!e && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break;
        line[--len] = '\0';
        unsigned seq;
        double start, runtime;
        int exitval, sig, cmd_at = -1;
        if (sscanf(line, "%u\t%*[^\t]\t%lf\t%lf\t%*d\t%*d\t%d\t%d\t%n", &seq,
                   &start, &runtime, &exitval, &sig, &cmd_at) != 5 ||
            cmd_at < 0 || exitval || sig)
            continue;
        if (jl->ndone == alloc) {
            size_t c = alloc ? 2 * alloc : 1024;
            jl_done *nj = realloc(jl->done, c * sizeof *nj);
            if (!nj) {
                e = ENOMEM;
                break;
            }
            jl->done = nj;
            alloc = c;
        }
        jl->done[jl->ndone++] = (jl_done){
            seq, tf_key(NULL, 0, line + cmd_at, (size_t)(len - cmd_at)),
            (uint64_t)(start * 1e9), (uint64_t)((start + runtime) * 1e9)};
    }
    if (!e && ferror(f))
        e = errno ? errno : EIO;
    free(line);
    fclose(f);
    if (jl->ndone)
        qsort(jl->done, jl->ndone, sizeof *jl->done, cmp_jl);
    return e;
}

/*
 * Cut a last row torn by a kill or a full disk (no newline) off the file.
 * It never counts (read_done stops before it: its task runs again, or gets
 * its row back from the state), and ended with a newline it would stay a
 * malformed row for every reader of the joblog. *empty: nothing whole is
 * left, not even the header. Returns 0 or an errno value.
 */
static int cut_torn(const char *path, bool *empty)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e;
    }
    char buf[4096];
    off_t end = st.st_size;
    int e = 0;
    while (end > 0) { /* back to just after the last newline */
        size_t n = end < (off_t)sizeof buf ? (size_t)end : sizeof buf;
        off_t at = end - (off_t)n;
        if (pread(fd, buf, n, at) != (ssize_t)n) {
            e = errno ? errno : EIO;
            break;
        }
        size_t i = n;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        end = at + (off_t)i;
        if (i > 0)
            break;
    }
    if (!e && end != st.st_size && ftruncate(fd, end))
        e = errno;
    if (close(fd) && !e)
        e = errno;
    *empty = end == 0;
    return e;
}

int cli_joblog_open(cli_joblog *jl, const char *dir, bool resume,
                    const char **what)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/joblog.tsv", dir);
    struct stat st;
    bool earlier = stat(path, &st) == 0;
    memset(jl, 0, sizeof *jl);
    *what = "read";
    int e = resume && earlier ? read_done(path, jl) : 0;
    bool empty = !earlier;
    if (!e && resume && earlier) {
        *what = "repair";
        e = cut_torn(path, &empty);
    }
    if (e)
        return e;
    *what = "open";
    jl->f = fopen(path, resume ? "a" : "w");
    if (!jl->f)
        return errno;
    /*
     * A row reaches the file when it is written: the journal makes a
     * finished task durable within 50 ms, and a resume does not run it
     * again, so a row still in a stdio buffer when rank 0 is killed would
     * be lost for good. One write per task is nothing next to its spawn.
     */
    setvbuf(jl->f, NULL, _IOLBF, 0);
    if (!resume || empty)
        fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\t"
              "Signal\tCommand\n",
              jl->f);
    return 0;
}

bool cli_joblog_was_done(const cli_joblog *jl, unsigned line, const char *cmd,
                         size_t cmd_len)
{
    if (!jl->ndone)
        return false;
    jl_done want = {line, tf_key(NULL, 0, cmd, cmd_len), 0, 0};
    return bsearch(&want, jl->done, jl->ndone, sizeof *jl->done, cmp_jl) !=
           NULL;
}

int cli_joblog_flush(cli_joblog *jl)
{
    if (!jl->f)
        return 0;
    return fflush(jl->f) != 0 || ferror(jl->f) ? (errno ? errno : EIO) : 0;
}

void cli_joblog_close(cli_joblog *jl)
{
    if (jl->f)
        fclose(jl->f);
    free(jl->done);
    memset(jl, 0, sizeof *jl);
}
