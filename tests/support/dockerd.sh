#!/usr/bin/env bash
# Starts and stops a private Docker daemon for the tests, so they never touch
# the machine's own daemon, images or containers.
#
#   tests/support/dockerd.sh start   start it, or do nothing when it runs
#   tests/support/dockerd.sh stop    stop it (its images stay for next time)
#   tests/support/dockerd.sh env     print `export DOCKER_HOST=...`
#   tests/support/dockerd.sh status  exit 0 when `docker info` succeeds
#
# Containers get no network (`--bridge=none --iptables=false`) unless
# STRATA_TEST_DOCKER_BRIDGE=1, which adds a bridge without NAT so containers
# reach only the host. Always call /usr/bin/docker (Debian's docker.io
# client), because the first `docker` on PATH may be another version.
set -euo pipefail

# shellcheck disable=SC2034 # lib.sh reads it
SERVICE_NAME=dockerd.sh
# shellcheck source=tests/support/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKER=/usr/bin/docker
RUN_DIR="$STRATA_TEST_RUN/docker"
SOCKET="$STRATA_TEST_RUN/docker.sock"
DOCKER_HOST_URL="unix://$SOCKET"
PIDFILE="$RUN_DIR/dockerd.pid"
LOGFILE="$STRATA_TEST_STATE/dockerd.log"
DATA_ROOT="$STRATA_TEST_STATE/docker"
TIMEOUT="${STRATA_TEST_DOCKER_TIMEOUT:-60}"
BRIDGE=strata-test0
BRIDGE_ADDRESS=10.213.213.1/24

find_dockerd() {
    # Debian's docker.io installs the daemon in /usr/sbin.
    local candidate
    for candidate in /usr/sbin/dockerd /usr/bin/dockerd; do
        if [[ -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    die "\`dockerd\` not found in /usr/sbin or /usr/bin; install it with \`apt-get install docker.io\`"
}

docker_info() {
    "$DOCKER" -H "$DOCKER_HOST_URL" info
}

# Prints the dockerd network options: a private bridge without NAT when
# requested and possible, else no bridge at all.
network_options() {
    if [[ "${STRATA_TEST_DOCKER_BRIDGE:-0}" != 1 ]]; then
        echo --bridge=none --iptables=false --ip-forward=false
        return 0
    fi
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        if ! ip link add name "$BRIDGE" type bridge 2>/dev/null; then
            log "Creating bridge \`$BRIDGE\` failed; containers get no network"
            echo --bridge=none --iptables=false --ip-forward=false
            return 0
        fi
        ip addr add "$BRIDGE_ADDRESS" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    echo --bridge="$BRIDGE" --iptables=false --ip-forward=false --ip-masq=false
}

start() {
    require_root
    [[ -x "$DOCKER" ]] || die "\`$DOCKER\` not found; install it with \`apt-get install docker.io\`"
    if pid_alive "$PIDFILE" && docker_info >/dev/null 2>&1; then
        log "Already running (pid $(<"$PIDFILE")) on $DOCKER_HOST_URL"
        return 0
    fi

    local dockerd
    dockerd="$(find_dockerd)"
    mkdir -p "$RUN_DIR" "$DATA_ROOT"
    rm -f "$SOCKET"
    printf '=== dockerd.sh start at %s\n' "$(date -u +%FT%TZ)" >>"$LOGFILE"
    # A namespace of our own keeps the images and containers apart from the
    # machine's daemon when both share the system containerd.
    # shellcheck disable=SC2046
    setsid "$dockerd" \
        --host "$DOCKER_HOST_URL" \
        --data-root "$DATA_ROOT" \
        --exec-root "$RUN_DIR/exec" \
        --pidfile "$PIDFILE" \
        --containerd-namespace strata-test \
        --containerd-plugins-namespace strata-test-plugins \
        $(network_options) \
        >>"$LOGFILE" 2>&1 </dev/null 9>&- &
    log "Started $dockerd (pid $!), logging to $LOGFILE"

    if ! wait_until "$TIMEOUT" "$LOGFILE" docker_info; then
        kill -TERM "$!" 2>/dev/null || true
        die "dockerd did not respond on \`$DOCKER_HOST_URL\` within ${TIMEOUT}s; see the log above"
    fi
    log "Ready on $DOCKER_HOST_URL (data root $DATA_ROOT)"
}

stop() {
    require_root
    stop_pidfile "$PIDFILE" 30 dockerd
    rm -f "$SOCKET"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link del "$BRIDGE"
    fi
}

case "${1:-}" in
    start) lock_service dockerd && start ;;
    stop) lock_service dockerd && stop ;;
    env) printf 'export DOCKER_HOST=%s\n' "$DOCKER_HOST_URL" ;;
    status) docker_info >/dev/null 2>&1 ;;
    *) die "Unknown command \`${1:-}\`; use start, stop, env or status" ;;
esac
