/* A modelled interconnect for the emulated cluster: a user-space switch that holds each frame for a latency and a link rate (this kernel has no netem), and the probes that measure it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Why a switch in user space: `tc qdisc add ... netem` needs the
 * netem qdisc, and the kernel of this machine kind is built without it
 * (CONFIG_NET_SCH_NETEM unset, no modules); of the qdiscs it has (htb,
 * tbf, ingress) none can delay a packet. So bench/cluster.sh stops the
 * cluster's bridge from forwarding between hosts (every port "isolated":
 * the bridge passes nothing from one isolated port to another) and this
 * program forwards instead. It reads every frame a host sends from a
 * packet socket on the host's veth (the end outside the host; packet
 * sockets see a frame before the bridge does), and writes it, when the
 * model says it arrives, to the destination host's veth, which delivers
 * it to that host's eth0. Measured here: the switch alone (latency 0)
 * adds about 40 us a hop to the bridge's 10-20 us, its wake-up.
 *
 * The model: a switch with one full-duplex link of RATE per host and a
 * one-way LATENCY between any two hosts. A frame of B bytes that host i
 * sends at t (the kernel's receive time stamp) leaves i's link at
 * up = max(t, up_free[i]) + B/RATE and reaches host j at
 * max(up + LATENCY, down_free[j] + B/RATE): alone on the network it takes
 * LATENCY + B/RATE, and frames queue behind each other on the sender's
 * link and on the receiver's (two workers sending to rank 0 share rank
 * 0's link, as in the simulator, docs/scaling.md). Frames are TCP's
 * segmentation-offload super-frames (up to 64 KiB): they pass through
 * whole, with their virtio-net header (PACKET_VNET_HDR), so the switch
 * costs two copies per 64 KiB, not per 1.5 KB packet.
 *
 * The switch runs SCHED_FIFO with a 1 ns timer slack when it can, so that
 * it wakes when a frame is due rather than when the shared cores are
 * free: a real network does not wait for the hosts' CPUs. The CPU it uses
 * copying frames is taken from the hosts, which a real NIC would not do;
 * its stop line says how late it was.
 */

