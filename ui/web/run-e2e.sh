#!/usr/bin/env bash
# Runs the workbench's end-to-end test: builds the web UI and `strata`,
# creates a private store with a busybox image made from Debian's static
# busybox, starts `strata ui` on a free loopback port and drives it with
# headless Chromium (tests/e2e/run.mjs). Screenshots go to
# ui/web/tests/artifacts/. Needs root (builds run with runc), Node 20,
# Debian's chromium and busybox-static.
set -euo pipefail

WEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$WEB_DIR/../.." && pwd)"
cd "$WEB_DIR"

[[ -x /usr/bin/chromium ]] || { echo "run-e2e.sh: /usr/bin/chromium is missing: apt-get install chromium" >&2; exit 1; }
[[ -x /bin/busybox ]] || { echo "run-e2e.sh: /bin/busybox is missing: apt-get install busybox-static" >&2; exit 1; }

[[ -d node_modules ]] || npm ci
npm run build
cargo build --manifest-path "$REPO_DIR/Cargo.toml" -p strata-cli
STRATA="${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/strata"

WORK="$(mktemp -d /var/tmp/strata-ui-e2e.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A minimal busybox root filesystem owned by root.
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var,dev,proc,sys,tmp}
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
while read -r applet; do
    [[ -n "$applet" && "$applet" != bin/busybox && ! -e "$ROOTFS/$applet" ]] && ln -s /bin/busybox "$ROOTFS/$applet"
done < <(/bin/busybox --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\n' > "$ROOTFS/etc/group"
tar --owner=0 --group=0 --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .

export STRATA_ROOT="$WORK/store"
"$STRATA" image import "$WORK/rootfs.tar" --tag busybox:latest \
    --change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' >/dev/null

"$STRATA" ui --listen 127.0.0.1:0 --assets "$WEB_DIR/dist" --demos "$WEB_DIR/tests/fixtures/demos" \
    > "$WORK/ui.out" 2> "$WORK/ui.err" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q '^Strata workbench: ' "$WORK/ui.out" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/ui.err" >&2; exit 1; }
    sleep 0.1
done
URL="$(sed -n 's/^Strata workbench: //p' "$WORK/ui.out")"
[[ -n "$URL" ]] || { echo "run-e2e.sh: strata ui printed no address" >&2; cat "$WORK/ui.err" >&2; exit 1; }

STRATA_UI_URL="$URL" node tests/e2e/run.mjs "$@"
