#!/usr/bin/env bash
# Installs what the network-namespace tests need, only when it is missing: iproute2 (ip, for
# namespaces, veths, the bridge and addresses; tc, for slow links), iputils-arping (arping, for
# gratuitous ARP) and nftables (nft, for the fault campaign's partitions and packet loss).
# Debian/Ubuntu only; needs root. Safe to run again: it does nothing when the tools are there.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# iputils' arping (the one with -U/-A); Thomas Habets' arping takes other flags.
if ! command -v arping >/dev/null 2>&1 || ! arping -V 2>&1 | grep -qi iputils; then
  missing+=(iputils-arping)
fi
command -v nft >/dev/null 2>&1 || missing+=(nftables)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: missing ${missing[*]} and not root, so cannot install them" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: missing ${missing[*]} and no apt-get to install them with" >&2
  exit 1
fi

echo "ensure-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
command -v ip >/dev/null && command -v arping >/dev/null && command -v nft >/dev/null