static void die(const char *what)
{
    fprintf(stderr, "netdelay: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock of SO_TIMESTAMPNS */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the switch ------------------------------------------------------- */

enum { MAX_PORTS = 32, MAX_MACS = 64, FRAME_MAX = 262144 };

typedef struct frame {
    struct frame *next;
    uint64_t due;   /* when it reaches the destination host */
    uint64_t stamp; /* when it left the source host */
    size_t len;     /* virtio-net header + Ethernet frame */
    unsigned char data[];
} frame;

typedef struct sw_port {
    const char *name;
    int fd;
    uint64_t up_free, down_free; /* when the host's link is free again */
    frame *head, *tail;          /* frames on their way to this host */
} sw_port;

typedef struct sw {
    sw_port p[MAX_PORTS];
    int n;
    uint64_t latency_ns;
    double ns_per_byte; /* 0: no rate limit */
    struct {
        unsigned char mac[6];
        int port;
    } macs[MAX_MACS];
    int nmacs;
    size_t queued, queue_max;
    uint64_t frames, bytes, dropped, late_max, late_sum;
} sw;

static volatile sig_atomic_t stopping;
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int mac_port(const sw *s, const unsigned char *mac)
{
    for (int i = 0; i < s->nmacs; i++)
        if (!memcmp(s->macs[i].mac, mac, 6))
            return s->macs[i].port;
    return -1;
}

static void mac_learn(sw *s, const unsigned char *mac, int port)
{
    for (int i = 0; i < s->nmacs; i++)
        if (!memcmp(s->macs[i].mac, mac, 6)) {
            s->macs[i].port = port;
            return;
        }
    if (s->nmacs < MAX_MACS) {
        memcpy(s->macs[s->nmacs].mac, mac, 6);
        s->macs[s->nmacs++].port = port;
    }
}

static void enqueue(sw *s, int to, const unsigned char *buf, size_t len,
                    uint64_t t, uint64_t up)
{
    size_t wire = len - sizeof(struct virtio_net_hdr);
    sw_port *d = &s->p[to];
    uint64_t ser = (uint64_t)(s->ns_per_byte * (double)wire);
    uint64_t due = up + s->latency_ns;
    if (d->down_free + ser > due)
        due = d->down_free + ser;
    frame *f;
    if (s->queued + len > s->queue_max || !(f = malloc(sizeof *f + len))) {
        s->dropped++; /* a full queue drops, as a switch does */
        return;
    }
    d->down_free = due;
    f->next = NULL;
    f->due = due;
    f->stamp = t;
    f->len = len;
    memcpy(f->data, buf, len);
    if (d->tail)
        d->tail->next = f;
    else
        d->head = f;
    d->tail = f;
    s->queued += len;
}

/* Take every frame waiting on port i (at most 256, then let the others in). */
static void receive(sw *s, int i, unsigned char *buf)
{
    for (int k = 0; k < 256; k++) {
        char ctl[256];
        struct iovec iov = {buf, FRAME_MAX};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        ssize_t n = recvmsg(s->p[i].fd, &m, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                die("recvmsg");
            return;
        }
        size_t hdr = sizeof(struct virtio_net_hdr);
        if ((m.msg_flags & MSG_TRUNC) || (size_t)n < hdr + 14) {
            s->dropped++;
            continue;
        }
        uint64_t t = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            }
        if (!t)
            t = now_ns();
        const unsigned char *eth = buf + hdr;
        mac_learn(s, eth + 6, i);
        size_t wire = (size_t)n - hdr;
        sw_port *src = &s->p[i];
        uint64_t up = (t > src->up_free ? t : src->up_free) +
                      (uint64_t)(s->ns_per_byte * (double)wire);
        src->up_free = up;
        int to = (eth[0] & 1) ? -1 : mac_port(s, eth);
        if (to == i)
            continue; /* for the host itself: not ours to carry */
        if (to >= 0) {
            enqueue(s, to, buf, (size_t)n, t, up);
        } else { /* broadcast, multicast, or not seen yet: everyone else */
            for (int j = 0; j < s->n; j++)
                if (j != i)
                    enqueue(s, j, buf, (size_t)n, t, up);
        }
    }
}

/* Hand every frame that is due to its host; the earliest still waiting. */
static uint64_t deliver(sw *s)
{
    uint64_t next = UINT64_MAX, t = now_ns();
    for (int j = 0; j < s->n; j++) {
        sw_port *d = &s->p[j];
        while (d->head && d->head->due <= t) {
            frame *f = d->head;
            /* A full send buffer: wait a little rather than drop. */
            while (send(d->fd, f->data, f->len, 0) < 0) {
                if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
                    struct timespec ts = {0, 20000};
                    nanosleep(&ts, NULL);
                    continue;
                }
                if (errno == ENETDOWN || errno == ENXIO) {
                    s->dropped++; /* the host's link is cut */
                    break;
                }
                die("send");
            }
            uint64_t late = t - f->due;
            if (late > s->late_max)
                s->late_max = late;
            s->late_sum += late;
            s->frames++;
            s->bytes += f->len - sizeof(struct virtio_net_hdr);
            s->queued -= f->len;
            d->head = f->next;
            if (!d->head)
                d->tail = NULL;
            free(f);
            t = now_ns();
        }
        if (d->head && d->head->due < next)
            next = d->head->due;
    }
    return next;
}

static int open_port(const char *name)
{
    unsigned idx = if_nametoindex(name);
    if (!idx) {
        fprintf(stderr, "netdelay: no interface '%s'\n", name);
        exit(1);
    }
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (fd < 0)
        die("socket(AF_PACKET)");
    int one = 1, big = 16 << 20;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) ||
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one))
        die("setsockopt");
    /* Bursts of 64 KiB frames: room for them as a NIC's ring would have. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_ll a = {.sll_family = AF_PACKET,
                            .sll_protocol = htons(ETH_P_ALL),
                            .sll_ifindex = (int)idx};
    if (bind(fd, (struct sockaddr *)&a, sizeof a))
        die("bind");
    return fd;
}

/* "50us", "1ms", "0": nanoseconds; "10gbit", "500mbit", "0": bits/s. */
static double parse_unit(const char *v, const char *const *units,
                         const double *mul, int nunits)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || x < 0)
        goto bad;
    if (!*end && x == 0)
        return 0;
    for (int i = 0; i < nunits; i++)
        if (!strcmp(end, units[i]))
            return x * mul[i];
bad:
    fprintf(stderr, "netdelay: bad value '%s'\n", v);
    exit(2);
}

