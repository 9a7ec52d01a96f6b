#!/usr/bin/env bash
# Test hosts in Linux network namespaces, for the VIP test (vip.test.ts) and by hand.
#
#   net.sh check                         can this machine create namespaces? (exit 0, or a reason)
#   net.sh up PREFIX HOST=IP/LEN ...     one namespace per host, each with eth0 on one bridge
#   net.sh down PREFIX                   delete every namespace named PREFIX-* (idempotent)
#   net.sh sweep                         delete test namespaces (and ${TMPDIR:-/tmp}/hft-* directories)
#                                        whose creating process is gone
#
# PREFIX is hft-<pid>-<tag>: <pid> is the process that owns the run, so `sweep` can tell a stale
# run (owner dead: removed) from a run in progress (owner alive: left alone), and parallel runs
# never share a name. The bridge lives in its own namespace, PREFIX-sw (address 10.77.0.1/24
# unless BRIDGE_ADDR says otherwise), so nothing at all is created in the root namespace: deleting
# the run's namespaces removes every veth and the bridge with them, and two runs using the same
# subnet cannot collide. `up` undoes its own partial work when any step fails.
set -euo pipefail

BRIDGE_ADDR=${BRIDGE_ADDR:-10.77.0.1/24}
PREFIX_RE='^hft-[0-9]+-[0-9a-z]+$'

die() { echo "net.sh: $*" >&2; exit 1; }

namespaces_of() {
  # `ip netns list` prints "name" or "name (id: N)".
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1-" || true
}

down() {
  local prefix=$1 ns
  for ns in $(namespaces_of "$prefix"); do
    # Processes still inside keep a namespace alive after its name is gone: end them first.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -n "$(namespaces_of "$prefix")" ]; then die "could not delete: $(namespaces_of "$prefix" | tr '\n' ' ')"; fi
}

check() {
  command -v ip >/dev/null 2>&1 || die "iproute2 (ip) is not installed; run test/netns/ensure-tools.sh"
  local probe="hft-$$-probe"
  if ! out=$(ip netns add "$probe" 2>&1); then
    die "cannot create a network namespace ($out): run as root or with CAP_NET_ADMIN and CAP_SYS_ADMIN"
  fi
  if ! out=$(ip -n "$probe" link add name probea type veth peer name probeb 2>&1); then
    ip netns del "$probe" 2>/dev/null || true
    die "cannot create a veth pair in a namespace ($out)"
  fi
  ip netns del "$probe"
}

up() {
  local prefix=$1
  shift
  [[ $prefix =~ $PREFIX_RE ]] || die "prefix '$prefix' is not hft-<pid>-<tag>"
  [ $# -ge 1 ] || die "no hosts given"
  trap 'down "$prefix"' ERR
  local sw="$prefix-sw"
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add name br0 type bridge
  ip -n "$sw" addr add "$BRIDGE_ADDR" dev br0
  ip -n "$sw" link set br0 up
  local i=0 spec host addr ns
  for spec in "$@"; do
    host=${spec%%=*}
    addr=${spec#*=}
    [[ $host =~ ^[a-z0-9]+$ && $addr == */* ]] || { down "$prefix"; die "bad host '$spec' (want name=ip/len)"; }
    ns="$prefix-$host"
    i=$((i + 1))
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # The host's side is eth0 in its namespace; the bridge's side is p<i> in the switch namespace.
    ip -n "$sw" link add name "p$i" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "p$i" master br0
    ip -n "$sw" link set "p$i" up
    ip -n "$ns" addr add "$addr" dev eth0
    ip -n "$ns" link set eth0 up
  done
  trap - ERR
}

# Whether the run's owner still runs (a zombie does not: it has exited, only not yet been reaped).
owner_alive() {
  kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

sweep() {
  local ns pid prefix dir
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^hft-[0-9]+-[0-9a-z]+-' || true); do
    pid=$(echo "$ns" | cut -d- -f2)
    prefix=$(echo "$ns" | cut -d- -f1-3)
    if ! owner_alive "$pid"; then
      echo "net.sh: removing stale test namespace $ns (owner $pid is gone)" >&2
      down "$prefix"
    fi
  done
  # A run's temporary directories are named after it too: ${TMPDIR:-/tmp}/PREFIX-*.
  for dir in "${TMPDIR:-/tmp}"/hft-*; do
    [ -d "$dir" ] || continue
    [[ $(basename "$dir") =~ ^hft-([0-9]+)-[0-9a-z]+- ]] || continue
    pid=${BASH_REMATCH[1]}
    if ! owner_alive "$pid"; then
      echo "net.sh: removing stale test directory $dir (owner $pid is gone)" >&2
      rm -rf -- "$dir"
    fi
  done
}

cmd=${1:-}
shift || true
case $cmd in
  check) check ;;
  up) up "$@" ;;
  down) [ $# -eq 1 ] || die "usage: net.sh down PREFIX"; down "$1" ;;
  sweep) sweep ;;
  *) die "usage: net.sh check | up PREFIX HOST=IP/LEN ... | down PREFIX | sweep" ;;
esac
