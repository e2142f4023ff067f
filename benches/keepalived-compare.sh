#!/usr/bin/env bash
# votecast next to keepalived (VRRPv3) at the same heartbeat, side by side.
#
# Three nodes, each in a network namespace of its own on one bridge (built like the LAN
# test harness, tests/lan/netns.rs: a bridge namespace, one veth pair per host, addresses
# in 169.254.0.0/16). For each heartbeat T and each fault, the two daemons take turns rep
# by rep (which goes first is random), each rep on a freshly started cluster:
#   votecast   run --tick T --sync-limit 3 --finalize-wait T   (multicast group, TTL 1),
#              --vip 169.254.100.1/16 (keepalived's address), --state-file on a tmpfs
#   keepalived vrrp_version 3, advert_int T, multicast 224.0.0.18, priorities 100/99/98,
#              every node state BACKUP + nopreempt (a node that comes back does not take
#              the lead back: votecast's behaviour), one virtual IP 169.254.100.1/16.
# Both detect a dead leader after 3 heartbeats (VRRP's master-down interval is
# 3 x advert_int + skew; votecast's sync-limit 3).
#
# Faults, at a random phase of the heartbeat: kill (SIGKILL of the leader/MASTER), stop
# (SIGSTOP, SIGCONT after the new leader is seen + a hold time), cut (nftables netdev
# ingress+egress drop on the leader's interface, the link stays up; removed after the
# hold time) and term (SIGTERM, graceful).
#
# Failover = fault -> the first "LEADING" / "MASTER" reported by another node. Both are
# reported by the same hook script (votecast --on-change, keepalived notify_*), which
# stamps bash's $EPOCHREALTIME, so both figures include one fork+exec. votecast's own
# state-file time (updated_unix_ms of the first LEADING snapshot) is recorded too.
# VIP moved = fault -> the virtual IP (both daemons hold 169.254.100.1/16, votecast through
# --vip) added on another node, as `ip monitor address` reports it (stamped on arrival):
# no hook on that path.
# Split brain: keepalived - two nodes hold the virtual IP at once (checked at the end of
# the hold time, before the fault is healed; a SIGKILLed node counts as gone, though its
# namespace keeps the VIP). votecast - two leases overlap: per (node, epoch) the interval
# from the first LEADING snapshot to the latest valid_until_unix_ms published (state file
# polled every ~1 ms, plus the hooks' VOTECAST_VALID_UNTIL_UNIX_MS), any two intervals of
# different nodes that intersect.
# Idle: per node, CPU (sum of /proc/PID/task/*/schedstat run time) and wake-ups
# (voluntary context switches, all tasks) over a window after the election; keepalived's
# figures add its parent and VRRP child process. votecast idles three times: as in the
# reps (--vip and the state file, which is rewritten before its lease end passes: every
# tick or two at sync-limit 3), as a keepalived replacement runs ("votecast-vip":
# keepalived's VIP through --vip, the hook, no state file) and, at the 50 ms heartbeat
# only, at its defaults ("votecast-defaults": sync-limit 6, the hook, no --vip, no state
# file).
#
# VRRP requires TTL 255 on the wire; to keep every packet this script causes at TTL 1, an
# nftables table in each host namespace sets TTL 1 on outgoing VRRP and 255 again on
# arrival (prerouting), so keepalived's check still passes.
#
# Needs root, iproute2, nftables (netdev egress: kernel >= 5.16, nft >= 1.0.1) and
# keepalived (installed from the Debian package when missing, with policy-rc.d saying
# "exit 101" so that its service does not start). Build first: cargo build --release.
#
# Usage: benches/keepalived-compare.sh [--quick] [--reps N] [--ticks 50,10]
#        [--faults kill,stop,cut,term] [--daemons votecast,keepalived] [--idle SECS]
#        [--idle-rounds N] [--exe PATH] [--seed N] [--keep DIR] [--tsv PATH]
#        benches/keepalived-compare.sh --report PATH   (the tables again, from --tsv PATH)
# --reps 0 measures idle cost only; --keep DIR keeps every rep's files (hooks, state
# snapshots, logs); VOTECAST_CHILD_LOG sets votecast's RUST_LOG (default warn).
set -euo pipefail

REPS=10
TICKS=50,10
FAULTS=kill,stop,cut,term
DAEMONS=votecast,keepalived
REPORT=""
IDLE=20
IDLE_ROUNDS=2
SETTLE_MS=1000
EXE=""
SEED=""
KEEP=""
TSV=""

# Progress and errors go to fd 3 (the caller's stderr); once the run starts, the shell's
# own stderr (its notices about killed jobs) goes to a log among the files.
exec 3>&2
die() {
    echo "keepalived-compare: $*" >&3
    exit 2
}

while (($#)); do
    case $1 in
    --quick)
        REPS=3
        IDLE=5
        IDLE_ROUNDS=1
        SETTLE_MS=500
        ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --ticks) TICKS=${2:?--ticks needs a list of milliseconds}; shift ;;
    --faults) FAULTS=${2:?--faults needs a list}; shift ;;
    --daemons) DAEMONS=${2:?--daemons needs a list}; shift ;;
    --report) REPORT=${2:?--report needs the --tsv path of a run}; shift ;;
    --idle) IDLE=${2:?--idle needs seconds}; shift ;;
    --idle-rounds) IDLE_ROUNDS=${2:?--idle-rounds needs a number}; shift ;;
    --exe) EXE=${2:?--exe needs a path}; shift ;;
    --seed) SEED=${2:?--seed needs a number}; shift ;;
    --keep) KEEP=${2:?--keep needs a directory}; shift ;;
    --tsv) TSV=${2:?--tsv needs a path}; shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

