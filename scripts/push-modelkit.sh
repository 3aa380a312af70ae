#!/bin/bash
# push-modelkit: pack a directory of ML artifacts as a ModelKit, push it, attest it.
#
# The one implementation of the push step. The cluster pipeline embeds this file's text in
# a container component running ghcr.io/kitops-ml/kitops-kubeflow (kit, cosign, jq, bash,
# busybox; no Python); the local pipeline runs the same file with bash. Its interface, the
# KitOps Kubeflow push-modelkit component's, is the help text below (`--help`).
set -euo pipefail

PROG=push-modelkit
ATTESTATION_TYPE="https://kitops.ml/attestation/v1"

# --- prelude: scripts/lib/prelude.sh (inlined here when a component carries this script) ---
PRELUDE_DIR=${BASH_SOURCE[0]%/*}
[[ ${BASH_SOURCE[0]} == */* ]] || PRELUDE_DIR=.
# shellcheck source=lib/prelude.sh
source "$PRELUDE_DIR/lib/prelude.sh"
# --- end of prelude ---

usage="usage: $PROG <registry> <repository> <tag> --modelkit-dir <dir> [options]"
# Alone only: a registry argument of "--help" among the others is data, refused below.
if [[ $# -eq 1 && ($1 == -h || $1 == --help) ]]; then
    cat <<EOF
$usage
Pack a directory of ML artifacts as a ModelKit, push it, attest it.

options:
  --modelkit-dir <dir>          the directory to pack (its Kitfile, or one kit init writes)
  --name <n> --desc <d> --author <a>                    for the Kitfile kit init writes
  --dataset-uri <u> --code-repo <r> --code-commit <c>   attestation metadata
  --plain-http true|false       the registry speaks plain HTTP (default false)
  --compression none|gzip|gzip-fastest                  kit pack's layer compression
  --ref-output <file>           gets host/repo:tag (default /tmp/outputs/reference)
  --digest-output <file>        gets host/repo@sha256:... (default /tmp/outputs/digest)
  --attestation-output <file>   gets the attestation (none by default)
Outputs are written only when everything succeeded (never half).

environment: DOCKER_CONFIG (directory of the config.json with the registry credentials;
credentials never come from arguments), COSIGN_KEY_PATH (default /etc/cosign/cosign.key),
COSIGN_PASSWORD, KITOPS_HOME, KIT_RETRIES (default 3), KIT_RETRY_DELAY (seconds, default 2).
EOF
    exit 0
fi
START=$EPOCHREALTIME
[ $# -ge 3 ] || die "$usage"
REGISTRY=$1 REPOSITORY=$2 TAG=$3
shift 3
MODELKIT_DIR="" MODELKIT_NAME="" MODELKIT_DESC="" MODELKIT_AUTHOR=""
DATASET_URI="" CODE_REPO="" CODE_COMMIT="" PLAIN_HTTP=false COMPRESSION=""
REF_OUTPUT=/tmp/outputs/reference DIGEST_OUTPUT=/tmp/outputs/digest ATTESTATION_OUTPUT=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "option $1 needs a value; $usage"
    case $1 in
    --modelkit-dir) MODELKIT_DIR=$2 ;;
    --name) MODELKIT_NAME=$2 ;;
    --desc) MODELKIT_DESC=$2 ;;
    --author) MODELKIT_AUTHOR=$2 ;;
    --dataset-uri) DATASET_URI=$2 ;;
    --code-repo) CODE_REPO=$2 ;;
    --code-commit) CODE_COMMIT=$2 ;;
    --plain-http) PLAIN_HTTP=$2 ;;
    --compression) COMPRESSION=$2 ;;
    --ref-output) REF_OUTPUT=$2 ;;
    --digest-output) DIGEST_OUTPUT=$2 ;;
    --attestation-output) ATTESTATION_OUTPUT=$2 ;;
    *) die "unknown argument $1; $usage" ;;
    esac
    shift 2
done

# --- validation: everything that can be checked without kit, before kit is needed ----------

