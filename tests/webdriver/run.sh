#!/bin/sh
# Builds the web UI, bundles the workbench as a .deb with it, installs the
# .deb with dpkg, checks that the installed app starts under Xvfb, then
# drives it through tauri-driver and WebKitWebDriver: build the `layers`
# demo, check that the graph's nodes end `done`, rebuild, check that they
# end `cached`, and save screenshots to tests/artifacts/.
#
# Needs root, Node.js 20, the Tauri CLI (`npm ci` in installer/tauri),
# `cargo install tauri-driver --locked`, and the Debian packages xvfb,
# xauth, webkit2gtk-driver, busybox-static and libwebkit2gtk-4.1-dev
# (`installer/setup.sh --test` installs them all). Set
# STRATA_BUNDLE_PROFILE=release for a release bundle. The default debug
# bundle reuses the dependencies `cargo test` compiled whose features
# match, where a release bundle compiles everything again.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
profile=${STRATA_BUNDLE_PROFILE:-debug}
artifacts="$repo/tests/artifacts"
work=$(mktemp -d /var/tmp/strata-webdriver.XXXXXX)
display=:${STRATA_WEBDRIVER_DISPLAY:-97}
pids=""

cleanup() {
    for pid in $pids; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

fail() {
    echo "webdriver: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "Run as root: the workbench runs builds with runc"
command -v tauri-driver >/dev/null || fail "\`tauri-driver\` is missing: run \`cargo install tauri-driver --locked\`"
command -v WebKitWebDriver >/dev/null || fail "\`WebKitWebDriver\` is missing: install Debian's \`webkit2gtk-driver\`"
command -v Xvfb >/dev/null || fail "\`Xvfb\` is missing: install Debian's \`xvfb\`"

[ -x /bin/busybox ] || fail "\`/bin/busybox\` is missing: install Debian's \`busybox-static\`"

echo "webdriver: building the web UI"
[ -d "$repo/ui/web/node_modules" ] || npm --prefix "$repo/ui/web" ci --no-audit --no-fund
npm --prefix "$repo/ui/web" run build

echo "webdriver: bundling the .deb ($profile)"
[ -x "$repo/installer/tauri/node_modules/.bin/tauri" ] || npm --prefix "$repo/installer/tauri" ci --no-audit --no-fund
flags="--bundles deb --config ../installer/tauri/linux.conf.json"
[ "$profile" = debug ] && flags="$flags --debug"
# shellcheck disable=SC2086 # flags is a word list
(cd "$repo/src-tauri" && "$repo/installer/tauri/node_modules/.bin/tauri" build $flags)
deb=$(ls -t "$repo"/target/"$profile"/bundle/deb/*.deb | head -n 1)
[ -f "$deb" ] || fail "No .deb under \`target/$profile/bundle/deb\`"

echo "webdriver: installing $deb"
dpkg -i "$deb"
app=/usr/bin/strata-workbench
[ -x "$app" ] || fail "\`$app\` is missing after \`dpkg -i\`"
dpkg -L strata-workbench | grep -q '/demos/hello/Dockerfile$' ||
    fail "The .deb does not contain the bundled demos"

echo "webdriver: preparing a store with busybox:latest"
strata="$repo/target/debug/strata"
[ -x "$strata" ] || (cd "$repo" && cargo build -p strata-cli --bin strata)
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
export STRATA_ROOT="$work/store"
"$strata" image import "$work/busybox.tar" --tag busybox:latest --change 'CMD ["sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
export STRATA_DEMOS="$repo/tests/webdriver/demos"

Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids="$pids $!"
export DISPLAY="$display"
sleep 1

echo "webdriver: starting the installed app"
"$app" >"$work/app.log" 2>&1 &
app_pid=$!
pids="$pids $app_pid"
sleep 5
kill -0 "$app_pid" 2>/dev/null || { cat "$work/app.log" >&2; fail "The workbench exited within 5 s of starting"; }
kill "$app_pid"
echo "webdriver: the app started and stayed up"

tauri-driver --port 4444 >"$work/driver.log" 2>&1 &
pids="$pids $!"
sleep 2
mkdir -p "$artifacts"
if ! node "$repo/tests/webdriver/build-demo.mjs" "$app" "$artifacts"; then
    tail -n 40 "$work/driver.log" >&2
    fail "The WebDriver test failed"
fi
echo "webdriver: passed"
