/* Ending an Open MPI launcher that waits for a lost node: a watchdog process per rank that saw a loss. */
#include "launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h> /* fflush */
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { NOT_OURS, HNP, DAEMON };

/* What process pid is (by its name) and when it started (clock ticks). */
static int launcher_kind(pid_t pid, unsigned long long *start)
{
    /* By hand, not snprintf: the watchdog calls this after fork. */
    char path[32] = "/proc/", digits[16], buf[512];
    int nd = 0;
    for (unsigned long v = (unsigned long)pid; nd == 0 || v; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    size_t len = strlen(path);
    while (nd)
        path[len++] = digits[--nd];
    memcpy(path + len, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NOT_OURS;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return NOT_OURS;
    buf[n] = 0;
    /* "pid (comm) state ppid ...": comm may hold spaces, so from the last ')' */
    char *open_ = strchr(buf, '('), *close_ = strrchr(buf, ')');
    if (!open_ || !close_ || close_ < open_)
        return NOT_OURS;
    *close_ = 0;
    const char *comm = open_ + 1;
    /* Field 22 is the start time; the fields after comm begin at field 3. */
    char *p = close_ + 2;
    *start = 0;
    for (int field = 3; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    for (; *p >= '0' && *p <= '9'; p++)
        *start = *start * 10 + (unsigned long long)(*p - '0');
    if (!strcmp(comm, "mpirun") || !strcmp(comm, "orterun") ||
        !strcmp(comm, "mpiexec"))
        return HNP;
    return !strcmp(comm, "orted") ? DAEMON : NOT_OURS;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && ts.tv_nsec + ts.tv_sec)
        ;
}

const char *tf_launcher_release(int grace_ms)
{
    pid_t parent = getppid();
    unsigned long long start;
    int kind = launcher_kind(parent, &start);
    if (kind == NOT_OURS)
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid > 0) /* this rank goes on to exit */
        return kind == HNP ? "mpirun" : "orted";
    /*
     * The watchdog: its own session (a signal to the rank's group is not
     * for it) and none of the rank's files, above all not the pipes of
     * the launcher's output forwarding, which would keep the launcher
     * waiting for their end. Only async-signal-safe calls from here on:
     * the parent may have had threads.
     */
    setsid();
    for (int fd = 0; fd < 1024; fd++)
        close(fd);
    unsigned long long now;
    for (long waited = 0; waited < grace_ms; waited += 50) {
        if (launcher_kind(parent, &now) != kind || now != start)
            _exit(0); /* it ended by itself */
        nap_ms(50);
    }
    if (launcher_kind(parent, &now) == kind && now == start) {
        /*
         * mpirun: SIGKILL. Its own ways out wait for the lost daemon too:
         * SIGTERM (or one SIGINT) begins an abort that waits for it; a
         * second SIGINT forces the exit, but crashed mpirun (SIGSEGV in
         * PMIx_Finalize) when it had begun an abort itself (without
         * --enable-recovery). Its daemons on the live nodes see it gone
         * and end what runs there. orted: SIGTERM, which it handles by
         * ending its processes and itself.
         */
        kill(parent, kind == HNP ? SIGKILL : SIGTERM);
    }
    _exit(0);
}