[ -n "$MODELKIT_DIR" ] || die "--modelkit-dir is required; $usage"
[ -d "$MODELKIT_DIR" ] || die "ModelKit directory does not exist: $MODELKIT_DIR (the training step must create it and write its artifacts there)"
shopt -s nullglob dotglob # the directory's entries, hidden ones too, without an ls process
ENTRIES=("$MODELKIT_DIR"/*)
shopt -u nullglob dotglob
if [ "${#ENTRIES[@]}" -eq 0 ]; then
    die "ModelKit directory is empty: $MODELKIT_DIR (the training step must write at least one file there)"
fi

# A structural YAML check of the Kitfile in awk (the kitops-kubeflow image has no YAML
# parser): the mistakes people make by hand (tabs, bad indentation, a second ': ' in a plain
# value, unclosed quotes or brackets, duplicate top-level keys, no manifestVersion), reported
# as file:line before kit runs. kit's own parser stays the authority on everything else.
lint_kitfile() {
    awk -v file="$1" '
    function fail(line, msg) { printf "%s:%d: %s\n", file, line, msg; failed = 1; exit 1 }
    function indent_of(s) { match(s, /^ */); return RLENGTH }
    BEGIN { quote = ""; depth = 0; in_block = 0; last_kind = ""; last_col = -1; seen = 0 }
    {
        line = $0
        sub(/\r$/, "", line)
        if (in_block) {
            if (line ~ /^[ \t]*$/ || indent_of(line) > block_col) next
            in_block = 0
        }
        starts_plain = (quote == "" && depth == 0)
        if (starts_plain && line ~ /^ *\t/) fail(NR, "tab character in indentation (YAML indents with spaces only)")
        # Scan for quotes, brackets, comments and the key separator.
        sep = 0; second_sep = 0; text = ""
        n = length(line)
        for (i = 1; i <= n; i++) {
            c = substr(line, i, 1)
            if (quote == "\"") {
                if (c == "\\") { i++; continue }
                if (c == "\"") quote = ""
                continue
            }
            if (quote == "'\''") {
                if (c == "'\''" && substr(line, i + 1, 1) == "'\''") { i++; continue }
                if (c == "'\''") quote = ""
                continue
            }
            if (c == "#" && (i == 1 || substr(line, i - 1, 1) ~ /[ \t]/)) { n = i - 1; break }
            if (c == "\"" || c == "'\''") {
                # A quote opens a quoted scalar only where a value starts (a plain value such
                # as "a user'\''s key" may hold quotes).
                before = substr(line, 1, i - 1); sub(/[ \t]+$/, "", before)
                if (before == "" || before ~ /(:|^ *-|[[{,])$/) { quote = c; quote_line = NR }
                continue
            }
            if (c == "[" || c == "{") { if (depth == 0) flow_line = NR; depth++; continue }
            if (c == "]" || c == "}") {
                depth--
                if (depth < 0) fail(NR, "unexpected \"" c "\" with no opening bracket")
                continue
            }
            if (c == ":" && depth == 0 && (i == n || substr(line, i + 1, 1) ~ /[ \t]/)) {
                if (sep == 0) sep = i; else if (!second_sep) second_sep = i
            }
        }
        if (!starts_plain) next
        content = substr(line, 1, n)
        sub(/[ \t]+$/, "", content)
        if (content ~ /^ *$/) next
        if (content ~ /^(---|\.\.\.)( |$)/) next
        col = indent_of(content)
        body = substr(content, col + 1)
        item = 0
        if (body ~ /^-( |$)/) {
            item = 1
            rest = substr(body, 2); sub(/^ +/, "", rest)
            key_col = col + (length(body) - length(rest))
        } else {
            rest = body; key_col = col
        }
        if (!seen) {
            seen = 1
            if (item) fail(NR, "a Kitfile is a YAML mapping (manifestVersion:, package:, model: ...), not a list")
        }
        if (col > last_col && last_kind == "value") {
            if (item || sep) fail(NR, "bad indentation: this line is indented under \"" last_key "\" (line " last_line "), which already has a value")
            next   # a continuation line of a multi-line plain value
        }
        if (sep) {
            key = substr(line, key_col + 1, sep - key_col - 1)
            sub(/[ \t]+$/, "", key)
            if (key == "" || key == "-") fail(NR, "a mapping entry with an empty key")
            value = substr(line, sep + 1, n - sep); sub(/^[ \t]+/, "", value)
            if (second_sep && value !~ /^["'\''[{]/) fail(NR, "a plain value cannot contain \": \" (quote the value)")
            if (col == 0) {
                if (key in top) fail(NR, "duplicate top-level key \"" key "\" (first at line " top[key] ")")
                top[key] = NR
            }
            last_key = key; last_line = NR; last_col = key_col
            if (value ~ /^[|>][-+0-9]*$/) { in_block = 1; block_col = key_col; last_kind = "open" }
            else last_kind = (value == "" ? "open" : "value")
        } else if (item) {
            last_key = "-"; last_line = NR; last_col = col
            if (rest ~ /^[|>][-+0-9]*$/) { in_block = 1; block_col = col; last_kind = "open" }
            else last_kind = (rest == "" ? "open" : "value")
        } else {
            fail(NR, "expected \"key: value\" or \"- item\" (is a \":\" or a space after it missing?)")
        }
    }
    END {
        if (failed) exit 1
        if (quote != "") fail(quote_line, "unterminated quoted string (the quote opened here is never closed)")
        if (depth > 0) fail(flow_line, "unclosed bracket (opened here, never closed)")
        if (!seen) { printf "%s:1: the Kitfile is empty\n", file; exit 1 }
        if (!("manifestVersion" in top)) { printf "%s:1: missing the required top-level key manifestVersion\n", file; exit 1 }
    }' "$1"
}

KITFILE=""
for name in Kitfile kitfile .kitfile; do
    if [ -f "$MODELKIT_DIR/$name" ]; then
        KITFILE="$MODELKIT_DIR/$name"
        break
    fi
done
if [ -n "$KITFILE" ]; then
    if ! problem=$(lint_kitfile "$KITFILE"); then
        die "invalid Kitfile YAML: $problem"
    fi
fi

PLAIN_HTTP=${PLAIN_HTTP,,} # KFP renders booleans as true/false, Python as True/False
case $PLAIN_HTTP in true | false) ;; *) die "--plain-http must be true or false, got '$PLAIN_HTTP'" ;; esac
case $COMPRESSION in "" | none | gzip | gzip-fastest) ;; *) die "--compression must be none, gzip or gzip-fastest (kit pack's), got ${COMPRESSION@Q}" ;; esac
# kit reads a reference whose first part has no "." or ":" as local storage, never a registry.
case $REGISTRY in
-*) die "registry ${REGISTRY@Q} starts with '-' (it would be read as an option): refusing it" ;;
*.* | *:* | localhost) ;;
*) die "registry ${REGISTRY@Q} must be a host:port or a domain (kit would read '$REGISTRY/$REPOSITORY' as local storage)" ;;
esac
[[ $REPOSITORY =~ ^[a-z0-9]+([._/-][a-z0-9]+)*$ ]] || die "repository ${REPOSITORY@Q} is not a valid OCI repository name (lowercase letters, digits, . _ - /)"
[[ $TAG =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "tag ${TAG@Q} is not a valid OCI tag"
REF="$REGISTRY/$REPOSITORY:$TAG"
check_reference "$REF" "reference"

# --- tools and credentials -----------------------------------------------------------------

command -v kit >/dev/null 2>&1 || die "kit is required to pack and push $REF but is not on PATH (install it: https://kitops.org/docs/cli/installation/)"
command -v jq >/dev/null 2>&1 || die "jq is required but is not on PATH"
DOCKER_CONFIG=${DOCKER_CONFIG:-${HOME:-}/.docker}
export DOCKER_CONFIG
AUTHS_CHECK="" # jq takes ~13 ms to start: it looks for the auths entry while kit packs
if [ ! -f "$DOCKER_CONFIG/config.json" ]; then
    warn "no $DOCKER_CONFIG/config.json: pushing to $REGISTRY without credentials"
else
    jq -e --arg h "$REGISTRY" '.auths // {} | has($h)' "$DOCKER_CONFIG/config.json" >/dev/null 2>&1 &
    AUTHS_CHECK=$!
fi
NET_FLAGS=()
[ "$PLAIN_HTTP" = true ] && NET_FLAGS+=(--plain-http)
# The update check reaches the internet; pipelines must not depend on it.
# (kit keeps that choice as a file in its home: writing it saves starting kit once more.)
if [ -n "${KITOPS_HOME:-}" ]; then
    { [ -d "$KITOPS_HOME" ] || mkdir -p "$KITOPS_HOME"; } && : >"$KITOPS_HOME/disable-update-notifications"
else
    kit version --show-update-notifications=false >/dev/null 2>&1 || true
fi

WORK="" # made only when an attestation is built
GENERATED_KITFILE=""
cleanup() {
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    # A Kitfile we generated for a push that then failed is removed: the directory is left as found.
    if [ -n "$GENERATED_KITFILE" ]; then rm -f "$GENERATED_KITFILE"; fi
}
trap cleanup EXIT

# Fail fast on credentials and integrity errors; retry what may be transient.
run_kit() {
    local what=$1 attempts=${KIT_RETRIES:-3} delay=${KIT_RETRY_DELAY:-2} attempt=1 out
    shift
    while :; do
        if out=$("$@" 2>&1); then
            printf '%s\n' "$out"
            return 0
        fi
        if refused_credentials <<<"$out"; then
            die "registry $REGISTRY refused the credentials (401 Unauthorized) during $what of $REF: check the auths entry for \"$REGISTRY\" in $DOCKER_CONFIG/config.json (the docker-config secret)"
        fi
        if failed_verification <<<"$out"; then
            die "$what of $REF fails verification (not retried: integrity errors are final): $(tail -n 1 <<<"$out")"
        fi
        if grep -qiE 'not found|name unknown|manifest unknown' <<<"$out" && [ "$what" != push ]; then
            die "$what of $REF failed: not found in registry $REGISTRY ($(tail -n 1 <<<"$out"))"
        fi
        if [ "$attempt" -ge "$attempts" ]; then
            die "$what of $REF failed after $attempts attempts: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        fi
        warn "$what of $REF failed (attempt $attempt/$attempts), retrying in ${delay}s: $(tail -n 1 <<<"$out")"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
    done
}

# --- pack, push, digest ----------------------------------------------------------------------

if [ -z "$KITFILE" ]; then
    log "no Kitfile in $MODELKIT_DIR: generating one with kit init"
    INIT_ARGS=()
    [ -n "$MODELKIT_NAME" ] && INIT_ARGS+=(--name "$MODELKIT_NAME")
    [ -n "$MODELKIT_DESC" ] && INIT_ARGS+=(--desc "$MODELKIT_DESC")
    [ -n "$MODELKIT_AUTHOR" ] && INIT_ARGS+=(--author "$MODELKIT_AUTHOR")
    GENERATED_KITFILE="$MODELKIT_DIR/Kitfile"
    if ! out=$(kit init ${INIT_ARGS[@]+"${INIT_ARGS[@]}"} -- "$MODELKIT_DIR" 2>&1); then
        printf '%s\n' "$out" >&2
        die "kit init failed for $MODELKIT_DIR: $(tail -n 1 <<<"$out")"
    fi
else
    log "using $KITFILE as-is"
fi

log "packing $MODELKIT_DIR as $REF"
PACK_FLAGS=()
[ -z "$COMPRESSION" ] || PACK_FLAGS+=(--compression="$COMPRESSION") # empty: kit's default
if ! out=$(kit pack --tag="$REF" ${PACK_FLAGS[@]+"${PACK_FLAGS[@]}"} -- "$MODELKIT_DIR" 2>&1); then
    printf '%s\n' "$out" >&2
    die "kit pack failed for $MODELKIT_DIR: $(tail -n 1 <<<"$out")"
fi
PACKED=$EPOCHREALTIME
if [ -n "$AUTHS_CHECK" ] && ! wait "$AUTHS_CHECK"; then
    warn "$DOCKER_CONFIG/config.json has no auths entry for $REGISTRY: pushing without credentials"
fi
log "pushing $REF"
pushed=$(run_kit push kit push ${NET_FLAGS[@]+"${NET_FLAGS[@]}"} -- "$REF")
printf '%s\n' "$pushed" >&2
# kit push sends the manifest it packed byte for byte and names its digest ("Pushed sha256:...");
# failing that, the local store has it. Either way no registry round trip.
DIGEST=""
if [[ $pushed =~ (^|$'\n')Pushed\ (sha256:[0-9a-f]{64})($'\n'|$) ]]; then
    DIGEST=${BASH_REMATCH[2]}
else
    inspect=$(run_kit inspect kit inspect -- "$REF")
    DIGEST=$(jq -r '.digest // empty' <<<"$inspect" 2>/dev/null || true)
fi
[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not read the digest of $REF from kit inspect (got '${DIGEST:-nothing}')"
DIGEST_REF="$REGISTRY/$REPOSITORY@$DIGEST"
log "pushed $DIGEST_REF"
PUSHED=$EPOCHREALTIME

# --- attestation: built only where it goes (cosign's signature, --attestation-output) ------------

COSIGN_KEY_PATH=${COSIGN_KEY_PATH:-/etc/cosign/cosign.key}
SIGN=false
if ! command -v cosign >/dev/null 2>&1; then
    warn "cosign is not installed: signing skipped, the attestation is not attached to $DIGEST_REF"
elif [ ! -f "$COSIGN_KEY_PATH" ]; then
    warn "no cosign key at $COSIGN_KEY_PATH (the cosign-keys secret): signing skipped"
else
    SIGN=true
fi
if [ "$SIGN" = true ] || [ -n "$ATTESTATION_OUTPUT" ]; then
    WORK=$(mktemp -d)
    jq -n --arg type "$ATTESTATION_TYPE" --arg reference "$DIGEST_REF" --arg digest "$DIGEST" \
        --arg dataset_uri "$DATASET_URI" --arg code_repo "$CODE_REPO" --arg code_commit "$CODE_COMMIT" \
        --arg created_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{predicateType: $type, predicate: {reference: $reference, digest: $digest, dataset_uri: $dataset_uri,
          code_repo: $code_repo, code_commit: $code_commit, created_at: $created_at}}' >"$WORK/attestation.json"
fi
if [ "$SIGN" = true ]; then
    jq '.predicate' "$WORK/attestation.json" >"$WORK/predicate.json"
    # A key generated with a password needs it; the cosign-keys secret may carry it beside the key.
    if [ -z "${COSIGN_PASSWORD:-}" ] && [ -f "$(dirname "$COSIGN_KEY_PATH")/cosign.password" ]; then
        COSIGN_PASSWORD=$(cat "$(dirname "$COSIGN_KEY_PATH")/cosign.password")
    fi
    export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
    COSIGN_FLAGS=(--key "$COSIGN_KEY_PATH" --type "$ATTESTATION_TYPE" --predicate "$WORK/predicate.json" --tlog-upload=false --yes)
    [ "$PLAIN_HTTP" = true ] && COSIGN_FLAGS+=(--allow-http-registry --allow-insecure-registry)
    # Signing never fails the push (KitOps behaviour): retry, then warn and continue unsigned.
    signed=false
    for attempt in 1 2 3; do
        if out=$(cosign attest "${COSIGN_FLAGS[@]}" -- "$DIGEST_REF" </dev/null 2>&1); then
            signed=true
            break
        fi
        [ "$attempt" -eq 3 ] || sleep "${KIT_RETRY_DELAY:-2}"
    done
    if [ "$signed" = true ]; then
        log "attestation signed and attached to $DIGEST_REF"
    else
        warn "cosign attest failed, continuing unsigned: $(tail -n 1 <<<"$out")"
    fi
fi

# --- outputs: written last, each atomically -------------------------------------------------

write_output() {
    [ -n "$1" ] || return 0
    local directory=.
    [[ $1 != */* ]] || directory=${1%/*}/ # with the slash: "/x" is in "/"
    [ -d "$directory" ] || mkdir -p "$directory"
    printf '%s' "$2" >"$1.partial"
    mv -f "$1.partial" "$1"
}
[ -z "$ATTESTATION_OUTPUT" ] || write_output "$ATTESTATION_OUTPUT" "$(cat "$WORK/attestation.json")"
write_output "$REF_OUTPUT" "$REF"
write_output "$DIGEST_OUTPUT" "$DIGEST_REF"
GENERATED_KITFILE=""
# seconds per phase: pack (checks, kit pack), upload (kit push), finish (attestation, outputs).
seconds_between() { # <EPOCHREALTIME> <EPOCHREALTIME>: seconds with milliseconds
    local us=$((${2/./} - ${1/./}))
    printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000))
}
# The reference passed the OCI grammar: nothing in it needs JSON escaping.
printf '{"status":"success","ref":"%s","digest":"%s","seconds":{"pack":%s,"upload":%s,"finish":%s}}\n' "$REF" "$DIGEST_REF" \
    "$(seconds_between "$START" "$PACKED")" "$(seconds_between "$PACKED" "$PUSHED")" "$(seconds_between "$PUSHED" "$EPOCHREALTIME")"