[[ $REPS =~ ^[0-9]+$ ]] || die "--reps: a number, not '$REPS'"
[[ $IDLE =~ ^[1-9][0-9]*$ ]] || die "--idle: whole seconds > 0, not '$IDLE'"
[[ $IDLE_ROUNDS =~ ^[0-9]+$ ]] || die "--idle-rounds: a number, not '$IDLE_ROUNDS'"
IFS=, read -ra TICK_LIST <<<"$TICKS"
IFS=, read -ra FAULT_LIST <<<"$FAULTS"
IFS=, read -ra DAEMON_LIST <<<"$DAEMONS"
for d in "${DAEMON_LIST[@]}"; do
    [[ $d =~ ^(votecast|keepalived)$ ]] || die "--daemons: votecast or keepalived, not '$d'"
done
for t in "${TICK_LIST[@]}"; do
    if ! [[ $t =~ ^[1-9][0-9]*$ ]] || ((t < 10 || t > 1000)); then
        die "--ticks: milliseconds from 10 to 1000, not '$t'"
    fi
done
for f in "${FAULT_LIST[@]}"; do
    [[ $f =~ ^(kill|stop|cut|term)$ ]] || die "--faults: kill, stop, cut or term, not '$f'"
done
[[ -z $SEED ]] || [[ $SEED =~ ^[0-9]+$ ]] || die "--seed: a number, not '$SEED'"
RANDOM=${SEED:-$$}

REPORT_MODE=""
if [[ -n $REPORT ]]; then
    REPORT_MODE=1
fi
((EUID == 0)) || [[ -n $REPORT_MODE ]] || die "needs root (network namespaces, nftables)"
HERE=$(cd "$(dirname "$0")/.." && pwd)
EXE=${EXE:-$HERE/target/release/votecast}
[[ -n $REPORT_MODE || -x $EXE ]] || die "--exe: no votecast binary at $EXE (run cargo build --release)"
for tool in ip nft; do
    [[ -z $REPORT_MODE ]] || break
    command -v "$tool" >/dev/null || die "needs $tool (apt-get install iproute2 nftables)"
done

TAG="vcka-$$"
BR="$TAG-br"
HOSTS=("$TAG-h1" "$TAG-h2" "$TAG-h3")
VIP=169.254.100.1
CREATED_NS=()
STARTED=()
POLICY_BACKUP=""
WORK=$(mktemp -d "/tmp/$TAG.XXXXXX")
# votecast's state files live on a tmpfs, as in the package (/run/votecast); its data
# dirs (the durable epochs, fsynced on the failover path) stay on disk under $WORK.
RUNDIR=$(mktemp -d "/dev/shm/$TAG.XXXXXX")

