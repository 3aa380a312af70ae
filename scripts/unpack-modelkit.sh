#!/bin/bash
# unpack-modelkit: fetch a ModelKit by tag or digest, verify it, and only then extract it.
#
# The one implementation of the unpack step. The cluster pipeline embeds this file's text in
# a container component running ghcr.io/kitops-ml/kitops-kubeflow (kit, jq, bash, busybox; no
# Python); the local pipeline runs the same file with bash. Interface of the KitOps Kubeflow
# unpack-modelkit component:
#
#   unpack-modelkit.sh <modelkit_reference> [extract_path]
#       [--plain-http true|false] [--artifact-dir <dir>] [--model-path-output <file>]
#       [--oci-layout <dir>]
#
# <modelkit_reference> is host:port/repo:tag or host:port/repo@sha256:... (a kit:// prefix is
# accepted). An empty extract_path means the artifact dir. --oci-layout unpacks from an OCI
# image layout already on disk (e.g. an air-gapped copy) instead of pulling with kit.
#
# How it stays safe: kit pulls into a private, empty store; the manifest is checked against
# the digest asked for (or the one the registry reported for the tag), every config and layer
# blob against the digest and size in the manifest, and every tar member of every layer is
# listed from its raw headers (pax and GNU long names included) before anything is written:
# absolute paths, ".." components, links leaving the extract path, members written through a
# symlink, and device or FIFO members are refused. Extraction goes to a staging directory
# beside extract_path that replaces it only when complete, so a refused or failed unpack
# leaves nothing behind.
# Environment: DOCKER_CONFIG (registry credentials), KIT_RETRIES (default 3), KIT_RETRY_DELAY.
set -euo pipefail
export LC_ALL=C # byte semantics for lengths and patterns

PROG=unpack-modelkit
KITOPS_CONFIG_TYPE="application/vnd.kitops.modelkit.config.v1+json"
MODELPACK_CONFIG_TYPE="application/vnd.cncf.model.config.v1+json"

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$PROG" "$*" >&2; }
# die exits 3; any other failure that set -e turns into an exit (a killed pipe, a failing
# command in a function) still leaves an ERROR line naming where, so no failure is silent.
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 3
}
unexpected() { # <status> <line> <command>
    if [ "$1" -ne 3 ] && [ "$BASHPID" = "$$" ]; then
        printf 'ERROR: %s stopped unexpectedly (exit %s) at line %s: %s\n' "$PROG" "$1" "$2" "$3" >&2
    fi
}
set -o errtrace
trap 'unexpected $? $LINENO "$BASH_COMMAND"' ERR

usage="usage: $PROG <modelkit_reference> [extract_path] [--plain-http true|false] [--artifact-dir DIR] [--model-path-output FILE] [--oci-layout DIR]"
POSITIONAL=()
PLAIN_HTTP=false ARTIFACT_DIR="" MODEL_PATH_OUTPUT=/tmp/outputs/model_path OCI_LAYOUT=""
while [ $# -gt 0 ]; do
    case $1 in
    --plain-http | --artifact-dir | --model-path-output | --oci-layout)
        [ $# -ge 2 ] || die "option $1 needs a value; $usage"
        case $1 in
        --plain-http) PLAIN_HTTP=$2 ;;
        --artifact-dir) ARTIFACT_DIR=$2 ;;
        --model-path-output) MODEL_PATH_OUTPUT=$2 ;;
        --oci-layout) OCI_LAYOUT=$2 ;;
        esac
        shift 2
        ;;
    --*) die "unknown option $1; $usage" ;;
    *)
        POSITIONAL+=("$1")
        shift
        ;;
    esac
