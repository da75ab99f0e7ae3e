# An emulated cluster on one machine: hosts as network, UTS and mount namespaces on one bridge; sourced, not run.
#
#   cluster_up N          hosts h1..hN (needs root and iproute2); sets CL_DIR,
#                         the shared directory (the "parallel file system"),
#                         and CL_RSH, the rsh agent for Open MPI; returns 1
#                         (with the reason on stderr) when namespaces cannot
#                         be made here
#   on HOST CMD...        run CMD on HOST: its network, its hostname, its
#                         own /tmp; the exit status is CMD's
#   cl_mpirun HOST ARGS   mpirun started on HOST over TCP between the hosts
#   cl_cut HOST           what a crashed node looks like to TCP: its link
#                         goes down, nothing is sent, no RST (cl_kill_host
#                         then ends what ran there, as the crash did);
#                         cl_heal HOST brings the link back (a reboot)
#   cluster_down          end every process on the hosts, delete the
#                         namespaces, links and files; returns 1 when
#                         anything was left behind (and removes it)
#
# Names: a cluster is tf<PID> (interfaces are at most 15 characters), so
# several test scripts can each have one at once. Hosts are called h1..hN
# inside (their hostnames, and /etc/hosts there); the namespaces are
# tf<PID>h1.. outside. The bridge has no address in the machine's own
# namespace, so traffic stays between the hosts: nothing is routed out.
#
# A modelled interconnect (latency, rate) is bench/cluster.sh's: this
# machine's kernel has no netem qdisc, so a switch in user space
# (bench/netdelay.c) carries the frames between the hosts' veths.
#
# Node-local disks: each host's /tmp is its own directory, CL_DIR/hosts/hI/
# tmp, bind-mounted over /tmp in a mount namespace of the host's processes,
# so a file one host writes in /tmp is not there for another (Open MPI's
# session directories and the PMIx ones too). Everything else, CL_DIR
# included, is the one file system all hosts share. CL_DIR is under
# /var/tmp, not /tmp, because /tmp is exactly what the hosts do not share.

CL_ID=tf$$
CL_N=0
CL_DIR=
CL_RSH=
CL_NET=10.77.0

cl_ns() { echo "${CL_ID}${1}"; }
cl_veth() { echo "${CL_ID}v${1#h}"; }

cluster_up() {
    local n=$1 i h
    if [ "$(id -u)" != 0 ]; then
        echo "cluster: namespaces need root" >&2
        return 1
    fi
    for c in ip tc unshare nsenter mount; do
        command -v "$c" >/dev/null || { echo "cluster: '$c' not found (iproute2, util-linux)" >&2; return 1; }
    done
    CL_DIR=$(mktemp -d /var/tmp/tf-cluster.XXXXXX) || return 1
    chmod 755 "$CL_DIR"
    if ! ip link add "${CL_ID}br" type bridge 2>"$CL_DIR/err"; then
        echo "cluster: cannot create a bridge: $(cat "$CL_DIR/err")" >&2
        rm -rf "$CL_DIR"
        CL_DIR=
        return 1
    fi
    ip link set "${CL_ID}br" up
    CL_N=$n
    for i in $(seq 1 "$n"); do
        h=h$i
        mkdir -p "$CL_DIR/hosts/$h/tmp" "/etc/netns/$(cl_ns $h)"
        chmod 1777 "$CL_DIR/hosts/$h/tmp"
        {
            echo "127.0.0.1 localhost"
            for j in $(seq 1 "$n"); do echo "$CL_NET.$j h$j"; done
        } >"/etc/netns/$(cl_ns $h)/hosts"
        ip netns add "$(cl_ns $h)" || return 1
        ip link add "$(cl_veth $h)" type veth peer name eth0 netns "$(cl_ns $h)" || return 1
        ip link set "$(cl_veth $h)" master "${CL_ID}br" up
        ip -n "$(cl_ns $h)" addr add "$CL_NET.$i/24" dev eth0
        ip -n "$(cl_ns $h)" link set eth0 up
        ip -n "$(cl_ns $h)" link set lo up
    done
    # Enter a host: its network (ip netns exec also gives it its /etc/hosts
    # and a mount namespace), its hostname, its /tmp. The command is one
    # string for sh, as an rsh agent's remote command is for a login shell.
    cat >"$CL_DIR/enter" <<EOF
#!/bin/sh
# enter HOST CMD...: run CMD on emulated host HOST (tests/cluster/lib.sh).
h=\$1; shift
exec ip netns exec $CL_ID\$h unshare --uts --mount sh -c \\
    "mount --make-rprivate / && mount --bind $CL_DIR/hosts/\$h/tmp /tmp && hostname \$h && \$*"
EOF
    # Open MPI's rsh launcher calls AGENT [-x] HOST COMMAND... The daemon
    # is detached from the agent, its own session with no pipe to mpirun:
    # on a cluster the pipe would be ssh's TCP connection, which a dead
    # node leaves silent; a local pipe would close at once when mpirun
    # dies and tell the daemon what a real crash never tells it.
    cat >"$CL_DIR/rsh" <<EOF
#!/bin/sh
# The rsh agent Open MPI starts its daemons with on the emulated hosts.
[ "\$1" = -x ] && shift
setsid $CL_DIR/enter "\$@" </dev/null >>$CL_DIR/hosts/\$1/daemon.log 2>&1 &
EOF
    chmod 755 "$CL_DIR/enter" "$CL_DIR/rsh"
    CL_RSH=$CL_DIR/rsh
    # Up: every host's link has carrier (the bridge forwards at once: no STP).
    for i in $(seq 1 "$n"); do
        cl_wait 10 eval "ip -n $(cl_ns h$i) link show eth0 | grep -q LOWER_UP" ||
            { echo "cluster: h$i's link did not come up" >&2; return 1; }
    done
}

