#!/usr/bin/env bash
# Installs Debian's chromium for the status page test (driven by playwright-core), only when it is
# missing, and prints the executable's path on stdout (everything else goes to stderr).
# Debian/Ubuntu only; installing needs root. Safe to run again: it does nothing when it is there.
# HOLDFAST_CHROMIUM=/path/to/chromium uses that executable instead.
set -euo pipefail

find_chromium() {
  if [ -n "${HOLDFAST_CHROMIUM:-}" ]; then
    [ -x "$HOLDFAST_CHROMIUM" ] && echo "$HOLDFAST_CHROMIUM"
    return
  fi
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

path="$(find_chromium)"
if [ -n "$path" ]; then
  echo "$path"
  exit 0
fi
if [ -n "${HOLDFAST_CHROMIUM:-}" ]; then
  echo "ensure-chromium: HOLDFAST_CHROMIUM=$HOLDFAST_CHROMIUM is not an executable" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: chromium is missing and not root, so cannot install it (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: chromium is missing and no apt-get to install it with" >&2
  exit 1
fi

echo "ensure-chromium: installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2

path="$(find_chromium)"
if [ -z "$path" ]; then
  echo "ensure-chromium: chromium was installed but no executable is on PATH" >&2
  exit 1
fi
echo "$path"