# Everything this run started or created goes, also on failure or Ctrl-C: its processes
# (by PID, plus whatever still runs inside its own namespaces), its namespaces (by the
# names it created), its files, and policy-rc.d is restored if it was replaced.
cleanup() {
    local pid ns
    set +e
    for pid in "${STARTED[@]}"; do
        kill -CONT "$pid" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null
    done
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    wait 2>/dev/null
    for ((i = ${#CREATED_NS[@]} - 1; i >= 0; i--)); do
        ip netns del "${CREATED_NS[i]}" || echo "cannot delete namespace ${CREATED_NS[i]}" >&3
    done
    if [[ -n $POLICY_BACKUP ]]; then
        if [[ $POLICY_BACKUP == none ]]; then rm -f /usr/sbin/policy-rc.d; else
            cp -p "$WORK/policy-rc.d" /usr/sbin/policy-rc.d
        fi
    fi
    if [[ -n $KEEP ]]; then
        mkdir -p "$KEEP" && cp -a "$WORK/." "$KEEP/" && echo "files kept in $KEEP" >&3
    fi
    rm -rf "$WORK" "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z $REPORT_MODE ]] && ! command -v keepalived >/dev/null; then
    echo "installing keepalived (Debian package; policy-rc.d keeps its service stopped)" >&3
    if [[ -e /usr/sbin/policy-rc.d ]]; then
        cp -p /usr/sbin/policy-rc.d "$WORK/policy-rc.d"
        POLICY_BACKUP=saved
    else
        POLICY_BACKUP=none
    fi
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        keepalived >&3 ||
        { timeout 300 apt-get -o DPkg::Lock::Timeout=300 update -q >&3 &&
            timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -q \
                --no-install-recommends keepalived >&3; } ||
        { echo "keepalived-compare: apt-get install keepalived failed" >&3; exit 1; }
fi

now_us() { echo "${EPOCHREALTIME/./}"; }
# Microseconds as seconds for read -t / sleep.
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }

# Sleeps below a second without a fork: a read that times out on a FIFO nobody writes.
mkfifo "$WORK/sleep.fifo"
exec {SLEEP_FD}<>"$WORK/sleep.fifo"
nap() { read -rt "$1" -u "$SLEEP_FD" _ || true; }

# ---------------------------------------------------------------- network
add_ns() {
    ip netns add "$1"
    CREATED_NS+=("$1")
}

build_lan() {
    local i host
    add_ns "$BR"
    ip -n "$BR" link set lo up
    ip -n "$BR" link add br0 type bridge mcast_snooping 0
    ip -n "$BR" link set br0 up
    for i in 1 2 3; do
        host=${HOSTS[i - 1]}
        add_ns "$host"
        ip -n "$BR" link add "p$i" type veth peer name lan0 netns "$host"
        ip -n "$BR" link set "p$i" master br0 up
        ip -n "$host" link set lo up
        ip -n "$host" addr add "169.254.0.$((10 + i))/16" dev lan0
        ip -n "$host" link set lan0 up
        # TTL 1 on the wire for VRRP too (see the top of this file).
        ip netns exec "$host" nft -f - <<'EOF'
table inet vcka_ttl {
  chain out { type filter hook output priority 0; policy accept; ip protocol vrrp ip ttl set 1; }
  chain pre { type filter hook prerouting priority -300; policy accept; ip protocol vrrp ip ttl set 255; }
}
EOF
    done
}

cut_on() {
    ip netns exec "${HOSTS[$1 - 1]}" nft -f - <<'EOF'
table netdev vcka_cut {
  chain in { type filter hook ingress device lan0 priority 0; policy drop; }
  chain out { type filter hook egress device lan0 priority 0; policy drop; }
}
EOF
}
cut_off() { ip netns exec "${HOSTS[$1 - 1]}" nft delete table netdev vcka_cut; }

# ---------------------------------------------------------------- daemons
# One hook for both daemons: "$EPOCHREALTIME(us) STATE VALID_UNTIL EPOCH" per line.
# Both start it directly, without a shell: keepalived gives the state as an argument,
# votecast in its environment.
HOOK=$WORK/hook.sh
cat >"$HOOK" <<'EOF'
#!/bin/bash
printf '%s %s %s %s\n' "${EPOCHREALTIME/./}" "${2:-$VOTECAST_STATE}" \
    "${VOTECAST_VALID_UNTIL_UNIX_MS:--}" "${VOTECAST_EPOCH:--}" >>"$1"
EOF
chmod 0755 "$HOOK"

DAEMON=""
PIDS=()  # per node (index 0 = node 1): the PIDs to signal (keepalived: parent and child)
NODE_DIR=()

# votecast_nodes PREFIX ARG...: node i of 3 runs votecast in host namespace i, its files
# in $WORK/run/PREFIXi, with the arguments every variant shares (the group, the data dir,
# the hook) and then ARG...
votecast_nodes() {
    local prefix=$1 i d
    shift
    for i in 1 2 3; do
        d=$WORK/run/$prefix$i
        rm -rf "$d" && mkdir -p "$d/data"
        NODE_DIR[i]=$d
        RUST_LOG=${VOTECAST_CHILD_LOG:-warn} ip netns exec "${HOSTS[i - 1]}" "$EXE" run --id "$i" --voters 1,2,3 \
            --interface lan0 --group 239.192.77.77:7277 --data-dir "$d/data" \
            --on-change "$HOOK $d/hooks" "${@//@I@/$i}" \
            </dev/null >>"$d/log" 2>&1 &
        STARTED+=("$!")
        PIDS[i]=$!
    done
}

# As in the reps: the state file (@I@ is the node's number), keepalived's VIP, VRRP's
# detection multiple.
start_votecast() {
    rm -f "$RUNDIR"/vc?.state
    votecast_nodes vc --state-file "$RUNDIR/vc@I@.state" --vip "$VIP/16" --tick "${1}ms" \
        --sync-limit 3 --finalize-wait "${1}ms"
}

# As a keepalived replacement runs: the same VIP as keepalived's (netlink, renewed about
# every 0.5 s), the hook, no state file. For the idle figures only (the failover reps
# need the state files for the overlap count).
start_votecast-vip() {
    votecast_nodes vv --vip "$VIP/16" --tick "${1}ms" --sync-limit 3 --finalize-wait "${1}ms"
}

# votecast at its defaults (tick 50 ms, sync-limit 6, finalize-wait 50 ms), no --vip, no
# state file, the hook: the figure behind "at the defaults, at most 0.2 % of a core per
# node". Idled at the 50 ms heartbeat only.
start_votecast-defaults() {
    votecast_nodes vd
}

start_keepalived() {
    local tick=$1 i d adv
    adv=$(printf '0.%03d' "$tick")
    ((tick < 1000)) || adv=$((tick / 1000))
    for i in 1 2 3; do
        d=$WORK/run/ka$i
        rm -rf "$d" && mkdir -p "$d"
        NODE_DIR[i]=$d
        cat >"$d/keepalived.conf" <<EOF
global_defs {
  router_id vcka$i
  vrrp_version 3
  script_user root
}
vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface lan0
  virtual_router_id 77
  priority $((101 - i))
  advert_int $adv
  virtual_ipaddress {
    $VIP/16 dev lan0
  }
  notify_master "$HOOK $d/hooks MASTER"
  notify_backup "$HOOK $d/hooks BACKUP"
  notify_fault "$HOOK $d/hooks FAULT"
  notify_stop "$HOOK $d/hooks STOP"
}
EOF
        ip netns exec "${HOSTS[i - 1]}" keepalived -n -P -R -l -D -G -f "$d/keepalived.conf" \
            -p "$d/keepalived.pid" -r "$d/vrrp.pid" -i "vcka$i" \
            </dev/null >>"$d/log" 2>&1 &
        STARTED+=("$!")
        PIDS[i]=$!
    done
    # The VRRP child does the work; signal it with its parent. Bounded wait for it.
    local deadline=$((${EPOCHREALTIME/./} + 5000000)) kids
    for i in 1 2 3; do
        while :; do
            kids=$(cat "/proc/${PIDS[i]}/task/${PIDS[i]}/children" 2>/dev/null || true)
            [[ -n ${kids// /} ]] && break
            ((${EPOCHREALTIME/./} < deadline)) || { echo "keepalived $i: no VRRP child" >&3; return 1; }
            nap 0.005
        done
        for k in $kids; do STARTED+=("$k"); done
        PIDS[i]="$kids ${PIDS[i]}"
    done
}

stop_all() {
    local i p
    for i in 1 2 3; do
        for p in ${PIDS[i]}; do kill -CONT "$p" 2>/dev/null || true; done
    done
    if [[ $DAEMON == keepalived ]]; then
        # Graceful, so that every node gives up the virtual IP; bounded, then SIGKILL.
        for i in 1 2 3; do kill -TERM "${PIDS[i]##* }" 2>/dev/null || true; done
        local deadline=$((${EPOCHREALTIME/./} + 3000000))
        for i in 1 2 3; do
            while kill -0 "${PIDS[i]##* }" 2>/dev/null && ((${EPOCHREALTIME/./} < deadline)); do nap 0.01; done
        done
    fi
    for i in 1 2 3; do
        for p in ${PIDS[i]}; do kill -KILL "$p" 2>/dev/null || true; done
    done
    for i in 1 2 3; do
        for p in ${PIDS[i]}; do wait "$p" 2>/dev/null || true; done
        ip -n "${HOSTS[i - 1]}" addr del "$VIP/16" dev lan0 2>/dev/null || true
    done
    STARTED=()
}

# The state of node $1 as its last hook line reported it.
last_hook_state() {
    local line="" l s
    [[ -s ${NODE_DIR[$1]}/hooks ]] || { echo -; return; }
    while read -r l; do line=$l; done <"${NODE_DIR[$1]}/hooks"
    read -r _ s _ <<<"$line"
    echo "${s:--}"
}

is_leading() { [[ $1 == LEADING || $1 == MASTER ]]; }

# Wait (at most 10 s) until exactly one node leads and the others follow, as the hooks
# report it (and, for votecast, the state files as well, so that no hook of the election
# is still to come); prints the leader.
wait_leader() {
    local deadline=$((${EPOCHREALTIME/./} + 10000000)) i s leader n line
    while ((${EPOCHREALTIME/./} < deadline)); do
        leader=0 n=0
        for i in 1 2 3; do
            s=$(last_hook_state "$i")
            if [[ $DAEMON == votecast ]]; then
                line=""
                { read -r line <"$RUNDIR/vc$i.state"; } 2>/dev/null || true
                [[ $line =~ \"state\":\"([A-Z]+)\" && ${BASH_REMATCH[1]} == "$s" ]] || s=-
            fi
            if is_leading "$s"; then leader=$i n=$((n + 1)); fi
            [[ $s == LEADING || $s == MASTER || $s == FOLLOWING || $s == BACKUP ]] || n=9
        done
        if ((n == 1)); then echo "$leader"; return 0; fi
        nap 0.01
    done
    return 1
}

# ---------------------------------------------------------------- the VIP watch
# Every line of standard input, stamped "$EPOCHREALTIME(us) LINE", appended to $1.
stamp_lines() {
    local line
    while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done >>"$1"
}

# Watches the VIP's address notifications on node $1's lan0 into NODE_DIR/addr; the PID
# of the `ip monitor` goes to the caller's watches (ending it ends the stamping too).
watch_vip() {
    ip -o -n "${HOSTS[$1 - 1]}" monitor address dev lan0 \
        > >(stamp_lines "${NODE_DIR[$1]}/addr" >/dev/null 2>&1) 2>/dev/null &
    watches+=("$!")
    STARTED+=("$!")
}

# The first time (us) after $1 that the VIP was added on a node other than $2; empty if
# never.
vip_added() {
    local after=$1 old=$2 i ts rest first=""
    for i in 1 2 3; do
        ((i == old)) && continue
        [[ -s ${NODE_DIR[i]}/addr ]] || continue
        while read -r ts rest; do
            [[ $rest != Deleted* && $rest == *" inet $VIP/"* ]] || continue
            if ((ts > after)) && [[ -z $first || ts -lt first ]]; then first=$ts; fi
        done <"${NODE_DIR[i]}/addr"
    done
    echo "$first"
}

# ---------------------------------------------------------------- the state-file poller
# Appends every new line of the given files as "INDEX LINE" to $1 until $2 (us).
poll_files() {
    local out=$1 end=$2 f line i
    shift 2
    local -a last=()
    while ((${EPOCHREALTIME/./} < end)); do
        i=0
        for f in "$@"; do
            if { read -r line <"$f"; } 2>/dev/null && [[ $line != "${last[i]:-}" ]]; then
                last[i]=$line
                printf '%s %s\n' "$i" "$line" >>"$out"
            fi
            i=$((i + 1))
        done
        nap 0.001
    done
}

# Lease overlaps of a votecast rep, from the polled state snapshots and hook lines:
# prints "overlaps min_gap_ms first_leading_ms" (first_leading: updated_unix_ms of the
# first LEADING snapshot of a node other than $1, "-" if none).
votecast_overlaps() {
    local old=$1 snaps=$2
    shift 2
    awk -v old="$old" '
        function digits(key,   m) {
            if (match($0, "\"" key "\":[0-9]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m }
            return "-"
        }
        function num(key,   m) {
            if (match($0, "\"" key "\":[0-9]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 }
            return -1
        }
        FNR == 1 { fileno++ }
        fileno == 1 {
            if ($0 !~ /"state":"LEADING"/) next
            # The epoch stays a string: as a number it would become "2.18e+11" in a key.
            id = num("id"); e = digits("epoch"); u = num("updated_unix_ms"); v = num("valid_until_unix_ms")
            k = id SUBSEP e; ids[k] = id
            if (!(k in lo) || u < lo[k]) lo[k] = u
            if (v > hi[k]) hi[k] = v
            if (id != old && (first == "" || u < first)) first = u
            next
        }
        {   # hook lines: us STATE VALID_UNTIL EPOCH, one file per node (ARGV order = node)
            id = fileno - 1
            if ($2 == "LEADING") {
                k = id SUBSEP $4; held[id] = k
                if (k in ids && $3 != "-" && $3 + 0 > hi[k]) hi[k] = $3 + 0
            } else if (id in held) {
                # The step-down hook of that term has run (the line is written before it
                # exits, and the daemon waits for its exit before it hands over).
                if (!(held[id] in rel)) rel[held[id]] = $1 / 1000
                delete held[id]
            }
        }
        END {
            n = 0; m = 0; gap = ""
            for (a in lo) for (b in lo) {
                if (ids[a] >= ids[b]) continue
                if (lo[a] < hi[b] && lo[b] < hi[a]) n++
                ea = (a in rel && rel[a] < hi[a]) ? rel[a] : hi[a]
                eb = (b in rel && rel[b] < hi[b]) ? rel[b] : hi[b]
                # Snapshot times are whole milliseconds (truncated), hook lines are in
                # microseconds: a term counts as started at the end of its millisecond
                # here, or a successor that leads within a millisecond of the hook line
                # of the old leader (0.1 ms after its RESIGN) would look early.
                if (lo[a] + 1 < eb && lo[b] + 1 < ea) m++
            }
            for (a in lo) for (b in lo) {
                if (ids[a] == ids[b] || lo[b] < lo[a]) continue
                g = lo[b] - hi[a]
                if (gap == "" || g < gap) gap = g
            }
            printf "%d %d %s %s\n", n, m, (gap == "" ? "-" : sprintf("%.0f", gap)), (first == "" ? "-" : sprintf("%.0f", first))
        }' "$snaps" "$@"
}

# ---------------------------------------------------------------- one rep
RESULTS=$WORK/results.tsv
: >"$RESULTS"

UNSTABLE=$WORK/unstable.tsv
: >"$UNSTABLE"

# rep DAEMON TICK FAULT N: one fault on a fresh cluster; appends a line to $RESULTS. A
# cluster that changed its leader on its own during the settling time (or, for votecast,
# whose leader was no longer LEADING in its state file at the fault) does not count: the
# attempt is logged in $UNSTABLE and repeated, at most 5 times.
rep() {
    local k
    for k in 1 2 3 4 5; do
        attempt "$@" && return 0
        printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$UNSTABLE"
    done
    printf '%s\t%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

attempt() {
    DAEMON=$1
    local tick=$2 fault=$3 n=$4 old fault_us=0 new="" new_us="" line i s ts
    local hold_us=$((3 * 3 * tick * 1000 > 300000 ? 3 * 3 * tick * 1000 : 300000))
    mkdir -p "$WORK/run"
    "start_$DAEMON" "$tick"
    if ! old=$(wait_leader); then
        echo "$DAEMON T=$tick $fault #$n: no leader within 10 s" >&3
        stop_all
        return 1
    fi
    local -a watches=()
    for i in 1 2 3; do
        ((i == old)) && continue
        watch_vip "$i"
    done
    # Settle, then a random phase within one heartbeat.
    local settle_us=${EPOCHREALTIME/./}
    nap "$(secs $((SETTLE_MS * 1000 + (RANDOM * 32768 + RANDOM) % (tick * 1000))))"
    local snaps=$WORK/run/snaps
    : >"$snaps"
    local files=()
    for i in 1 2 3; do
        if [[ $DAEMON == votecast ]]; then files+=("$RUNDIR/vc$i.state"); else files+=("${NODE_DIR[i]}/hooks"); fi
    done
    poll_files "$snaps" $((${EPOCHREALTIME/./} + 20000000)) "${files[@]}" &
    local poller=$!
    STARTED+=("$poller")
    # The fault waits (at most 2 s) until the poller has read every node once.
    local ready=$((${EPOCHREALTIME/./} + 2000000)) seen
    while :; do
        seen=0
        while read -r _; do seen=$((seen + 1)); done <"$snaps"
        ((seen < 3 && ${EPOCHREALTIME/./} < ready)) || break
        nap 0.001
    done
    local -a victim
    read -ra victim <<<"${PIDS[old]}"
    case $fault in
    kill) fault_us=${EPOCHREALTIME/./}; kill -KILL "${victim[@]}" ;;
    stop) fault_us=${EPOCHREALTIME/./}; kill -STOP "${victim[@]}" ;;
    term) fault_us=${EPOCHREALTIME/./}; kill -TERM "${victim[-1]}" ;;
    cut) cut_on "$old"; fault_us=${EPOCHREALTIME/./} ;;
    esac
    # The first node other than the old leader to report LEADING/MASTER after the fault.
    local deadline=$((fault_us + 5000000))
    while [[ -z $new ]] && ((${EPOCHREALTIME/./} < deadline)); do
        for i in 1 2 3; do
            if ((i == old)) || [[ ! -s ${NODE_DIR[i]}/hooks ]]; then continue; fi
            while read -r ts s _; do
                if is_leading "$s" && ((ts > fault_us)) && [[ -z $new_us || ts -lt new_us ]]; then
                    new=$i new_us=$ts
                fi
            done <"${NODE_DIR[i]}/hooks"
        done
        [[ -n $new ]] || nap 0.002
    done
    # Hold the fault, look for split brain, heal, and watch the old leader come back.
    nap "$(secs "$hold_us")"
    local brain=0 holders=0
    if [[ $DAEMON == keepalived ]]; then
        for i in 1 2 3; do
            [[ $fault == kill ]] && ((i == old)) && continue
            ip -n "${HOSTS[i - 1]}" -4 addr show dev lan0 | grep -q " $VIP/" && holders=$((holders + 1))
        done
        ((holders < 2)) || brain=1
    fi
    case $fault in
    stop) kill -CONT "${victim[@]}" 2>/dev/null || true ;;
    cut) cut_off "$old" ;;
    esac
    nap 0.3
    kill "$poller" "${watches[@]}" 2>/dev/null || true
    wait "$poller" "${watches[@]}" 2>/dev/null || true
    local churn=0
    for i in 1 2 3; do
        [[ -s ${NODE_DIR[i]}/hooks ]] || continue
        while read -r ts s _; do
            if ((ts >= settle_us && ts < fault_us)); then churn=1; fi
        done <"${NODE_DIR[i]}/hooks"
    done
    if [[ $DAEMON == votecast ]]; then
        while read -r i line; do
            if ((i == old - 1)); then
                [[ $line == *'"state":"LEADING"'* ]] || churn=1
                break
            fi
        done <"$snaps"
    fi
    if ((churn)); then
        printf '  %-10s T=%-3s %-4s #%-2s leader %s changed on its own before the fault: repeated\n' \
            "$DAEMON" "$tick" "$fault" "$n" "$old" >&3
        [[ -z $KEEP ]] || cp -a "$WORK/run" "$WORK/unstable-$DAEMON-$tick-$fault-$n-$settle_us"
        stop_all
        rm -rf "$WORK/run"
        return 1
    fi
    local failover=NA state_ms=NA gap=NA hooked=NA vip_ms=NA vip_us
    [[ -n $new_us ]] && failover=$(awk -v a="$new_us" -v b="$fault_us" 'BEGIN { printf "%.1f", (a - b) / 1000 }')
    vip_us=$(vip_added "$fault_us" "$old")
    [[ -n $vip_us ]] && vip_ms=$(awk -v a="$vip_us" -v b="$fault_us" 'BEGIN { printf "%.1f", (a - b) / 1000 }')
    if [[ $DAEMON == votecast ]]; then
        local first
        read -r brain hooked gap first < <(votecast_overlaps "$old" "$snaps" \
            "${NODE_DIR[1]}/hooks" "${NODE_DIR[2]}/hooks" "${NODE_DIR[3]}/hooks")
        [[ $first == - ]] || state_ms=$(awk -v a="$first" -v b="$fault_us" 'BEGIN { printf "%.1f", a - b / 1000 }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$DAEMON" "$tick" "$fault" "$n" "$failover" \
        "$brain" "$state_ms" "$gap" "$hooked" "$vip_ms" >>"$RESULTS"
    printf '  %-10s T=%-3s %-4s #%-2s leader %s -> %s  %7s ms (VIP %s ms)  split/overlap %s%s\n' "$DAEMON" \
        "$tick" "$fault" "$n" "$old" "${new:--}" "$failover" "$vip_ms" "$brain" \
        "$([[ $DAEMON == votecast ]] && echo " (after the step-down hook $hooked; state file $state_ms ms, lease gap $gap ms)")" >&3
    [[ -z $KEEP ]] || cp -a "$WORK/run" "$WORK/rep-$DAEMON-$tick-$fault-$n"
    stop_all
    rm -rf "$WORK/run"
    return 0
}

# ---------------------------------------------------------------- idle cost
# "runtime_ns voluntary_switches" of the PIDs given, summed over their tasks.
sample() {
    local pid t rt=0 sw=0 a line
    for pid in "$@"; do
        for t in /proc/"$pid"/task/*; do
            { read -r a _ <"$t/schedstat"; } 2>/dev/null || continue
            rt=$((rt + a))
            while read -r line; do
                [[ $line == voluntary_ctxt_switches:* ]] && sw=$((sw + ${line##*:}))
            done <"$t/status"
        done
    done
    echo "$rt $sw"
}

IDLE_TSV=$WORK/idle.tsv
: >"$IDLE_TSV"

# idle DAEMON TICK ROUND: one idle window on a fresh cluster. A window in which any node
# changed its role (a hook ran) is flagged CHANGED and tried again, at most 3 times.
idle() {
    local k
    for k in 1 2 3; do
        idle_window "$@" "$k" && return 0
    done
    return 0
}

idle_window() {
    DAEMON=$1
    local tick=$2 round=$3 try=$4 leader i t0 t1 role changes=0 ts rt0 sw0 rt1 sw1
    mkdir -p "$WORK/run"
    "start_$DAEMON" "$tick"
    if ! leader=$(wait_leader); then
        echo "$DAEMON T=$tick idle: no leader within 10 s" >&3
        stop_all
        return 1
    fi
    local since=${EPOCHREALTIME/./}
    nap 2
    local -a before=() pids=()
    t0=${EPOCHREALTIME/./}
    for i in 1 2 3; do read -ra pids <<<"${PIDS[i]}"; before[i]=$(sample "${pids[@]}"); done
    sleep "$IDLE"
    t1=${EPOCHREALTIME/./}
    for i in 1 2 3; do
        while read -r ts _; do
            if ((ts > since)); then changes=$((changes + 1)); fi
        done <"${NODE_DIR[i]}/hooks"
    done
    for i in 1 2 3; do
        read -r rt0 sw0 <<<"${before[i]}"
        read -ra pids <<<"${PIDS[i]}"
        read -r rt1 sw1 < <(sample "${pids[@]}")
        role=follower
        if ((i == leader)); then role=leader; fi
        if ((changes)); then role=CHANGED; fi
        awk -v d="$DAEMON" -v t="$tick" -v r="$round.$try" -v role="$role" -v rt=$((rt1 - rt0)) \
            -v sw=$((sw1 - sw0)) -v us=$((t1 - t0)) -v c="$changes" \
            'BEGIN { printf "%s\t%s\t%s\t%s\t%.3f\t%.1f\t%d\n", d, t, r, role, rt / us / 10, sw / us * 1e6, c }' \
            >>"$IDLE_TSV"
    done
    tail -n 3 "$IDLE_TSV" | sed 's/^/  idle /' >&3
    [[ -z $KEEP ]] || cp -a "$WORK/run" "$WORK/idle-$DAEMON-$tick-$round.$try"
    stop_all
    rm -rf "$WORK/run"
    ((changes == 0))
}

# ---------------------------------------------------------------- report
# The tables, from $RESULTS, $IDLE_TSV, $UNSTABLE and the run's description.
report() {
    median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
    cell() { awk -F'\t' -v d="$1" -v t="$2" -v f="$3" -v c="$4" '$1 == d && $2 == t && $3 == f && $c != "NA" { print $c }' "$RESULTS"; }
    count() { cell "$@" | awk -v want="$5" '$1 == want { n++ } END { print n + 0 }'; }
    # k, v, kn, vn: keepalived's and votecast's median and count of column $3 in the cell
    # of tick $1 and fault $2.
    pair() {
        k=$(cell keepalived "$1" "$2" "$3" | median)
        v=$(cell votecast "$1" "$2" "$3" | median)
        kn=$(cell keepalived "$1" "$2" "$3" | wc -l)
        vn=$(cell votecast "$1" "$2" "$3" | wc -l)
    }
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }
    # The median of idle column COL over DAEMON's windows at TICK in ROLE.
    role_median() { awk -F'\t' -v d="$1" -v t="$2" -v c="$3" -v r="$4" '$1 == d && $2 == t && $4 == r { print $c }' "$IDLE_TSV" | median; }
    # The median of the whole cluster's CPU over DAEMON's windows at TICK without a role change.
    cluster_median() { awk -F'\t' -v d="$1" -v t="$2" '$1 == d && $2 == t && $4 != "CHANGED" { s[$3] += $5 } END { for (r in s) print s[r] }' "$IDLE_TSV" | median; }

    echo
    echo "machine: $MACHINE"
    echo "versions: $VERSIONS"
    echo "load average (1/5/15 min): $LOAD_START at the start, $LOAD_END at the end"
    echo "reps per cell: $REPS; votecast --tick T --sync-limit 3 --finalize-wait T; keepalived VRRPv3 advert_int T, nopreempt, priorities 100/99/98"
    echo
    echo "Failover (fault -> another node reports LEADING / MASTER through its hook), medians in ms:"
    echo
    echo "| heartbeat | fault | keepalived | votecast | votecast ÷ keepalived | keepalived: two hold the VIP | votecast: leases overlap (valid_until / after the step-down hook) | votecast, state file | min lease gap |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for tick in "${TICK_LIST[@]}"; do
        for fault in "${FAULT_LIST[@]}"; do
            pair "$tick" "$fault" 5
            kb=$(count keepalived "$tick" "$fault" 6 1)
            vb=$(cell votecast "$tick" "$fault" 6 | awk '$1 > 0 { n++ } END { print n + 0 }')
            vh=$(cell votecast "$tick" "$fault" 9 | awk '$1 > 0 { n++ } END { print n + 0 }')
            vs=$(cell votecast "$tick" "$fault" 7 | median)
            gap=$(cell votecast "$tick" "$fault" 8 | awk '$1 != "-"' | sort -g | sed -n 1p)
            echo "| $tick ms | $fault | $k (n=$kn) | $v (n=$vn) | $(ratio "$v" "$k") | $kb/$kn | $vb/$vn / $vh/$vn | $vs | ${gap:-NA} ms |"
        done
    done
    if [[ -n $(cell votecast "${TICK_LIST[0]}" "${FAULT_LIST[0]}" 10) ]]; then
        echo
        echo "VIP moved (fault -> the virtual IP added on another node, from the kernel's address notifications; both hold $VIP/16), medians in ms:"
        echo
        echo "| heartbeat | fault | keepalived | votecast | votecast ÷ keepalived |"
        echo "|---|---|---|---|---|"
        for tick in "${TICK_LIST[@]}"; do
            for fault in "${FAULT_LIST[@]}"; do
                pair "$tick" "$fault" 10
                echo "| $tick ms | $fault | $k (n=$kn) | $v (n=$vn) | $(ratio "$v" "$k") |"
            done
        done
    fi
    if [[ -s $IDLE_TSV ]]; then
        echo
        echo "Idle, per node over ${IDLE} s, medians over the windows without a role change ($IDLE_ROUNDS round(s), up to 3 tries each), then over every window; CPU in % of one core, wake-ups = voluntary context switches /s:"
        echo
        echo "| heartbeat | | keepalived | votecast | votecast ÷ keepalived |"
        echo "|---|---|---|---|---|"
        for tick in "${TICK_LIST[@]}"; do
            for metric in "CPU leader:5:leader" "CPU follower:5:follower" "wake-ups leader:6:leader" "wake-ups follower:6:follower"; do
                IFS=: read -r label col role <<<"$metric"
                k=$(role_median keepalived "$tick" "$col" "$role")
                v=$(role_median votecast "$tick" "$col" "$role")
                echo "| $tick ms | $label | $k | $v | $(ratio "$v" "$k") |"
            done
            local kcluster w
            kcluster=$(cluster_median keepalived "$tick")
            w=$(cluster_median votecast "$tick")
            echo "| $tick ms | CPU, whole cluster | $kcluster | $w | $(ratio "$w" "$kcluster") |"
            for variant in "votecast-vip/votecast with --vip, no state file" \
                "votecast-defaults/votecast at its defaults (sync-limit 6, no --vip, no state file)"; do
                local d=${variant%%/*} what=${variant#*/}
                w=$(cluster_median "$d" "$tick")
                [[ $w != NA ]] || continue
                for metric in "CPU leader:leader" "CPU follower:follower"; do
                    IFS=: read -r label role <<<"$metric"
                    k=$(role_median keepalived "$tick" 5 "$role")
                    v=$(role_median "$d" "$tick" 5 "$role")
                    echo "| $tick ms | $label, $what | $k | $v | $(ratio "$v" "$k") |"
                done
                echo "| $tick ms | CPU, whole cluster, $what | $kcluster | $w | $(ratio "$w" "$kcluster") |"
            done
        for metric in "CPU per node, every window:5" "wake-ups per node, every window:6" "role changes per window:7"; do
            IFS=: read -r label col <<<"$metric"
            k=$(awk -F'\t' -v t="$tick" -v c="$col" '$1 == "keepalived" && $2 == t { print $c }' "$IDLE_TSV" | median)
            v=$(awk -F'\t' -v t="$tick" -v c="$col" '$1 == "votecast" && $2 == t { print $c }' "$IDLE_TSV" | median)
            echo "| $tick ms | $label | $k | $v | $(ratio "$v" "$k") |"
        done
        done
    fi
    echo
    echo "Stability under this load (a leader change nobody caused):"
    for tick in "${TICK_LIST[@]}"; do
        for d in keepalived votecast; do
            u=$(awk -F'\t' -v d="$d" -v t="$tick" '$1 == d && $2 == t { n++ } END { print n + 0 }' "$UNSTABLE")
            w=$(awk -F'\t' -v d="$d" -v t="$tick" '$1 == d && $2 == t && $4 == "CHANGED" { n++ } END { print n / 3 }' "$IDLE_TSV")
            echo "- $tick ms, $d: $u fault attempt(s) repeated because the leader changed during the settling time; $w idle window(s) of ${IDLE} s (+2 s) with a role change (excluded from the idle table)"
        done
    done
}

# ---------------------------------------------------------------- run
if [[ -n $REPORT_MODE ]]; then
    for f in "$REPORT" "$REPORT.idle" "$REPORT.unstable" "$REPORT.meta"; do
        [[ -r $f ]] || die "--report: cannot read $f (written by a run with --tsv $REPORT)"
    done
    # shellcheck disable=SC1090 # written by this script, one VAR=%q line each
    source "$REPORT.meta"
    IFS=, read -ra TICK_LIST <<<"$TICKS"
    IFS=, read -ra FAULT_LIST <<<"$FAULTS"
    RESULTS=$REPORT IDLE_TSV=$REPORT.idle UNSTABLE=$REPORT.unstable
    report
    exit 0
fi
MACHINE="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, Linux $(uname -r)"
VERSIONS="$("$EXE" --version 2>&1 | sed -n 1p); $(keepalived --version 2>&1 | sed -n 1p)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $MACHINE" >&3
echo "versions: $VERSIONS" >&3
echo "load average at the start: $LOAD_START" >&3
exec 2>>"$WORK/shell.log"
build_lan
# The netdev egress hook needs kernel >= 5.16 and nft >= 1.0.1: fail now, not mid-run.
{ cut_on 1 && cut_off 1; } || die "nftables cannot drop on lan0 ingress+egress (netdev egress hook)"

for tick in "${TICK_LIST[@]}"; do
    for ((r = 1; r <= IDLE_ROUNDS; r++)); do
        if ((r % 2)); then
            order=(votecast votecast-vip votecast-defaults keepalived)
        else
            order=(keepalived votecast-defaults votecast-vip votecast)
        fi
        for d in "${order[@]}"; do
            [[ $d != votecast-defaults || $tick == 50 ]] || continue
            [[ ,$DAEMONS, == *,${d%%-*},* ]] && idle "$d" "$tick" "$r"
        done
    done
    for ((n = 1; n <= REPS; n++)); do
        for fault in "${FAULT_LIST[@]}"; do
            if (((n + RANDOM) % 2)); then order=(votecast keepalived); else order=(keepalived votecast); fi
            for d in "${order[@]}"; do
                [[ ,$DAEMONS, == *,$d,* ]] && rep "$d" "$tick" "$fault" "$n"
            done
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ -n $TSV ]]; then
    cp "$RESULTS" "$TSV"
    cp "$IDLE_TSV" "$TSV.idle"
    cp "$UNSTABLE" "$TSV.unstable"
    for v in MACHINE VERSIONS LOAD_START LOAD_END REPS IDLE IDLE_ROUNDS TICKS FAULTS DAEMONS; do
        printf '%s=%q\n' "$v" "${!v}"
    done >"$TSV.meta"
fi
report

