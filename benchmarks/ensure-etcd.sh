#!/usr/bin/env bash
# Installs Debian's etcd-server (etcd 3.4) for the benchmark, only when `etcd` is missing, and
# prints the executable's path on stdout (everything else goes to stderr). Debian/Ubuntu only;
# installing needs root. Safe to run again: it does nothing when etcd is there. The package's
# service is not started (the benchmark runs its own members); HOLDFAST_ETCD=/path/to/etcd uses
# that executable instead.
set -euo pipefail

find_etcd() {
  if [ -n "${HOLDFAST_ETCD:-}" ]; then
    [ -x "$HOLDFAST_ETCD" ] && echo "$HOLDFAST_ETCD"
    return
  fi
  command -v etcd 2>/dev/null || true
}

path="$(find_etcd)"
if [ -n "$path" ]; then
  echo "$path"
  exit 0
fi
if [ -n "${HOLDFAST_ETCD:-}" ]; then
  echo "ensure-etcd: HOLDFAST_ETCD=$HOLDFAST_ETCD is not an executable" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-etcd: etcd is missing and this is not root, so it cannot be installed (apt-get install etcd-server)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-etcd: etcd is missing and there is no apt-get to install it with" >&2
  exit 1
fi

echo "ensure-etcd: installing etcd-server" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# policy-rc.d may or may not stop the package from starting its service; the benchmark's members
# use their own ports, so a running system etcd does not disturb them.
apt-get install -y -qq --no-install-recommends etcd-server >&2

path="$(find_etcd)"
if [ -z "$path" ]; then
  echo "ensure-etcd: etcd-server was installed but no etcd executable is on PATH" >&2
  exit 1
fi
echo "$path"
