# The prelude of the chain's bash scripts (push-modelkit.sh; unpack and the kit:// storage
# initializer are scripts/unpack_modelkit.py): one copy of what they share. A script sources it
# from beside itself; a component that carries a script as text (the cluster's container components, whose
# image has bash but not this file) gets it inlined in place of the `source` line, by
# lab.pipeline.scripts.script_text. A script sets PROG (its name in log lines) first, and may
# set DIE_STATUS (die's exit status, default 3) and QUIET_EXITS (exit statuses that are no
# surprise, default: DIE_STATUS).

log() { printf '%(%H:%M:%S)T %s: %s\n' -1 "$PROG" "$*" >&2; } # the printf builtin: no date process
warn() { log "WARNING: $*"; }
# die exits DIE_STATUS; any other failure that set -e turns into an exit (a killed pipe, a
# failing command in a function) still leaves an ERROR line naming where, so no failure is silent.
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit "${DIE_STATUS:-3}"
}
unexpected() { # <status> <line> <command>
    case " ${QUIET_EXITS:-${DIE_STATUS:-3}} " in *" $1 "*) return 0 ;; esac
    if [ "$BASHPID" = "$$" ]; then
        printf 'ERROR: %s stopped unexpectedly (exit %s) at line %s: %s\n' "$PROG" "$1" "$2" "$3" >&2
    fi
}
set -o errtrace
trap 'unexpected $? $LINENO "$BASH_COMMAND"' ERR

# What kit's output says about a failed registry operation (read from stdin).
# A 401 is never transient: retrying cannot fix credentials.
refused_credentials() { grep -qiE '(^|[^[:alnum:]])401([^[:alnum:]]|$)|unauthori[sz]ed|authentication required'; }
# Content that does not hash to its digest will not hash to it on a second try either.
failed_verification() {
    grep -qiE 'hash does not match|digest mismatch|does not match descriptor|size mismatch|invalid (checksum )?digest|content (is )?corrupt'
}

# --- reference grammar --------------------------------------------------------------------------
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
# --- end of the reference grammar ---------------------------------------------------------------
