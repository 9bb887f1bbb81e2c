# shellcheck shell=bash
# Helpers shared by the service scripts in this folder. Source it after
# setting SERVICE_NAME, which prefixes every message.

STRATA_TEST_RUN="${STRATA_TEST_RUN:-/run/strata-test}"
STRATA_TEST_STATE="${STRATA_TEST_STATE:-/var/lib/strata-test}"

log() { printf '%s: %s\n' "$SERVICE_NAME" "$*" >&2; }
die() { printf '%s: %s\n' "$SERVICE_NAME" "$*" >&2; exit 1; }

require_root() {
    ((EUID == 0)) || die "Run as root, because the service needs its own mounts and sockets"
}

# Holds an exclusive lock on NAME until the script exits, so two test
# processes that start the same service at once do not race.
lock_service() {
    mkdir -p "$STRATA_TEST_RUN"
    exec 9>"$STRATA_TEST_RUN/$1.lock"
    flock -w 120 9 || die "Timed out after 120s waiting for the lock \`$STRATA_TEST_RUN/$1.lock\`"
}

# Returns success when PIDFILE names a live process.
pid_alive() {
    local pidfile="$1" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(<"$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Runs CHECK... every half second until it succeeds or TIMEOUT seconds pass.
# On a timeout it prints the tail of LOG and returns failure.
wait_until() {
    local timeout="$1" logfile="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "Timed out after ${timeout}s waiting for \`$*\`; the last lines of $logfile:"
            tail -n 30 "$logfile" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

# Sends SIGTERM to the process in PIDFILE, waits up to TIMEOUT seconds for it
# to exit, then sends SIGKILL. Removes PIDFILE either way.
stop_pidfile() {
    local pidfile="$1" timeout="${2:-20}" what="$3"
    if ! pid_alive "$pidfile"; then
        log "Nothing to stop: $what is not running"
        rm -f "$pidfile"
        return 0
    fi
    local pid
    pid="$(<"$pidfile")"
    kill -TERM "$pid"
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$what (pid $pid) did not exit ${timeout}s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
    log "Stopped $what (pid $pid)"
}