static int run_switch(int argc, char **argv)
{
    static const char *const tu[] = {"ns", "us", "ms", "s"};
    static const double tm[] = {1, 1e3, 1e6, 1e9};
    static const char *const ru[] = {"bit", "kbit", "mbit", "gbit"};
    static const double rm[] = {1, 1e3, 1e6, 1e9};
    if (argc < 4) {
        fprintf(stderr, "usage: netdelay switch LATENCY RATE IF...\n");
        return 2;
    }
    static sw s;
    s.latency_ns = (uint64_t)parse_unit(argv[1], tu, tm, 4);
    double rate = parse_unit(argv[2], ru, rm, 4);
    s.ns_per_byte = rate > 0 ? 8e9 / rate : 0;
    s.queue_max = 256u << 20;
    for (int i = 3; i < argc && s.n < MAX_PORTS; i++) {
        s.p[s.n].name = argv[i];
        s.p[s.n++].fd = open_port(argv[i]);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    struct sched_param sp = {.sched_priority = 10};
    const char *rt = "SCHED_FIFO";
    if (sched_setscheduler(0, SCHED_FIFO, &sp))
        rt = "not real-time (SCHED_FIFO refused)";
    unsigned char *buf = malloc(FRAME_MAX);
    if (!buf)
        die("malloc");
    printf("netdelay: switch of %d ports, %s, %s; ready\n", s.n, argv[1], rt);
    fflush(stdout);
    struct pollfd pf[MAX_PORTS];
    for (int i = 0; i < s.n; i++)
        pf[i] = (struct pollfd){.fd = s.p[i].fd, .events = POLLIN};
    while (!stopping) {
        uint64_t next = deliver(&s), t = now_ns();
        struct timespec ts, *tsp = NULL;
        if (next != UINT64_MAX) {
            uint64_t d = next > t ? next - t : 0;
            ts.tv_sec = (time_t)(d / 1000000000u);
            ts.tv_nsec = (long)(d % 1000000000u);
            tsp = &ts;
        }
        int r = ppoll(pf, (nfds_t)s.n, tsp, &waitmask);
        if (r < 0 && errno != EINTR)
            die("ppoll");
        for (int i = 0; r > 0 && i < s.n; i++)
            if (pf[i].revents & POLLIN)
                receive(&s, i, buf);
    }
    fprintf(stderr,
            "netdelay: stop: %llu frames, %.1f MB, %llu dropped, late by "
            "%.1f us on average, %.1f us at most\n",
            (unsigned long long)s.frames, (double)s.bytes / 1e6,
            (unsigned long long)s.dropped,
            s.frames ? (double)s.late_sum / (double)s.frames / 1e3 : 0.0,
            (double)s.late_max / 1e3);
    free(buf);
    return 0;
}

/* ---- probes: UDP round trips, one TCP stream --------------------------- */

static int udp_socket(const char *host, const char *service,
                      struct sockaddr_storage *a, socklen_t *alen)
{
    struct addrinfo hint = {.ai_family = AF_INET,
                            .ai_socktype = SOCK_DGRAM,
                            .ai_flags = host ? 0 : AI_PASSIVE},
                    *res;
    int e = getaddrinfo(host, service, &hint, &res);
    if (e) {
        fprintf(stderr, "netdelay: %s: %s\n", host ? host : "*",
                gai_strerror(e));
        exit(1);
    }
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd < 0)
        die("socket");
    memcpy(a, res->ai_addr, res->ai_addrlen);
    *alen = res->ai_addrlen;
    freeaddrinfo(res);
    return fd;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* pong PORT: echo UDP datagrams until "q" or 10 s of silence. */
static int run_pong(const char *service)
{
    struct sockaddr_storage a;
    socklen_t alen;
    int fd = udp_socket(NULL, service, &a, &alen);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, alen))
        die("bind");
    printf("netdelay: pong on %s; ready\n", service);
    fflush(stdout);
    char buf[65536];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            return 0;
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n =
            recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (n == 1 && buf[0] == 'q')
            return 0;
        if (n > 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
    }
}

