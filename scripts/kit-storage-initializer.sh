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

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# --- reference grammar: the same block in every chain script (tests keep the copies equal) -----
# A reference is data: it reaches kit only if it matches the OCI reference grammar
# (distribution/reference), so nothing that starts with '-', holds whitespace or shell syntax,
# or names local storage can be read as an option or run as code.
check_reference() { # <reference> <what>; returns only when the reference is safe
    local ref=$1 what=$2 component host path tag
    component='[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?'
    host="($component(\\.$component)*|\\[[0-9A-Fa-f:]+\\])(:[0-9]{1,5})?"
    path='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*'
    tag='[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
    case $ref in
    -*) die "$what ${ref@Q} starts with '-' (it would be read as an option): refusing it" ;;
    *[[:space:]]* | *[[:cntrl:]]*) die "$what ${ref@Q} contains whitespace or control characters: refusing it" ;;
    *\;* | *'$('* | *'`'* | *'|'* | *'&'* | *'<'* | *'>'*) die "$what ${ref@Q} contains shell syntax: refusing it" ;;
    esac
    [[ $ref =~ ^$host/$path(/$path)*(:$tag)?(@sha256:[0-9a-f]{64})?$ ]] ||
        die "$what ${ref@Q} is not an OCI reference host[:port]/repository[:tag][@sha256:<64 hex>]: refusing it"
    [ "${#ref}" -le 512 ] || die "$what is longer than 512 characters: refusing it"
    case ${ref%%/*} in
    *.* | *:* | localhost | \[*) ;;
    *) die "$what $ref: '${ref%%/*}' is not a registry host (kit would read it as local storage; write host:port/repository)" ;;
    esac
}
# --- end of the reference grammar -----------------------------------------------------------

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
    if grep -qiE '(^|[^[:alnum:]])401([^[:alnum:]]|$)|unauthori[sz]ed' <<<"$output"; then
        die "registry ${REFERENCE%%/*} refused the credentials (401 Unauthorized) unpacking $REFERENCE"
    fi
    die "kit unpack $REFERENCE failed: $(tail -n 1 <<<"$output")"
fi
printf '%s\n' "$output"
if [ -f "$DEST/Kitfile" ]; then cat "$DEST/Kitfile"; fi