# on HOST CMD...: CMD quoted for sh, run there.
on() {
    local h=$1 cmd
    shift
    cmd=$(printf '%q ' "$@")
    "$CL_DIR/enter" "$h" "cd $(printf '%q' "$PWD") && $cmd"
}

# cl_mpirun HOST MPIRUN-ARGS...: mpirun on HOST, daemons started through the
# agent, TCP only on the hosts' eth0 (no shared memory between hosts: each
# host is a node of its own).
cl_mpirun() {
    local h=$1
    shift
    on "$h" mpirun --mca plm_rsh_agent "$CL_RSH" --mca btl tcp,self \
        --mca oob_tcp_if_include eth0 --mca btl_tcp_if_include eth0 \
        --mca plm_rsh_no_tree_spawn 1 "$@"
}

cl_cut() { ip link set "$(cl_veth "$1")" down; }
cl_heal() { ip link set "$(cl_veth "$1")" up; }

# cl_kill_host HOST: SIGKILL of every process of HOST's network namespace.
cl_kill_host() {
    local p
    p=$(ip netns pids "$(cl_ns "$1")" 2>/dev/null)
    [ -n "$p" ] && kill -KILL $p 2>/dev/null
    return 0
}

# cl_wait SECONDS CMD...: run CMD every 0.2 s until it succeeds.
cl_wait() {
    local n=$(($1 * 5))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    return 1
}

# What this cluster left on the machine: namespaces, links, /etc/netns
# entries, mounts of CL_DIR, processes in the namespaces.
cl_leftovers() {
    ip netns list 2>/dev/null | grep "^${CL_ID}h" | sed 's/^/namespace /'
    ip -o link show 2>/dev/null | grep -o "${CL_ID}[a-z0-9]*" | sort -u | sed 's/^/link /'
    ls -d /etc/netns/"${CL_ID}"h* 2>/dev/null | sed 's/^/file /'
    [ -n "$CL_DIR" ] && grep -F "$CL_DIR" /proc/mounts | sed 's/^/mount /'
    return 0
}

cluster_down() {
    [ "$CL_N" -gt 0 ] || { [ -n "$CL_DIR" ] && rm -rf "$CL_DIR"; return 0; }
    local i h left
    for i in $(seq 1 "$CL_N"); do
        cl_kill_host "h$i"
    done
    for i in $(seq 1 "$CL_N"); do
        ip link del "$(cl_veth "h$i")" 2>/dev/null
        cl_wait 10 eval "[ -z \"\$(ip netns pids $(cl_ns "h$i") 2>/dev/null)\" ]" ||
            echo "cluster: processes survive SIGKILL on h$i" >&2
        ip netns del "$(cl_ns "h$i")" 2>/dev/null
        rm -rf "/etc/netns/$(cl_ns "h$i")"
    done
    ip link del "${CL_ID}br" 2>/dev/null
    # Links go away asynchronously after their namespace.
    cl_wait 10 eval '[ -z "$(cl_leftovers)" ]'
    left=$(cl_leftovers)
    CL_N=0
    rm -rf "$CL_DIR"
    if [ -n "$left" ]; then
        echo "cluster: left behind:" >&2
        echo "$left" | sed 's/^/  /' >&2
        return 1
    fi
    return 0
}
