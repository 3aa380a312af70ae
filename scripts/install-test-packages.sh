#!/usr/bin/env bash
# Debian packages only the tests use (idempotent):
#   busybox    - runs the push/unpack scripts on the same applets as the Alpine-based
#                kitops-kubeflow image, so their portability to the cluster is tested here;
#   shellcheck - lints scripts/*.sh.
# Tools the lab itself needs are installed by `lab tools install`, not here.
set -euo pipefail
packages=(busybox shellcheck)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "NOTE: ${missing[*]} not installed and this is not a root Debian shell; the tests that need them skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt run's dpkg lock instead of failing the test session.
apt=(apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { "${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null; }
echo "installed: ${missing[*]}"
