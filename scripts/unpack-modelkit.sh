#!/bin/bash
# unpack-modelkit: fetch a ModelKit by tag or digest and extract only what its config vouches for.
#
# The one implementation of the unpack step. The cluster pipeline embeds this file's text in
# a container component running ghcr.io/kitops-ml/kitops-kubeflow (kit, jq, bash, busybox; no
# Python); the local pipeline runs the same file with bash. Interface of the KitOps Kubeflow
# unpack-modelkit component:
#
#   unpack-modelkit.sh <modelkit_reference> [extract_path]
#       [--plain-http true|false] [--artifact-dir <dir>] [--model-path-output <file>]
#       [--oci-layout <dir>] [--max-bytes <n>]
#
# <modelkit_reference> is host:port/repo:tag or host:port/repo@sha256:... (a kit:// prefix is
# accepted). An empty extract_path means the artifact dir. --oci-layout unpacks from an OCI
# image layout already on disk (e.g. an air-gapped copy) instead of pulling with kit.
# --max-bytes caps the bytes extracted (default: free space where extract_path goes, minus
# 64 MiB); the cap is enforced while streaming, before the bytes are written.
#
# The config is the contract. The manifest is checked against the digest asked for, the config
# blob against the manifest, and the config (the Kitfile as JSON) must declare every layer:
# the n-th layer of a kind (model, modelpart, code, dataset, docs) is the Kitfile's n-th entry
# of that kind and must carry that entry's digest, and every entry must have its layer. Then
# each layer is read once, as a stream: compressed bytes -> (sha256) -> gunzip -> sha256 ->
# a tar reader that checks each member header (relative path, no '..', under the entry's
# path, no write through a symlink, no device, no duplicate, within the byte cap) before it
# writes that member. The uncompressed stream must hash to the entry's diffId. That layer pass
# runs in one Python process where python3 is (scripts/lib/extract_layers.py, carried inline
# like the prelude: no pipes between processes, several times faster), else in this script
# (bash, dd, od, gzip, openssl or sha256sum); both check and say the same.
# Everything goes to a staging directory beside extract_path that replaces it only when all
# layers passed, so a refused or failed unpack leaves nothing behind. Integrity failures are
# final; only transient network failures of kit are retried.
# Environment: DOCKER_CONFIG (registry credentials), KIT_RETRIES (default 3), KIT_RETRY_DELAY,
# UNPACK_EXTRACTOR (auto, python or bash: the layer pass; auto takes python where it can),
# UNPACK_PYTHON (the interpreter of the Python pass; default python3 on PATH).
set -euo pipefail
# The tar reader ends each layer's pipeline and runs in this shell, so what it learns about
# one layer (files, symlinks, bytes extracted) holds for the next.
shopt -s lastpipe
export LC_ALL=C # byte semantics for lengths and patterns
umask 022

PROG=unpack-modelkit
KITOPS_CONFIG_TYPE="application/vnd.kitops.modelkit.config.v1+json"
MIB=1048576
TRANSIENT=75 # exit status of an extraction attempt that a network failure cut short: it is retried

QUIET_EXITS="3 $TRANSIENT"
# --- prelude: scripts/lib/prelude.sh (inlined here when a component carries this script) ---
PRELUDE_DIR=${BASH_SOURCE[0]%/*}
[[ ${BASH_SOURCE[0]} == */* ]] || PRELUDE_DIR=.
# shellcheck source=lib/prelude.sh
source "$PRELUDE_DIR/lib/prelude.sh"
# --- end of prelude ---
# --- extractor: scripts/lib/extract_layers.py (inlined here when a component carries this script) ---
extractor_source() { cat -- "$PRELUDE_DIR/lib/extract_layers.py"; }
# --- end of extractor ---

usage="usage: $PROG <modelkit_reference> [extract_path] [--plain-http true|false] [--artifact-dir DIR] [--model-path-output FILE] [--oci-layout DIR] [--max-bytes N]"
POSITIONAL=()
PLAIN_HTTP=false ARTIFACT_DIR="" MODEL_PATH_OUTPUT=/tmp/outputs/model_path OCI_LAYOUT="" MAX_BYTES=""
while [ $# -gt 0 ]; do
    case $1 in
    --plain-http | --artifact-dir | --model-path-output | --oci-layout | --max-bytes)
        [ $# -ge 2 ] || die "option $1 needs a value; $usage"
        case $1 in
        --plain-http) PLAIN_HTTP=$2 ;;
        --artifact-dir) ARTIFACT_DIR=$2 ;;
        --model-path-output) MODEL_PATH_OUTPUT=$2 ;;
        --oci-layout) OCI_LAYOUT=$2 ;;
        --max-bytes) MAX_BYTES=$2 ;;
        esac
        shift 2
        ;;
    --)
        shift
        POSITIONAL+=("$@")
        break
        ;;
    --*) die "unknown option $1; $usage" ;;
    *)
        POSITIONAL+=("$1")
        shift
        ;;
    esac
done
if [ ${#POSITIONAL[@]} -lt 1 ] || [ ${#POSITIONAL[@]} -gt 2 ]; then die "$usage"; fi
START=$EPOCHREALTIME
REF=${POSITIONAL[0]#kit://}
EXTRACT=${POSITIONAL[1]:-}
[ -n "$EXTRACT" ] || EXTRACT=$ARTIFACT_DIR
[ -n "$EXTRACT" ] || EXTRACT=/tmp/model
PLAIN_HTTP=${PLAIN_HTTP,,} # KFP renders booleans as true/false, Python as True/False
case $PLAIN_HTTP in true | false) ;; *) die "--plain-http must be true or false, got '$PLAIN_HTTP'" ;; esac
[ -z "$MAX_BYTES" ] || [[ $MAX_BYTES =~ ^[0-9]{1,18}$ ]] || die "--max-bytes must be a number of bytes, got '$MAX_BYTES'"
# The layer pass: in one Python process where python3 is (scripts/lib/extract_layers.py: the
# same checks and messages, without a pipe between processes), else in this shell.
# UNPACK_EXTRACTOR=bash or python chooses; empty or auto: python where it can. UNPACK_PYTHON
# names the interpreter (default: python3 on PATH; the lab passes its own, a version-manager
# shim costs a tenth of a second to start).
PYTHON=${UNPACK_PYTHON:-python3}
case ${UNPACK_EXTRACTOR:-auto} in
auto) if command -v "$PYTHON" >/dev/null 2>&1; then EXTRACTOR=python; else EXTRACTOR=bash; fi ;;
python)
    command -v "$PYTHON" >/dev/null 2>&1 || die "UNPACK_EXTRACTOR=python but $PYTHON is not on PATH"
    EXTRACTOR=python
    ;;
