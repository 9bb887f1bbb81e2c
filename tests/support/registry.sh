#!/usr/bin/env bash
# Starts and stops Debian's docker-registry for the tests, on loopback only:
#
#   plain   http://127.0.0.1:5000, no authentication
#   secure  https://127.0.0.1:5443, htpasswd authentication, and a server
#           certificate from a test CA that this script generates
#
#   tests/support/registry.sh start [plain|secure]   default: both
#   tests/support/registry.sh stop [plain|secure]    default: both
#   tests/support/registry.sh env                    print the `export` lines
#   tests/support/registry.sh status                 exit 0 when both respond
#
# Each instance has its own config and storage under
# $STRATA_TEST_STATE/registry, so pushed images survive a restart.
set -euo pipefail

# shellcheck disable=SC2034 # lib.sh reads it
SERVICE_NAME=registry.sh
# shellcheck source=tests/support/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY=/usr/bin/docker-registry
STATE_DIR="$STRATA_TEST_STATE/registry"
CERT_DIR="$STATE_DIR/certs"
# Only the CA certificate, in the layout of skopeo's and buildah's
# `--cert-dir`, which read every `*.crt` file in it as a trusted root.
CA_DIR="$STATE_DIR/ca"
HTPASSWD_FILE="$STATE_DIR/htpasswd"
TEST_USER=strata
TEST_PASSWORD=strata-test-password
TIMEOUT="${STRATA_TEST_REGISTRY_TIMEOUT:-30}"

address_of() {
    case "$1" in
        plain) echo 127.0.0.1:5000 ;;
        secure) echo 127.0.0.1:5443 ;;
    esac
}

pidfile_of() { echo "$STRATA_TEST_RUN/registry-$1.pid"; }
logfile_of() { echo "$STATE_DIR/$1.log"; }

# Generates the test CA and a server certificate for 127.0.0.1 and localhost,
# unless a server certificate valid for at least another day exists.
ensure_certificates() {
    if [[ -s "$CERT_DIR/server.crt" ]] &&
        openssl x509 -checkend 86400 -noout -in "$CERT_DIR/server.crt" >/dev/null; then
        return 0
    fi
    command -v openssl >/dev/null || die "\`openssl\` not found; install it with \`apt-get install openssl\`"
    log "Generating a test CA and a server certificate in $CERT_DIR"
    mkdir -p "$CERT_DIR" "$CA_DIR"
    (
        cd "$CERT_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
            -keyout ca.key -out ca.crt -subj "/CN=Strata test CA" \
            -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=127.0.0.1" 2>/dev/null
        printf '%s\n' \
            'subjectAltName=IP:127.0.0.1,DNS:localhost' \
            'basicConstraints=CA:FALSE' \
            'keyUsage=critical,digitalSignature,keyEncipherment' \
            'extendedKeyUsage=serverAuth' >server.ext
        openssl x509 -req -days 825 -in server.csr -CA ca.crt -CAkey ca.key \
            -CAcreateserial -extfile server.ext -out server.crt 2>/dev/null
        chmod 0600 ca.key server.key
    )
    cp "$CERT_DIR/ca.crt" "$CA_DIR/ca.crt"
}

ensure_htpasswd() {
    [[ -s "$HTPASSWD_FILE" ]] && return 0
    command -v htpasswd >/dev/null ||
        die "\`htpasswd\` not found; install it with \`apt-get install apache2-utils\`"
    # docker-registry accepts only bcrypt entries.
    htpasswd -Bbc "$HTPASSWD_FILE" "$TEST_USER" "$TEST_PASSWORD" 2>/dev/null
}

write_config() {
    local instance="$1" dir="$STATE_DIR/$1"
    mkdir -p "$dir/storage"
    {
        cat <<CONFIG
version: 0.1
log:
  level: info
  fields:
    service: strata-test-registry-$instance
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $(address_of "$instance")
  secret: strata-test-$instance
CONFIG
        if [[ "$instance" == secure ]]; then
            cat <<CONFIG
  tls:
    certificate: $CERT_DIR/server.crt
    key: $CERT_DIR/server.key
auth:
  htpasswd:
    realm: strata-test
    path: $HTPASSWD_FILE
CONFIG
        fi
    } >"$dir/config.yml"
}

registry_responds() {
    local address
    address="$(address_of "$1")"
    if [[ "$1" == plain ]]; then
        curl -fsS "http://$address/v2/"
    else
        curl -fsS --cacert "$CA_DIR/ca.crt" -u "$TEST_USER:$TEST_PASSWORD" "https://$address/v2/"
    fi
}

start_instance() {
    local instance="$1" pidfile logfile
    pidfile="$(pidfile_of "$instance")"
    logfile="$(logfile_of "$instance")"
    if pid_alive "$pidfile" && registry_responds "$instance" >/dev/null 2>&1; then
        log "The $instance registry is already running (pid $(<"$pidfile")) on $(address_of "$instance")"
        return 0
    fi
    if [[ "$instance" == secure ]]; then
        ensure_certificates
        ensure_htpasswd
    fi
    write_config "$instance"

    printf '=== registry.sh start at %s\n' "$(date -u +%FT%TZ)" >>"$logfile"
    setsid "$REGISTRY" serve "$STATE_DIR/$instance/config.yml" >>"$logfile" 2>&1 </dev/null 9>&- &
    local pid=$!
    echo "$pid" >"$pidfile"
    if ! wait_until "$TIMEOUT" "$logfile" registry_responds "$instance"; then
        stop_pidfile "$pidfile" 5 "the $instance registry"
        die "The $instance registry did not respond on $(address_of "$instance") within ${TIMEOUT}s; see the log above"
    fi
    log "The $instance registry is ready on $(address_of "$instance") (pid $pid, log $logfile)"
}

instances_from() {
    case "${1:-}" in
        "") echo plain secure ;;
        plain | secure) echo "$1" ;;
        *) die "Unknown registry instance \`$1\`; use plain or secure" ;;
    esac
}

start() {
    require_root
    [[ -x "$REGISTRY" ]] || die "\`$REGISTRY\` not found; install it with \`apt-get install docker-registry\`"
    command -v curl >/dev/null || die "\`curl\` not found; install it with \`apt-get install curl\`"
    mkdir -p "$STRATA_TEST_RUN" "$STATE_DIR"
    local instances instance
    instances="$(instances_from "${1:-}")" || exit 1
    for instance in $instances; do
        start_instance "$instance"
    done
}

stop() {
    local instances instance
    instances="$(instances_from "${1:-}")" || exit 1
    for instance in $instances; do
        stop_pidfile "$(pidfile_of "$instance")" 10 "the $instance registry"
    done
}

print_env() {
    cat <<ENV
export STRATA_TEST_REGISTRY=$(address_of plain)
export STRATA_TEST_SECURE_REGISTRY=$(address_of secure)
export STRATA_TEST_REGISTRY_CA=$CA_DIR/ca.crt
export STRATA_TEST_REGISTRY_CERT_DIR=$CA_DIR
export STRATA_TEST_REGISTRY_USER=$TEST_USER
export STRATA_TEST_REGISTRY_PASSWORD=$TEST_PASSWORD
ENV
}

case "${1:-}" in
    start) lock_service registry && start "${2:-}" ;;
    stop) lock_service registry && stop "${2:-}" ;;
    env) print_env ;;
    status) registry_responds plain >/dev/null 2>&1 && registry_responds secure >/dev/null 2>&1 ;;
    *) die "Unknown command \`${1:-}\`; use start, stop, env or status" ;;
esac