/* ping HOST PORT COUNT SIZE: round trips of SIZE-byte datagrams. */
static int run_ping(const char *host, const char *service, int count, int size)
{
    struct sockaddr_storage a;
    socklen_t alen;
    int fd = udp_socket(host, service, &a, &alen);
    if (connect(fd, (struct sockaddr *)&a, alen))
        die("connect");
    char *buf = calloc(1, (size_t)size + 1);
    uint64_t *rtt = calloc((size_t)count, sizeof *rtt);
    int got = 0;
    if (!buf || !rtt)
        die("calloc");
    buf[0] = 'p';
    for (int i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        if (send(fd, buf, (size_t)size, 0) < 0)
            die("send");
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue; /* lost: not counted */
        if (recv(fd, buf, (size_t)size, 0) > 0)
            rtt[got++] = now_ns() - t0;
        struct timespec gap = {0, 2000000};
        nanosleep(&gap, NULL); /* one at a time, nothing queued */
    }
    send(fd, "q", 1, 0);
    if (!got) {
        fprintf(stderr, "netdelay: no answer from %s\n", host);
        return 1;
    }
    qsort(rtt, (size_t)got, sizeof *rtt, cmp_u64);
    printf("rtt_min_us %.1f\nrtt_median_us %.1f\nrtt_answered %d of %d\n",
           (double)rtt[0] / 1e3, (double)rtt[got / 2] / 1e3, got, count);
    free(buf);
    free(rtt);
    return 0;
}

static int tcp_socket(const char *host, const char *service, int listening)
{
    struct addrinfo hint = {.ai_family = AF_INET,
                            .ai_socktype = SOCK_STREAM,
                            .ai_flags = listening ? AI_PASSIVE : 0},
                    *res;
    int e = getaddrinfo(host, service, &hint, &res);
    if (e) {
        fprintf(stderr, "netdelay: %s: %s\n", host ? host : "*",
                gai_strerror(e));
        exit(1);
    }
    int fd = socket(res->ai_family, res->ai_socktype, 0), one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listening ? bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1)
                  : connect(fd, res->ai_addr, res->ai_addrlen))
        die(listening ? "bind/listen" : "connect");
    freeaddrinfo(res);
    return fd;
}

/* sink PORT: take one stream to its end, answer one byte. */
static int run_sink(const char *service)
{
    int l = tcp_socket(NULL, service, 1);
    printf("netdelay: sink on %s; ready\n", service);
    fflush(stdout);
    struct pollfd p = {l, POLLIN, 0};
    if (poll(&p, 1, 20000) <= 0)
        return 1;
    int fd = accept(l, NULL, NULL);
    if (fd < 0)
        die("accept");
    static char buf[1 << 16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    if (write(fd, "k", 1) != 1)
        die("write");
    close(fd);
    return 0;
}

/* stream HOST PORT MB: MB megabytes over TCP, Mbit/s until the sink has them
 * all. */
static int run_stream(const char *host, const char *service, int mb)
{
    int fd = -1;
    for (int i = 0; i < 50 && fd < 0;
         i++) { /* the sink may still be starting */
        struct addrinfo hint = {.ai_family = AF_INET,
                                .ai_socktype = SOCK_STREAM},
                        *res;
        if (getaddrinfo(host, service, &hint, &res))
            break;
        fd = socket(res->ai_family, res->ai_socktype, 0);
        if (connect(fd, res->ai_addr, res->ai_addrlen)) {
            close(fd);
            fd = -1;
            usleep(100000);
        }
        freeaddrinfo(res);
    }
    if (fd < 0)
        die("connect");
    static char buf[1 << 16];
    uint64_t total = (uint64_t)mb * 1000000u, sent = 0, t0 = now_ns();
    while (sent < total) {
        size_t k =
            total - sent < sizeof buf ? (size_t)(total - sent) : sizeof buf;
        ssize_t n = write(fd, buf, k);
        if (n < 0)
            die("write");
        sent += (uint64_t)n;
    }
    shutdown(fd, SHUT_WR);
    char c;
    if (read(fd, &c, 1) != 1)
        die("read");
    double s = (double)(now_ns() - t0) / 1e9;
    printf("stream_mbit_per_s %.0f\n", (double)total * 8 / s / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "switch"))
        return run_switch(argc - 1, argv + 1);
    if (!strcmp(cmd, "pong") && argc == 3)
        return run_pong(argv[2]);
    if (!strcmp(cmd, "ping") && argc == 6)
        return run_ping(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (!strcmp(cmd, "sink") && argc == 3)
        return run_sink(argv[2]);
    if (!strcmp(cmd, "stream") && argc == 5)
        return run_stream(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: netdelay switch LATENCY RATE IF...   (e.g. 50us "
                    "10gbit v1 v2 v3)\n"
                    "       netdelay pong PORT | ping HOST PORT COUNT SIZE\n"
                    "       netdelay sink PORT | stream HOST PORT MB\n");
    return 2;
}