bash) EXTRACTOR=bash ;;
*) die "UNPACK_EXTRACTOR must be auto, python or bash, got ${UNPACK_EXTRACTOR@Q}" ;;
esac

# --- the reference -----------------------------------------------------------------------------

if [[ $REF == *@* && ${REF%@*} != *@* ]]; then
    DIGEST=${REF#*@}
    [[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "reference ${REF@Q}: ${DIGEST@Q} is not a sha256 digest"
fi
check_reference "$REF" reference
DIGEST="" TAG=""
NAME=${REF%@*}
[[ $REF != *@* ]] || DIGEST=${REF#*@}
last=${NAME##*/}
if [[ $last == *:* ]]; then TAG=${last##*:} NAME=${NAME%:*}; fi
[ -n "$DIGEST" ] || [ -n "$TAG" ] || TAG=latest
HOST=${NAME%%/*}

is_empty_dir() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ]; }
if [ -e "$EXTRACT" ] && ! is_empty_dir "$EXTRACT"; then
    die "extract path $EXTRACT exists and is not an empty directory (unpack never overwrites)"
fi

WORK=$(mktemp -d)
STAGE=""
HASHERS=()
cleanup() {
    local pid
    for pid in ${HASHERS[@]+"${HASHERS[@]}"}; do kill "$pid" 2>/dev/null || true; done
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
        if refused_credentials <<<"$out"; then
            die "registry $HOST refused the credentials (401 Unauthorized) for $REF: check the auths entry for \"$HOST\" in ${DOCKER_CONFIG:-~/.docker}/config.json (the docker-config secret)"
        fi
        if grep -qiE 'not found|name unknown|manifest unknown' <<<"$out"; then
            die "ModelKit $REF not found in registry $HOST ($(tail -n 1 <<<"$out"))"
        fi
        if failed_verification <<<"$out"; then
            die "$what of $REF fails verification (not retried: integrity errors are final): $(tail -n 1 <<<"$out")"
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
retry_or_die() { # <attempt> <what failed>: sleep before the next attempt, or give up
    local delay=$((${KIT_RETRY_DELAY:-2} << ($1 - 1)))
    [ "$1" -lt "${KIT_RETRIES:-3}" ] || die "$2 (after $1 attempts)"
    log "WARNING: $2 (attempt $1/${KIT_RETRIES:-3}), retrying in ${delay}s"
    sleep "$delay"
}

# --- HTTP: the registry API straight into the stream (when curl is here and can authenticate) ---
# kit pull would first store each blob and the tar reader then read it back: a full extra copy.
# With curl each layer flows from the socket through the hashes into the tar reader once.
SCHEME=https
[ "$PLAIN_HTTP" = false ] || SCHEME=http
REPOSITORY=${NAME#*/}
TOKEN_TRIED=""
registry_credentials() { # the Authorization header file from DOCKER_CONFIG; fails if a helper holds them
    local config="${DOCKER_CONFIG:-${HOME:-}/.docker}/config.json" auth
    : >"$WORK/auth"
    [ -f "$config" ] || return 0
    auth=$(jq -r --arg h "$HOST" 'if (.credsStore // "") != "" or ((.credHelpers // {}) | has($h)) then "-helper-"
        else .auths // {} | (.[$h] // .["https://" + $h] // .["http://" + $h] // {}) | .auth // "" end' "$config" 2>/dev/null) || return 1
    [[ $auth =~ ^[A-Za-z0-9+/=]*$ ]] || return 1
    # In a file, never in argv (other users can read a process's arguments).
    [ -z "$auth" ] || printf 'Authorization: Basic %s\n' "$auth" >"$WORK/auth"
}
bearer_token() { # exchange the credentials for the token a 401's Bearer challenge asks for
    local challenge realm service token
    TOKEN_TRIED=1
    challenge=$(tr -d '\r' <"$WORK/headers" | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *[Bb]earer *//p' | sed -n 1p)
    realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
    service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
    [[ $realm == https://* || $realm == http://* ]] || return 1
    token=$(curl -fsSL -G -H @"$WORK/auth" --data-urlencode "service=$service" \
        --data-urlencode "scope=repository:$REPOSITORY:pull" "$realm" 2>/dev/null | jq -r '.token // .access_token // empty') || return 1
    [ -n "$token" ] || return 1
    printf 'Authorization: Bearer %s\n' "$token" >"$WORK/auth"
}
http_get() { # <path under /v2/<repository>/> <output file> <accept>: 0, or 4 for 404; retries what is transient
    local url="$SCHEME://$HOST/v2/$REPOSITORY/$1" attempt=1 code
    while :; do
        code=$(curl -sSL -o "$2" -D "$WORK/headers" -w '%{http_code}' -H @"$WORK/auth" -H "Accept: $3" "$url" 2>"$WORK/curl.err") || code=000
        if [ "$code" = 401 ] && [ -z "$TOKEN_TRIED" ] && bearer_token; then continue; fi
        case $code in
        2??) return 0 ;;
        401 | 403) die "registry $HOST refused the credentials ($code) for $REF: check the auths entry for \"$HOST\" in ${DOCKER_CONFIG:-~/.docker}/config.json (the docker-config secret)" ;;
        404) return 4 ;;
        000 | 408 | 429 | 5??) retry_or_die "$attempt" "GET $url failed ($([ "$code" = 000 ] && sed -n 1p "$WORK/curl.err" || printf 'HTTP %s' "$code"))" ;;
        *) die "registry $HOST answered HTTP $code to GET $url" ;;
        esac
        attempt=$((attempt + 1))
    done
}

manifest_fields() { # <manifest>: "ok<TAB>config media type<TAB>config digest<TAB>config size", one jq run
    jq -r 'if type == "object" and (.layers | type == "array") and (.config | type == "object")
        then ["ok", (.config | .mediaType, .digest, .size | . // "" | tostring)] else ["bad", "", "", ""] end | @tsv' "$1" 2>/dev/null ||
        printf 'bad\t\t\t\n'
}

# kit's pull verifies every blob against its digest while it writes it (its ingest verifier):
# hashing those blobs again would be double hashing. An OCI layout on disk was verified by
# nobody, and blobs streamed over HTTP are hashed on the way.
BLOBS_VERIFIED=false
if [ -n "$OCI_LAYOUT" ]; then
    FETCH=layout
elif [ "${UNPACK_FETCH:-http}" = http ] && command -v curl >/dev/null 2>&1 && registry_credentials; then
    FETCH=http
else
    FETCH=kit
fi
if [ "$FETCH" = layout ]; then
    LAYOUT=$OCI_LAYOUT
    [ -d "$LAYOUT/blobs/sha256" ] || die "$LAYOUT is not an OCI image layout (no blobs/sha256)"
    if [ -z "$DIGEST" ]; then
        DIGEST=$(jq -r --arg tag "$TAG" --arg ref "$NAME:$TAG" 'first(.manifests[]? | select(
            .annotations["org.opencontainers.image.ref.name"] as $n | $n == $tag or $n == $ref) | .digest) // empty' \
            "$LAYOUT/index.json" 2>/dev/null || true)
        [ -n "$DIGEST" ] || die "ModelKit $REF not found in OCI layout $LAYOUT (no manifest tagged $TAG)"
    fi
elif [ "$FETCH" = http ]; then
    # The manifest and config land in a small layout of their own; the layers never land.
    LAYOUT="$WORK/layout"
    mkdir -p "$LAYOUT/blobs/sha256"
    log "fetching $NAME@${DIGEST:-$TAG} over $SCHEME"
    manifest_type="application/vnd.oci.image.manifest.v1+json"
    http_get "manifests/${DIGEST:-$TAG}" "$WORK/manifest" "$manifest_type" || die "ModelKit $REF not found in registry $HOST"
    fetched="sha256:$(sha256sum <"$WORK/manifest" | cut -d' ' -f1)"
    [ -n "$DIGEST" ] || DIGEST=$fetched
    # Filed under the digest asked for: if the bytes hash to another, verification says so.
    mv "$WORK/manifest" "$LAYOUT/blobs/sha256/${DIGEST#sha256:}"
    config_digest=""
    [ "$fetched" != "$DIGEST" ] || IFS=$'\t' read -r _ _ config_digest _ < <(manifest_fields "$LAYOUT/blobs/sha256/${DIGEST#sha256:}")
    if [ "$fetched" = "$DIGEST" ] && [[ $config_digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
        http_get "blobs/$config_digest" "$LAYOUT/blobs/sha256/${config_digest#sha256:}" "*/*" ||
            die "config $config_digest of $REF is missing from registry $HOST (incomplete ModelKit)"
    fi
else
    command -v kit >/dev/null 2>&1 || die "kit is required to pull $REF but is not on PATH (install it: https://kitops.org/docs/cli/installation/)"
    NET_FLAGS=()
    [ "$PLAIN_HTTP" = true ] && NET_FLAGS+=(--plain-http)
    # A private, empty kit store: nothing cached from earlier pulls is trusted.
    export KITOPS_HOME="$WORK/kitops"
    if [ -z "$DIGEST" ]; then
        inspect=$(run_kit inspect kit inspect --remote ${NET_FLAGS[@]+"${NET_FLAGS[@]}"} -- "$NAME:$TAG")
        DIGEST=$(jq -r '.digest // empty' <<<"$inspect" 2>/dev/null || true)
        [[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not read the digest of $REF from kit inspect --remote"
        log "$REF resolves to $DIGEST"
    fi
    log "pulling $NAME@$DIGEST"
    run_kit pull kit pull ${NET_FLAGS[@]+"${NET_FLAGS[@]}"} -- "$NAME@$DIGEST" >&2
    BLOBS_VERIFIED=true
    # kit's store is OCI layout: one shared blobs/ under storage/ (kit >= 1.x), or one layout per
    # registry/repository (older kit). Either way the layout is where the manifest blob is.
    pulled=$(find "$KITOPS_HOME/storage" -type f -path "*/blobs/sha256/${DIGEST#sha256:}" 2>/dev/null | sed -n 1p)
    [ -n "$pulled" ] || die "kit pull of $NAME@$DIGEST left no manifest in $KITOPS_HOME/storage"
    LAYOUT=${pulled%/blobs/sha256/*}
fi
FETCHED=$EPOCHREALTIME
[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "manifest digest '$DIGEST' of $REF is not a sha256 digest"

# --- the manifest and the config: small, verified, parsed before any layer is read --------------

blob_path() { # <digest> <expected size or ""> <what>
    local digest=$1 size=$2 what=$3 file
    # The digest names a file: anything but sha256:<64 hex> could walk out of the store.
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "$what of $REF has an invalid digest ${digest@Q}"
    file="$LAYOUT/blobs/sha256/${digest#sha256:}"
    if [ ! -f "$file" ]; then
        [ "$what" != manifest ] || die "ModelKit $REF not found in $LAYOUT (no manifest $digest)"
        die "$what $digest of $REF is missing from $LAYOUT (incomplete ModelKit)"
    fi
    if [ -n "$size" ] && [ "$(stat -c %s "$file")" != "$size" ]; then
        die "$what $digest of $REF has the wrong size (manifest says $size bytes): refusing to unpack"
    fi
    printf '%s' "$file"
}
verify_small_blob() { # <digest> <expected size or ""> <what>: hash a manifest or config
    local file actual
    file=$(blob_path "$@")
    actual=$(sha256sum <"$file" | cut -d' ' -f1)
    [ "sha256:$actual" = "$1" ] || die "$3 of $REF fails verification: expected $1, content hashes to sha256:$actual (corrupted or tampered)"
    printf '%s' "$file"
}

MANIFEST=$(verify_small_blob "$DIGEST" "" manifest)
IFS=$'\t' read -r manifest_ok CONFIG_TYPE config_digest config_size < <(manifest_fields "$MANIFEST")
[ "$manifest_ok" = ok ] || die "$REF ($DIGEST) is not an OCI image manifest"
case $CONFIG_TYPE in
"$KITOPS_CONFIG_TYPE") ;;
application/vnd.cncf.model.config.v1+json) die "$REF is a CNCF ModelPack artifact: only KitOps ModelKits (config $KITOPS_CONFIG_TYPE) can be unpacked" ;;
*) die "$REF is not a ModelKit (config media type '${CONFIG_TYPE:-none}')" ;;
esac
CONFIG=$(verify_small_blob "$config_digest" "$config_size" config)
refuse() { die "refusing to unpack $REF: $*"; }

# The plan: one line per manifest layer with the Kitfile entry that vouches for it, or REFUSE.
# kit's own rule pairs layers and entries: the n-th layer of a kind is the n-th entry of it,
# entries in Kitfile order (model, its parts, code, datasets, docs).
PLAN="$WORK/plan"
jq -r --slurpfile config "$CONFIG" '
  def plain: test("^[A-Za-z0-9_/][A-Za-z0-9 _./+-]*$") and (test(" $") | not)
    and (test("^(true|false|yes|no|on|off|y|n|null|~)$"; "i") | not) and (test("^[-+0-9._ ]+$") | not);
  def scalar: if type == "string" then (if plain then . else tojson end) elif type == "null" then "null" else tojson end;
  def flow: if type == "array" then (if length == 0 then "[]" else "[" + (map(scalar) | join(", ")) + "]" end)
    elif type == "object" then "{}" else scalar end;
  def is_flow: (type != "object" and type != "array") or length == 0
    or (type == "array" and all(.[]; type != "object" and type != "array"));
  def yaml($indent):
    if type == "object" then
      to_entries[] | (.key | scalar) as $k | .value as $v
      | if ($v | is_flow) then "\($indent)\($k): \($v | flow)" else "\($indent)\($k):", ($v | yaml($indent + "  ")) end
    else
      .[] | if is_flow then "\($indent)- \(flow)"
            else [yaml($indent + "  ")] as $lines
            | ("\($indent)- " + ($lines[0] | .[($indent | length) + 2:])), $lines[1:][] end
    end;
  def layer_info: if type == "object" then del(.digest, .diffId) else . end;
  def kitfile_yaml:
    .model |= (if type == "object" then layer_info | (if (.parts | type) == "array" then .parts |= map(layer_info) else . end) else . end)
    | reduce ("code", "datasets", "docs") as $k (.; if (.[$k] | type) == "array" then .[$k] |= map(layer_info) else . end)
    | with_entries(select(.value != null))
    | yaml("");
  def sha: type == "string" and test("^sha256:[0-9a-f]{64}$");
  def array_of($name): if . == null then [] elif type == "array" then . else error("\($name) is not a list") end;
  $config[0] as $c
  | if ($c | type) != "object" or ($c.manifestVersion | type) != "string" then error("it is not a Kitfile (no manifestVersion)") else . end
  | ($c.model // null) as $model
  | if $model != null and ($model | type) != "object" then error("model is not a mapping") else . end
  | ([if $model != null and (($model.path // "") != "") then {kind: "model", e: $model} else empty end]
     + ($model.parts // null | array_of("model.parts") | map({kind: "modelpart", e: .}))
     + ($c.code | array_of("code") | map({kind: "code", e: .}))
     + ($c.datasets | array_of("datasets") | map({kind: "dataset", e: .}))
     + ($c.docs | array_of("docs") | map({kind: "docs", e: .}))) as $entries
  | reduce (.layers | to_entries[]) as $item ({n: {}, out: []};
      $item.value as $l
      | ($l.digest | if type == "string" then . else tostring end) as $d
      | (if ($l.mediaType | type) == "string" then ($l.mediaType | capture(
          "^application/vnd\\.kitops\\.modelkit\\.(?<kind>model|modelpart|code|dataset|docs)\\.v1\\.tar(?<gz>\\+gzip)?$")) // null
         else null end) as $t
      | if $t == null then .out += ["REFUSE\tlayer \($d) has media type \($l.mediaType | tostring), which is no ModelKit layer type"]
        else (.n[$t.kind] // 0) as $i
        | .n[$t.kind] = $i + 1
        | ([$entries[] | select(.kind == $t.kind)][$i]) as $entry
        | if $entry == null then
            .out += ["REFUSE\tlayer \($d) (\($t.kind)) is not declared in the Kitfile (it lists \([$entries[] | select(.kind == $t.kind)] | length) \($t.kind) entries; this is \($t.kind) layer \($i + 1))"]
          elif ($entry.e | type) != "object" or ($entry.e.path | type) != "string" or ($entry.e.path == "") then
            .out += ["REFUSE\tlayer \($d) (\($t.kind)): its Kitfile entry has no path"]
          elif ($entry.e.path | explode | any(. < 32 or . == 127)) then
            .out += ["REFUSE\tlayer \($d) (\($t.kind)): its Kitfile path \($entry.e.path | tojson) contains control characters"]
          elif $entry.e.digest != $d then
            .out += ["REFUSE\tlayer \($d) (\($t.kind) \($entry.e.path)): the Kitfile entry says digest \($entry.e.digest // "none" | tostring)"]
          elif ($entry.e.diffId | sha | not) then
            .out += ["REFUSE\tlayer \($d) (\($t.kind) \($entry.e.path)): the Kitfile entry has no sha256 diffId"]
          elif (($t.gz // "") == "") and $entry.e.diffId != $d then
            .out += ["REFUSE\tlayer \($d) (\($t.kind) \($entry.e.path)): an uncompressed layer must have diffId = digest, the Kitfile says \($entry.e.diffId)"]
          else .out += [["LAYER", $d, ($l.size | tostring), $t.kind, (if $t.gz then "gzip" else "none" end), $entry.e.path, $entry.e.diffId] | join("\t")]
          end
        end)
  | . as $state
  | $state.out[],
    ($entries | group_by(.kind)[] | .[0].kind as $k | .[($state.n[$k] // 0):][]
     | "REFUSE\tthe Kitfile declares \(.kind) \(.e.path // "" | tostring) but the manifest has no layer for it"),
    ($c | kitfile_yaml | "KITFILE\t" + .)
' "$MANIFEST" >"$PLAN" 2>"$WORK/plan.err" || refuse "the config of $DIGEST is not a Kitfile this unpack understands: $(sed -n 's/^jq: error[^:]*: //p' "$WORK/plan.err" | sed -n 1p)"

: >"$WORK/Kitfile"
LAYERS=()
while IFS= read -r line; do
    case $line in
    REFUSE$'\t'*) refuse "${line#REFUSE$'\t'}" ;;
    LAYER$'\t'*) LAYERS+=("${line#LAYER$'\t'}") ;;
    KITFILE$'\t'*) printf '%s\n' "${line#KITFILE$'\t'}" >>"$WORK/Kitfile" ;;
    *) refuse "the config of $DIGEST could not be read" ;;
    esac
done <"$PLAN"
log "the config vouches for all ${#LAYERS[@]} layer(s) of $DIGEST"

# Entry paths are checked before any layer is read: relative, no '..', no control characters.
normalize() { # sets NORM: strip ./ and // and trailing /, keep the path relative (no subshell)
    NORM=$1
    while [[ $NORM == ./* ]]; do NORM=${NORM#./}; done
    while [[ $NORM == *//* ]]; do NORM=${NORM//\/\//\/}; done
    while [[ $NORM == */./* ]]; do NORM=${NORM//\/.\//\/}; done
    NORM=${NORM%/}
    [ "$NORM" != . ] || NORM=""
}
has_dotdot() { [[ /$1/ == */../* ]]; }
for layer in ${LAYERS[@]+"${LAYERS[@]}"}; do
    IFS=$'\t' read -r digest _ kind _ path _ <<<"$layer"
    [[ $path != *[[:cntrl:]]* ]] || refuse "layer $digest ($kind): its Kitfile path ${path@Q} contains control characters"
    [[ $path != /* ]] || refuse "layer $digest ($kind): its Kitfile path $path is absolute"
    if has_dotdot "$path"; then refuse "layer $digest ($kind): its Kitfile path $path leaves the ModelKit"; fi
done

# --- the byte cap ------------------------------------------------------------------------------

EXTRACT=${EXTRACT%/}
[ -n "$EXTRACT" ] || die "the extract path cannot be /"
parent=${EXTRACT%/*} EXTRACT_NAME=${EXTRACT##*/}
[[ $EXTRACT == */* ]] || parent=.
[ -n "$parent" ] || parent=/
mkdir -p "$parent"
if [ -z "$MAX_BYTES" ]; then
    free_kib=$(df -Pk "$parent" | awk 'NR == 2 { print $4 }')
    [[ $free_kib =~ ^[0-9]+$ ]] || die "could not read the free space of $parent (df -Pk)"
    MAX_BYTES=$((free_kib * 1024 - 64 * MIB))
    [ "$MAX_BYTES" -gt 0 ] || MAX_BYTES=0
    CAP_SOURCE="free space of $parent minus 64 MiB; --max-bytes sets it"
else
    CAP_SOURCE="--max-bytes"
fi
EXTRACTED=0

# --- one streaming tar reader: check each member, then write it ---------------------------------

HDR="$WORK/header" DATA="$WORK/member-data"
declare -A SEEN=() SYMLINKS=() MADE=()
SEEN[Kitfile]=K # written from the config at the end; kit never packs a Kitfile into a layer

# Reads <pad> bytes of the previous member's padding and the next 512-byte header from stdin
# into HEX (" xx" per byte). dd reads exactly what it is asked for from a pipe (fullblock).
read_header() { # <pad>
    local out
    dd bs=$(($1 + 512)) count=1 iflag=fullblock of="$HDR" 2>/dev/null
    # A stream that ends inside the padding leaves od nothing to skip to: a short header too.
    out=$(od -An -v -tx1 -j "$1" -N 512 "$HDR" 2>/dev/null) || out=""
    HEX=${out//$'\n'/}
    if [ "${#HEX}" -ne 1536 ]; then
        [ ! -s "$WORK/fetch.status" ] || fetch_failed
        if [ -s "$WORK/gunzip.status" ]; then
            refuse "$WHERE: not a valid gzip stream (corrupted or tampered; $(gunzip_said))"
        fi
        refuse "$WHERE: the tar stream ends without an end-of-archive marker"
    fi
}
field() { # <variable> <offset> <length>: the NUL-terminated text of a header field (no subshell)
    local f=${HEX:$(($2 * 3)):$(($3 * 3))}
    f=${f%% 00*}
    printf -v "$1" '%b' "${f// /\\x}"
}
field_has_control() { # <offset> <length>
    local f=${HEX:$(($1 * 3)):$(($2 * 3))}
    f=${f%% 00*}
    [[ $f =~ \ (0[1-9a-f]|1[0-9a-f]|7f) ]]
}
read_data() { # <size>: the member's data and padding into DATA
    local blocks=$((($1 + 511) / 512))
    [ "$blocks" -eq 0 ] && : >"$DATA" && return 0
    dd bs=$((blocks * 512)) count=1 iflag=fullblock of="$DATA.blocks" 2>/dev/null
    [ "$(stat -c %s "$DATA.blocks")" -eq $((blocks * 512)) ] || refuse "$WHERE: the tar stream ends inside a member"
    head -c "$1" "$DATA.blocks" >"$DATA"
}
parse_pax() { # sets PAX_PATH, PAX_LINK, PAX_SIZE from DATA
    local rec
    while IFS= read -r rec || [ -n "$rec" ]; do
        [[ $rec =~ ^([0-9]+)\ ([^=]+)=(.*)$ ]] || refuse "$WHERE: malformed pax header record"
        # The record length counts its newline; a mismatch means a newline inside a value.
        [ "${BASH_REMATCH[1]}" -eq $((${#rec} + 1)) ] || refuse "$WHERE: malformed pax header record (a newline in a value?)"
        case ${BASH_REMATCH[2]} in
        path) PAX_PATH=${BASH_REMATCH[3]} ;;
        linkpath) PAX_LINK=${BASH_REMATCH[3]} ;;
        size) PAX_SIZE=${BASH_REMATCH[3]} ;;
        esac
    done <"$DATA"
}

check_member() { # <type> <raw path> <link target> <size>: refuse, or set MEMBER to the normalized path
    local type=$1 raw=$2 target=$3 size=$4 path prefix depth part parts
    [[ $raw != *[[:cntrl:]]* && $target != *[[:cntrl:]]* ]] || refuse "$WHERE: member ${raw@Q} contains control characters"
    [[ $raw != /* ]] || refuse "$WHERE: member $raw has an absolute path"
    if has_dotdot "$raw"; then refuse "$WHERE: member $raw contains a '..' path component"; fi
    normalize "$raw"
    path=$NORM
    [[ $path != /* ]] || refuse "$WHERE: member $raw has an absolute path" # "./" stripped from ".//x"
    MEMBER=$path
    if [ -z "$path" ]; then
        [ "$type" = 5 ] || refuse "$WHERE: member '$raw' has no name"
        return 0
    fi
    # Every member lies under its entry's path; kit also writes the directories above that path.
    if [ -n "$ENTRY_PATH" ] && [ "$path" != "$ENTRY_PATH" ] && [[ $path != "$ENTRY_PATH"/* ]]; then
        [[ $type == 5 && $ENTRY_PATH == "$path"/* ]] || refuse "$WHERE: member $path lies outside the entry's path $ENTRY_PATH"
    fi
    # Nothing may be written through a symlink or under a file: then every write stays inside.
    prefix=$path
    while [[ $prefix == */* ]]; do
        prefix=${prefix%/*}
        [ -z "${SYMLINKS[$prefix]:-}" ] || refuse "$WHERE: member $path would be written through the symlink $prefix"
        case ${SEEN[$prefix]:-5} in 5) ;; *) refuse "$WHERE: member $path would be written under the file $prefix" ;; esac
    done
    [ -z "${SYMLINKS[$path]:-}" ] || refuse "$WHERE: member $path replaces the symlink $path"
    if [ -n "${SEEN[$path]:-}" ] && [ "$type${SEEN[$path]}" != 55 ]; then
        [ "$path" != Kitfile ] || refuse "$WHERE: member Kitfile would replace the Kitfile written from the config"
        refuse "$WHERE: member $path appears twice (a duplicate entry would replace what was checked)"
    fi
    case $type in
    0 | 7)
        [ $((EXTRACTED + size)) -le "$MAX_BYTES" ] ||
            refuse "$WHERE: member $path ($size bytes) would take the extracted bytes past the cap of $MAX_BYTES ($CAP_SOURCE)"
        EXTRACTED=$((EXTRACTED + size))
        ;;
    5) ;;
    2)
        [[ $target != /* ]] || refuse "$WHERE: symlink $path points to the absolute path $target"
        depth=0
        [[ $path != */* ]] || depth=$(($(tr -cd '/' <<<"${path%/*}" | wc -c) + 1))
        parts=()
        IFS=/ read -r -a parts <<<"$target"
        for part in ${parts[@]+"${parts[@]}"}; do
            case $part in
            "" | .) ;;
            ..)
                depth=$((depth - 1))
                [ "$depth" -ge 0 ] || refuse "$WHERE: symlink $path -> $target leaves the extract path"
                ;;
            *) depth=$((depth + 1)) ;;
            esac
        done
        SYMLINKS[$path]=1
        ;;
    1)
        if [[ $target == /* ]] || has_dotdot "$target"; then
            refuse "$WHERE: hard link $path -> $target leaves the extract path"
        fi
        normalize "$target"
        [ "${SEEN[$NORM]:-}" = 0 ] || refuse "$WHERE: hard link $path -> $target does not point to a file of this ModelKit"
        ;;
    3 | 4) refuse "$WHERE: member $path is a device node" ;;
    6) refuse "$WHERE: member $path is a FIFO" ;;
    *) refuse "$WHERE: member $path has the unsupported tar type '$type'" ;;
    esac
    SEEN[$path]=${type/7/0}
}

make_parent() { # <path>: create the directories above a member (never through a symlink: checked)
    local dir=${1%/*}
    [[ $1 == */* ]] || return 0
    [ -z "${MADE[$dir]:-}" ] || return 0
    mkdir -p "$STAGE/$dir"
    while :; do
        MADE[$dir]=1
        [ -n "${SEEN[$dir]:-}" ] || SEEN[$dir]=5
        [[ $dir == */* ]] || break
        dir=${dir%/*}
    done
}

extract_stream() { # the uncompressed tar stream on stdin
    local pad=0 type name link magic size_field size mode path prefix target long_name="" long_link="" rest
    PAX_PATH="" PAX_LINK="" PAX_SIZE=""
    while :; do
        read_header "$pad"
        pad=0
        if [[ $HEX =~ ^(\ 00)+$ ]]; then # end-of-archive: the rest (zero padding) is only hashed
            rest=$(head -c $((MIB + 1)) | wc -c)
            [ "$rest" -le "$MIB" ] || refuse "$WHERE: more than 1 MiB follows the end-of-archive marker"
            return 0
        fi
        if field_has_control 0 100 || field_has_control 157 100 || field_has_control 345 155; then
            refuse "$WHERE: a member name contains control characters (a newline?)"
        fi
        field name 0 100
        field type 156 1
        field link 157 100
        field magic 257 6
        field size_field 124 12
        field mode 100 8
        size=0
        # A pax size record (files of 8 GiB and more) stands for the header's own size field.
        if [ -z "$PAX_SIZE" ] || [[ $type == [xgLK] ]]; then
            [[ ${HEX:373:1} == [0-7] ]] || refuse "$WHERE: member $name uses a base-256 size (not supported)"
            size_field=${size_field// /}
            [[ ${size_field:-0} =~ ^[0-7]{1,12}$ ]] || refuse "$WHERE: member $name has a malformed size field"
            size=$((8#${size_field:-0}))
        fi
        case $type in
        x | g | L | K)
            read_data "$size"
            case $type in
            x) parse_pax ;;
            g)
                PAX_PATH="" PAX_LINK=""
                parse_pax
                [ -z "$PAX_PATH$PAX_LINK" ] || refuse "$WHERE: a global pax header sets a path"
                PAX_SIZE=""
                ;;
            L | K)
                [ "$(tr -d '\0' <"$DATA" | tr -cd '\n' | wc -c)" -eq 0 ] || refuse "$WHERE: a member name contains a newline"
                if [ "$type" = L ]; then long_name=$(tr '\0' '\n' <"$DATA" | sed -n 1p); else long_link=$(tr '\0' '\n' <"$DATA" | sed -n 1p); fi
                ;;
            esac
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
                field prefix 345 155
                [ -z "$prefix" ] || path="$prefix/$name"
            fi
        fi
        target=${PAX_LINK:-${long_link:-$link}}
        if [ -n "$PAX_SIZE" ]; then
            [[ $PAX_SIZE =~ ^[0-9]{1,18}$ ]] || refuse "$WHERE: member $path has a malformed pax size"
            size=$((10#$PAX_SIZE)) # a pax size is decimal, leading zeros and all
        fi
        long_name="" long_link="" PAX_PATH="" PAX_LINK="" PAX_SIZE=""
        type=${type:-0}
        check_member "$type" "$path" "$target" "$size"
        path=$MEMBER
        case $type in
        0 | 7)
            make_parent "$path"
            if [ "$size" -gt 0 ]; then
                dd bs=131072 count="$size" iflag=fullblock,count_bytes of="$STAGE/$path" 2>/dev/null
                pad=$(((512 - size % 512) % 512))
            else
                : >"$STAGE/$path"
            fi
            [[ ${mode: -3} != *[1357]* ]] || chmod 755 "$STAGE/$path"
            ;;
        5) [ -z "$path" ] || make_parent "$path/." ;;
        2)
            make_parent "$path"
            ln -s -- "$target" "$STAGE/$path"
            ;;
        1)
            make_parent "$path"
            normalize "$target"
            ln -- "$STAGE/$NORM" "$STAGE/$path"
            ;;
        esac
    done
}

# openssl's sha256 uses the CPU's SHA instructions, several times faster than coreutils' or
# busybox's sha256sum; the kitops-kubeflow image has only the latter.
if command -v openssl >/dev/null 2>&1; then
    HASH=(openssl dgst -sha256 -r)
else
    HASH=(sha256sum)
fi
hash_in_background() { # <fifo> <output file>: sha256 of what flows through the fifo
    rm -f "$1" # left by an attempt a broken fetch cut short
    mkfifo "$1"
    "${HASH[@]}" <"$1" >"$2" &
    HASHERS+=("$!")
}
hashed() { # <file written by the hasher>: its hex digest
    local hex
    read -r hex _ <"$1"
    printf '%s' "$hex"
}

# --- extract each layer in one pass into staging, then put it in place ---------------------------

gunzip_said() { sed -n '/[^[:space:]]/{p;q;}' "$WORK/gunzip.err"; }
# gunzip's failure is recorded, not shouted: the tar reader then meets the end of the stream
# and names it as the cause. A gunzip killed by SIGPIPE (exit 141) only means the reader refused.
gunzip_layer() {
    local status=0
    gzip -dc 2>"$WORK/gunzip.err" || status=$?
    [ "$status" -eq 0 ] || [ "$status" -eq 141 ] || printf '%s' "$status" >"$WORK/gunzip.status"
    return 0
}
layer_bytes() { # <digest> <blob file or "">: the compressed layer on stdout, from the file or the registry
    local status=0
    if [ -n "$2" ]; then
        cat -- "$2"
        return 0
    fi
    curl -fsSL -D "$WORK/layer.headers" -H @"$WORK/auth" "$SCHEME://$HOST/v2/$REPOSITORY/blobs/$1" 2>"$WORK/fetch.err" || status=$?
    # 23: curl could not write because the reader stopped (it refused): not a fetch failure.
    [ "$status" -eq 0 ] || [ "$status" -eq 23 ] || printf '%s' "$status" >"$WORK/fetch.status"
    return 0
}
fetch_failed() { # a layer download broke off: final for an HTTP 4xx, else a transient failure to retry
    local code
    code=$(tr -d '\r' <"$WORK/layer.headers" 2>/dev/null | sed -n 's/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' | tail -n 1)
    case $code in 4??) die "registry $HOST answered HTTP $code for $WHERE of $REF" ;; esac
    log "WARNING: fetching $WHERE failed: $(sed -n 1p "$WORK/fetch.err")"
    exit "$TRANSIENT"
}

# The layer pass (its choice was made with the options): the Python one reads its source and
# the plan's layers from WORK.
if [ "$EXTRACTOR" = python ]; then
    extractor_source >"$WORK/extract_layers.py"
    printf '%s\n' ${LAYERS[@]+"${LAYERS[@]}"} >"$WORK/layers"
fi
extract_layers_python() {
    # -I -S: the standard library only, nothing from the environment or site-packages.
    "$PYTHON" -I -S "$WORK/extract_layers.py" "$WORK/layers" "ref=$REF" "host=$HOST" \
        "url=$SCHEME://$HOST/v2/$REPOSITORY" "auth=$WORK/auth" "fetch=$FETCH" "verified=$BLOBS_VERIFIED" \
        "layout=$LAYOUT" "stage=$STAGE" "max_bytes=$MAX_BYTES" "cap_source=$CAP_SOURCE" >"$WORK/extracted"
    EXTRACTED=$(<"$WORK/extracted")
    log "extracted ${#LAYERS[@]} layer(s), $EXTRACTED bytes, every member checked (python)"
}

extract_layers() { # into STAGE; run in a subshell per attempt, so a retry starts from nothing
    local layer index=0 size kind compression entry diff_id blob compressed stream actual pid
    if [ "$EXTRACTOR" = python ]; then
        extract_layers_python
        return 0
    fi
    trap 'for pid in ${HASHERS[@]+"${HASHERS[@]}"}; do kill "$pid" 2>/dev/null || true; done' EXIT
    for layer in ${LAYERS[@]+"${LAYERS[@]}"}; do
        IFS=$'\t' read -r LAYER_DIGEST size kind compression entry diff_id <<<"$layer"
        normalize "$entry"
        ENTRY_PATH=$NORM
        WHERE="layer $LAYER_DIGEST ($kind $entry)"
        blob=""
        [ "$FETCH" = http ] || blob=$(blob_path "$LAYER_DIGEST" "$size" layer)
        index=$((index + 1))
        rm -f "$WORK/gunzip.status" "$WORK/fetch.status"
        HASHERS=()
        compressed="$WORK/compressed.$index" stream="$WORK/stream.$index"
        # One pass: the blob is read once; each hash taps the stream through a fifo (tee).
        if [ "$BLOBS_VERIFIED" = false ]; then hash_in_background "$compressed" "$compressed.sum"; fi
        if [ "$compression" = gzip ]; then
            hash_in_background "$stream" "$stream.sum"
            if [ "$BLOBS_VERIFIED" = false ]; then
                layer_bytes "$LAYER_DIGEST" "$blob" | tee "$compressed" | gunzip_layer | tee "$stream" | extract_stream
            else
                gunzip_layer <"$blob" | tee "$stream" | extract_stream
            fi
        elif [ "$BLOBS_VERIFIED" = false ]; then
            layer_bytes "$LAYER_DIGEST" "$blob" | tee "$compressed" | extract_stream
            stream=$compressed # uncompressed: the digest is the diffId (checked in the plan)
        else
            # Uncompressed and verified by kit while pulling: its digest is its diffId (the plan checked).
            extract_stream <"$blob"
            stream=""
        fi
        [ ! -s "$WORK/fetch.status" ] || fetch_failed
        [ ! -s "$WORK/gunzip.status" ] || refuse "$WHERE: not a valid gzip stream (corrupted or tampered; $(gunzip_said))"
        for pid in ${HASHERS[@]+"${HASHERS[@]}"}; do wait "$pid"; done
        HASHERS=()
        if [ "$BLOBS_VERIFIED" = false ]; then
            actual="sha256:$(hashed "$compressed.sum")"
            [ "$actual" = "$LAYER_DIGEST" ] || die "layer of $REF fails verification: expected $LAYER_DIGEST, content hashes to $actual (corrupted or tampered)"
        fi
        if [ -n "$stream" ]; then
            actual="sha256:$(hashed "$stream.sum")"
            [ "$actual" = "$diff_id" ] || refuse "$WHERE: the uncompressed layer hashes to $actual, but the Kitfile's diffId is $diff_id"
        fi
    done
    log "extracted ${#LAYERS[@]} layer(s), $EXTRACTED bytes, every member checked (bash)"
}

attempt=1
while :; do
    STAGE=$(mktemp -d "$parent/.unpack-$EXTRACT_NAME.XXXXXX")
    # errexit stays on inside the attempt (a `|| status=$?` here would switch it off in there).
    set +e
    (
        set -e
        extract_layers
    )
    status=$?
    set -e
    [ "$status" -ne 0 ] || break
    rm -rf "$STAGE"
    STAGE=""
    # 3: refused (it said why); other than TRANSIENT: the ERR trap has named the failure.
    [ "$status" -eq "$TRANSIENT" ] || exit "$status"
    retry_or_die "$attempt" "fetching the layers of $REF broke off"
    attempt=$((attempt + 1))
done
EXTRACTED_AT=$EPOCHREALTIME

# The Kitfile the plan wrote: YAML as kit unpack writes it, without the per-layer digest and
# diffId (kit pack refuses them; they are derived when packing).
mv "$WORK/Kitfile" "$STAGE/Kitfile"

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
# seconds per phase: pull (manifest and config; with kit, every blob), layers (the one pass per
# layer: download, hashes, gunzip, checks, writes), finish (Kitfile, link check, rename).
json_string() { # <text>: a JSON string (printf builtin, no jq process)
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}
seconds_between() { # <EPOCHREALTIME> <EPOCHREALTIME>: seconds with milliseconds
    local us=$((${2/./} - ${1/./}))
    printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000))
}
printf '{"status":"success","model_path":%s,"reference":%s,"seconds":{"pull":%s,"layers":%s,"finish":%s},"fetch":"%s","extractor":"%s"}\n' \
    "$(json_string "$EXTRACT")" "$(json_string "$NAME@$DIGEST")" "$(seconds_between "$START" "$FETCHED")" \
    "$(seconds_between "$FETCHED" "$EXTRACTED_AT")" "$(seconds_between "$EXTRACTED_AT" "$EPOCHREALTIME")" "$FETCH" "$EXTRACTOR"