done
if [ ${#POSITIONAL[@]} -lt 1 ] || [ ${#POSITIONAL[@]} -gt 2 ]; then die "$usage"; fi
REF=${POSITIONAL[0]#kit://}
EXTRACT=${POSITIONAL[1]:-}
[ -n "$EXTRACT" ] || EXTRACT=$ARTIFACT_DIR
[ -n "$EXTRACT" ] || EXTRACT=/tmp/model
PLAIN_HTTP=${PLAIN_HTTP,,} # KFP renders booleans as true/false, Python as True/False
case $PLAIN_HTTP in true | false) ;; *) die "--plain-http must be true or false, got '$PLAIN_HTTP'" ;; esac

# --- the reference -----------------------------------------------------------------------------

DIGEST="" TAG=""
if [[ $REF == *@* ]]; then
    NAME=${REF%@*} DIGEST=${REF#*@}
    [[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "reference $REF: '$DIGEST' is not a sha256 digest"
else
    last=${REF##*/}
    if [[ $last == *:* ]]; then NAME=${REF%:*} TAG=${last##*:}; else NAME=$REF TAG=latest; fi
fi
HOST=${NAME%%/*} REPOSITORY=${NAME#*/}
[[ $NAME == */* && -n $REPOSITORY ]] || die "reference $REF must be host:port/repository:tag or host:port/repository@sha256:..."
case $HOST in
*.* | *:* | localhost) ;;
*) die "reference $REF: '$HOST' is not a registry host (kit would read it as local storage; write host:port/repository)" ;;
esac

is_empty_dir() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ]; }
if [ -e "$EXTRACT" ] && ! is_empty_dir "$EXTRACT"; then
    die "extract path $EXTRACT exists and is not an empty directory (unpack never overwrites)"
fi

WORK=$(mktemp -d)
STAGE=""
cleanup() {
    rm -rf "$WORK"
    if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
}
trap cleanup EXIT

# --- fetch ---------------------------------------------------------------------------------------

run_kit() {
    local what=$1 attempts=${KIT_RETRIES:-3} delay=${KIT_RETRY_DELAY:-2} attempt=1 out
    shift
    while :; do
        if out=$("$@" 2>&1); then
            printf '%s\n' "$out"
            return 0
        fi
        if grep -qiE '(^|[^[:alnum:]])401([^[:alnum:]]|$)|unauthori[sz]ed|authentication required' <<<"$out"; then
            die "registry $HOST refused the credentials (401 Unauthorized) for $REF: check the auths entry for \"$HOST\" in ${DOCKER_CONFIG:-~/.docker}/config.json (the docker-config secret)"
        fi
        if grep -qiE 'not found|name unknown|manifest unknown' <<<"$out"; then
            die "ModelKit $REF not found in registry $HOST ($(tail -n 1 <<<"$out"))"
        fi
        if [ "$attempt" -ge "$attempts" ]; then
            die "$what of $REF failed after $attempts attempts: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        fi
        log "WARNING: $what of $REF failed (attempt $attempt/$attempts), retrying in ${delay}s"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
    done
}

command -v jq >/dev/null 2>&1 || die "jq is required but is not on PATH"
if [ -n "$OCI_LAYOUT" ]; then
    LAYOUT=$OCI_LAYOUT
    [ -d "$LAYOUT/blobs/sha256" ] || die "$LAYOUT is not an OCI image layout (no blobs/sha256)"
    if [ -z "$DIGEST" ]; then
        DIGEST=$(jq -r --arg tag "$TAG" --arg ref "$NAME:$TAG" 'first(.manifests[]? | select(
            .annotations["org.opencontainers.image.ref.name"] as $n | $n == $tag or $n == $ref) | .digest) // empty' \
            "$LAYOUT/index.json" 2>/dev/null || true)
        [ -n "$DIGEST" ] || die "ModelKit $REF not found in OCI layout $LAYOUT (no manifest tagged $TAG)"
    fi
else
    command -v kit >/dev/null 2>&1 || die "kit is required to pull $REF but is not on PATH (install it: https://kitops.org/docs/cli/installation/)"
    NET_FLAGS=()
    [ "$PLAIN_HTTP" = true ] && NET_FLAGS+=(--plain-http)
    # A private, empty kit store: nothing cached from earlier pulls is trusted.
    export KITOPS_HOME="$WORK/kitops"
    kit version --show-update-notifications=false >/dev/null 2>&1 || true
    if [ -z "$DIGEST" ]; then
        inspect=$(run_kit inspect kit inspect --remote "$REF" ${NET_FLAGS[@]+"${NET_FLAGS[@]}"})
        DIGEST=$(jq -r '.digest // empty' <<<"$inspect" 2>/dev/null || true)
        [[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not read the digest of $REF from kit inspect --remote"
        log "$REF resolves to $DIGEST"
    fi
    log "pulling $NAME@$DIGEST"
    run_kit pull kit pull "$NAME@$DIGEST" ${NET_FLAGS[@]+"${NET_FLAGS[@]}"} >&2
    # kit's store is OCI layout: one shared blobs/ under storage/ (kit >= 1.x), or one layout per
    # registry/repository (older kit). Either way the layout is where the manifest blob is.
    pulled=$(find "$KITOPS_HOME/storage" -type f -path "*/blobs/sha256/${DIGEST#sha256:}" 2>/dev/null | sed -n 1p)
    [ -n "$pulled" ] || die "kit pull of $NAME@$DIGEST left no manifest in $KITOPS_HOME/storage"
    LAYOUT=${pulled%/blobs/sha256/*}
fi
[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "manifest digest '$DIGEST' of $REF is not a sha256 digest"

# --- verify every blob -----------------------------------------------------------------------

verify_blob() { # <digest> <expected size or ""> <what>
    local digest=$1 size=$2 what=$3 file actual
    # The digest names a file: anything but sha256:<64 hex> could walk out of the store.
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "$what of $REF has an invalid digest '$digest'"
    file="$LAYOUT/blobs/sha256/${digest#sha256:}"
    if [ ! -f "$file" ]; then
        [ "$what" != manifest ] || die "ModelKit $REF not found in $LAYOUT (no manifest $digest)"
        die "$what $digest of $REF is missing from $LAYOUT (incomplete ModelKit)"
    fi
    if [ -n "$size" ] && [ "$(wc -c <"$file" | tr -d ' ')" != "$size" ]; then
        die "$what $digest of $REF has the wrong size (manifest says $size bytes): refusing to unpack"
    fi
    actual=$(sha256sum <"$file" | cut -d' ' -f1)
    [ "sha256:$actual" = "$digest" ] || die "$what of $REF fails verification: expected $digest, content hashes to sha256:$actual (corrupted or tampered)"
    printf '%s' "$file"
}

MANIFEST=$(verify_blob "$DIGEST" "" manifest)
jq -e 'type == "object" and (.layers | type == "array")' "$MANIFEST" >/dev/null 2>&1 || die "$REF ($DIGEST) is not an OCI image manifest"
CONFIG_TYPE=$(jq -r '.config.mediaType // empty' "$MANIFEST")
case $CONFIG_TYPE in
"$KITOPS_CONFIG_TYPE" | "$MODELPACK_CONFIG_TYPE") ;;
*) die "$REF is not a ModelKit (config media type '${CONFIG_TYPE:-none}')" ;;
esac
CONFIG=$(verify_blob "$(jq -r '.config.digest // empty' "$MANIFEST")" "$(jq -r '.config.size // empty' "$MANIFEST")" config)

# --- list every tar member from its raw header, before anything is extracted ------------------

HEADER="$WORK/header"
MEMBER_DATA="$WORK/member-data"
# Readers never stop early in these pipelines (sed -n 1p, not head): with pipefail, a writer
# killed by SIGPIPE would end the script without a word.
header_field() { dd if="$HEADER" bs=1 skip="$1" count="$2" 2>/dev/null | tr '\0' '\n' | sed -n 1p; }
header_has_newline() { [ "$(dd if="$HEADER" bs=1 skip="$1" count="$2" 2>/dev/null | tr -cd '\n' | wc -c)" -gt 0 ]; }
refuse() { die "refusing to unpack $REF: layer $LAYER_DIGEST: $*"; }

read_member_data() { # <tar> <offset of the header> <size>
    dd if="$1" of="$MEMBER_DATA.blocks" bs=512 skip=$(($2 / 512 + 1)) count=$((($3 + 511) / 512)) 2>/dev/null
    head -c "$3" "$MEMBER_DATA.blocks" >"$MEMBER_DATA"
}

parse_pax() { # sets PAX_PATH, PAX_LINK, PAX_SIZE from MEMBER_DATA
    local rec
    while IFS= read -r rec || [ -n "$rec" ]; do
        [[ $rec =~ ^([0-9]+)\ ([^=]+)=(.*)$ ]] || refuse "malformed pax header record"
        # The record length counts its newline; a mismatch means a newline inside a value.
        [ "${BASH_REMATCH[1]}" -eq $((${#rec} + 1)) ] || refuse "malformed pax header record (a newline in a value?)"
        case ${BASH_REMATCH[2]} in
        path) PAX_PATH=${BASH_REMATCH[3]} ;;
        linkpath) PAX_LINK=${BASH_REMATCH[3]} ;;
        size) PAX_SIZE=${BASH_REMATCH[3]} ;;
        esac
    done <"$MEMBER_DATA"
}

list_members() { # <tar>: prints "<type>\t<path>\t<link target>" per member
    local tar=$1 total offset=0 name type link magic prefix size_field size path target
    local long_name="" long_link=""
    PAX_PATH="" PAX_LINK="" PAX_SIZE=""
    total=$(wc -c <"$tar" | tr -d ' ')
    while [ $((offset + 512)) -le "$total" ]; do
        dd if="$tar" of="$HEADER" bs=512 skip=$((offset / 512)) count=1 2>/dev/null
        if [ "$(tr -d '\0' <"$HEADER" | wc -c)" -eq 0 ]; then return 0; fi # end-of-archive block
        if header_has_newline 0 100 || header_has_newline 157 100 || header_has_newline 345 155; then
            refuse "a member name contains a newline"
        fi
        name=$(header_field 0 100) type=$(header_field 156 1) link=$(header_field 157 100)
        magic=$(header_field 257 6) size_field=$(header_field 124 12)
        [ "$(od -An -tu1 -j124 -N1 "$HEADER" | tr -d ' ')" -lt 128 ] || refuse "member $name uses a base-256 size (not supported)"
        size_field=${size_field// /}
        [[ ${size_field:-0} =~ ^[0-7]+$ ]] || refuse "member $name has a malformed size field"
        size=$((8#${size_field:-0}))
        case $type in
        x | g | L | K)
            read_member_data "$tar" "$offset" "$size"
            case $type in
            x) parse_pax ;;
            g)
                PAX_PATH="" PAX_LINK=""
                parse_pax
                [ -z "$PAX_PATH$PAX_LINK" ] || refuse "a global pax header sets a path"
                PAX_SIZE=""
                ;;
            L | K)
                [ "$(tr -d '\0' <"$MEMBER_DATA" | tr -cd '\n' | wc -c)" -eq 0 ] || refuse "a member name contains a newline"
                if [ "$type" = L ]; then
                    long_name=$(tr '\0' '\n' <"$MEMBER_DATA" | sed -n 1p)
                else
                    long_link=$(tr '\0' '\n' <"$MEMBER_DATA" | sed -n 1p)
                fi
                ;;
            esac
            offset=$((offset + 512 + (size + 511) / 512 * 512))
            continue
            ;;
        esac
        if [ -n "$PAX_PATH" ]; then
            path=$PAX_PATH
        elif [ -n "$long_name" ]; then
            path=$long_name
        else
            path=$name
            # Only POSIX ustar headers have a prefix field; in GNU headers those bytes mean other things.
            if [ "$magic" = ustar ]; then
                prefix=$(header_field 345 155)
                [ -z "$prefix" ] || path="$prefix/$name"
            fi
        fi
        target=${PAX_LINK:-${long_link:-$link}}
        if [ -n "$PAX_SIZE" ]; then
            [[ $PAX_SIZE =~ ^[0-9]+$ ]] || refuse "member $path has a malformed pax size"
            size=$PAX_SIZE
        fi
        printf '%s\t%s\t%s\n' "${type:-0}" "$path" "$target"
        case ${type:-0} in
        0 | 7) offset=$((offset + 512 + (size + 511) / 512 * 512)) ;;
        *) offset=$((offset + 512)) ;; # links, directories, devices carry no data
        esac
        long_name="" long_link="" PAX_PATH="" PAX_LINK="" PAX_SIZE=""
    done
}

declare -A SYMLINKS=() FILES=()
normalize() { # strip ./ and // and trailing /, keep the path relative
    local p=$1
    while [[ $p == ./* ]]; do p=${p#./}; done
    while [[ $p == *//* ]]; do p=${p//\/\//\/}; done
    while [[ $p == */./* ]]; do p=${p//\/.\//\/}; done
    p=${p%/}
    [ "$p" = . ] && p=""
    printf '%s' "$p"
}
has_dotdot() { [[ /$1/ == */../* ]]; }

check_member() { # <type> <path> <target>
    local type=$1 raw=$2 target=$3 path prefix depth part dir
    [[ $raw != *[[:cntrl:]]* && $target != *[[:cntrl:]]* ]] || refuse "member ${raw@Q} contains control characters"
    [[ $raw != /* ]] || refuse "member $raw has an absolute path"
    if has_dotdot "$raw"; then refuse "member $raw contains a '..' path component"; fi
    path=$(normalize "$raw")
    if [ -z "$path" ]; then
        [ "$type" = 5 ] || refuse "member '$raw' has no name"
        return 0
    fi
    # Nothing may be written through a symlink: with that rule every write stays inside.
    prefix=$path
    while [[ $prefix == */* ]]; do
        prefix=${prefix%/*}
        [ -z "${SYMLINKS[$prefix]:-}" ] || refuse "member $path would be written through the symlink $prefix"
    done
    [ -z "${SYMLINKS[$path]:-}" ] || refuse "member $path replaces the symlink $path"
    case $type in
    0 | 7) FILES[$path]=1 ;;
    5) ;;
    2)
        [[ $target != /* ]] || refuse "symlink $path points to the absolute path $target"
        depth=0
        if [[ $path == */* ]]; then
            dir=${path%/*}
            depth=$(($(tr -cd '/' <<<"$dir" | wc -c) + 1))
        fi
        local parts=()
        IFS=/ read -r -a parts <<<"$target"
        for part in ${parts[@]+"${parts[@]}"}; do
            case $part in
            "" | .) ;;
            ..)
                depth=$((depth - 1))
                [ "$depth" -ge 0 ] || refuse "symlink $path -> $target leaves the extract path"
                ;;
            *) depth=$((depth + 1)) ;;
            esac
        done
        SYMLINKS[$path]=1
        ;;
    1)
        if [[ $target == /* ]] || has_dotdot "$target"; then
            refuse "hard link $path -> $target leaves the extract path"
        fi
        [ -n "${FILES[$(normalize "$target")]:-}" ] || refuse "hard link $path -> $target does not point to a file of this ModelKit"
        ;;
    3 | 4) refuse "member $path is a device node" ;;
    6) refuse "member $path is a FIFO" ;;
    *) refuse "member $path has the unsupported tar type '$type'" ;;
    esac
}

LAYER_TARS=()
index=0
while IFS=$'\t' read -r LAYER_DIGEST media_type size; do
    blob=$(verify_blob "$LAYER_DIGEST" "$size" "layer")
    case $media_type in
    *.tar) tarfile=$blob ;;
    *.tar+gzip)
        tarfile="$WORK/layer-$index.tar"
        gzip -dc <"$blob" >"$tarfile" 2>/dev/null || refuse "not a valid gzip stream"
        ;;
    *) refuse "unsupported layer media type $media_type" ;;
    esac
    list_members "$tarfile" >"$WORK/members"
    while IFS=$'\t' read -r type path target; do
        check_member "$type" "$path" "$target"
    done <"$WORK/members"
    LAYER_TARS+=("$tarfile")
    index=$((index + 1))
done < <(jq -r '.layers[] | [.digest, .mediaType, (.size | tostring)] | @tsv' "$MANIFEST")
log "verified manifest $DIGEST, config and ${#LAYER_TARS[@]} layer(s); no unsafe member"

# --- extract into staging, then put it in place ---------------------------------------------------

parent=$(dirname "$EXTRACT")
mkdir -p "$parent"
STAGE=$(mktemp -d "$parent/.unpack-$(basename "$EXTRACT").XXXXXX")
for tarfile in ${LAYER_TARS[@]+"${LAYER_TARS[@]}"}; do
    # -o: do not restore the archive's owners (the same flag in GNU and busybox tar)
    tar -x -o -f "$tarfile" -C "$STAGE" || die "extracting a layer of $REF failed"
done
if [ "$CONFIG_TYPE" = "$KITOPS_CONFIG_TYPE" ]; then
    # The ModelKit config is the Kitfile as JSON, which is also valid YAML.
    jq . "$CONFIG" >"$STAGE/Kitfile"
fi
stage_real=$(cd "$STAGE" && pwd -P)
while IFS= read -r -d '' link; do
    if resolved=$(readlink -f "$link" 2>/dev/null) && [ -n "$resolved" ]; then
        case $resolved in "$stage_real" | "$stage_real"/*) ;; *) die "refusing to unpack $REF: symlink ${link#"$STAGE"/} resolves outside the extract path" ;; esac
    fi
done < <(find "$STAGE" -type l -print0)

if [ -e "$EXTRACT" ]; then
    is_empty_dir "$EXTRACT" || die "extract path $EXTRACT was written to while unpacking"
    rmdir "$EXTRACT"
fi
chmod 755 "$STAGE"
mv "$STAGE" "$EXTRACT"
STAGE=""
if [ -n "$ARTIFACT_DIR" ] && [ "$ARTIFACT_DIR" != "$EXTRACT" ]; then
    mkdir -p "$ARTIFACT_DIR"
    cp -a "$EXTRACT/." "$ARTIFACT_DIR/"
fi
if [ -n "$MODEL_PATH_OUTPUT" ]; then
    mkdir -p "$(dirname "$MODEL_PATH_OUTPUT")"
    printf '%s' "$EXTRACT" >"$MODEL_PATH_OUTPUT.partial"
    mv -f "$MODEL_PATH_OUTPUT.partial" "$MODEL_PATH_OUTPUT"
fi
log "unpacked $NAME@$DIGEST to $EXTRACT"
jq -nc --arg path "$EXTRACT" --arg reference "$NAME@$DIGEST" '{status: "success", model_path: $path, reference: $reference}'
