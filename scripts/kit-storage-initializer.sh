#!/bin/bash
# kit-storage-initializer: what KServe's kit:// storage initializer does, for the local lab.
#
# Behaves like the entrypoint of ghcr.io/kitops-ml/kitops-kserve (the `kitops`
# ClusterStorageContainer): log in with KIT_USER/KIT_PASSWORD when both are set, then
# `kit unpack <reference> -d <dest> $KIT_UNPACK_FLAGS`. The local lab runs it before starting
# the model server, so local serving fetches the model exactly as the cluster does.
#
#   kit-storage-initializer.sh kit://<host:port/repo@sha256:...> <dest-path>
#
# Environment: KIT_UNPACK_FLAGS (e.g. "--plain-http"), KIT_USER, KIT_PASSWORD, DOCKER_CONFIG,
# KITOPS_HOME (the caller gives a private one: a login never outlives the unpack).
set -euo pipefail

PROG=kit-storage-initializer
DIE_STATUS=1
# --- prelude: scripts/lib/prelude.sh (inlined here when a component carries this script) ---
PRELUDE_DIR=${BASH_SOURCE[0]%/*}
[[ ${BASH_SOURCE[0]} == */* ]] || PRELUDE_DIR=.
# shellcheck source=lib/prelude.sh
source "$PRELUDE_DIR/lib/prelude.sh"
# --- end of prelude ---

[ $# -eq 2 ] || die "usage: kit-storage-initializer.sh <kit://reference> <dest-path>"
case $1 in kit://*) ;; *) die "storage URI $1 does not start with kit://" ;; esac
REFERENCE=${1#kit://}
DEST=$2
# Fails closed: `kit://--help` once made kit print its help and the initializer exit 0.
check_reference "$REFERENCE" "storage URI kit://"
[ -n "$DEST" ] || die "the destination path is empty"
command -v kit >/dev/null 2>&1 || die "kit is required to unpack $1 but is not on PATH (install it: https://kitops.org/docs/cli/installation/)"
read -r -a UNPACK_FLAGS <<<"${KIT_UNPACK_FLAGS:-}"
kit version --show-update-notifications=false >/dev/null 2>&1 || true

if [ -n "${KIT_USER:-}" ] && [ -n "${KIT_PASSWORD:-}" ]; then
    REGISTRY=${REFERENCE%%/*}
    LOGIN_FLAGS=()
    for flag in ${UNPACK_FLAGS[@]+"${UNPACK_FLAGS[@]}"}; do
        [ "$flag" != --plain-http ] || LOGIN_FLAGS+=(--plain-http)
    done
    echo "Logging in to $REGISTRY as $KIT_USER"
    printf '%s' "$KIT_PASSWORD" | kit login --username="$KIT_USER" --password-stdin ${LOGIN_FLAGS[@]+"${LOGIN_FLAGS[@]}"} -- "$REGISTRY" ||
        die "kit login to $REGISTRY as $KIT_USER failed (401 Unauthorized?): check KIT_USER/KIT_PASSWORD"
fi

echo "Unpacking $REFERENCE to $DEST (flags: ${KIT_UNPACK_FLAGS:-none})"
if ! output=$(kit unpack --dir="$DEST" ${UNPACK_FLAGS[@]+"${UNPACK_FLAGS[@]}"} -- "$REFERENCE" 2>&1); then
    printf '%s\n' "$output" >&2
    if refused_credentials <<<"$output"; then
        die "registry ${REFERENCE%%/*} refused the credentials (401 Unauthorized) unpacking $REFERENCE"
    fi
    die "kit unpack $REFERENCE failed: $(tail -n 1 <<<"$output")"
fi
printf '%s\n' "$output"
if [ -f "$DEST/Kitfile" ]; then cat "$DEST/Kitfile"; fi
