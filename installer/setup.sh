#!/usr/bin/env bash
# Prepare a Debian or Ubuntu machine to build images with Strata.
#
# Installs the runtime packages (and with --test the test dependencies),
# builds `target/release/strata`, builds the base rootfs tarballs into the
# cache directory and imports them as `busybox:latest` and `debian:bookworm`.
# Every step is skipped when its result is already present, so the script can
# be rerun at any time. Base images come only from Debian packages and the
# Debian mirror, never from a container registry.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: sudo installer/setup.sh [OPTIONS]

Options:
  --test            Also install the packages the test suite needs (and the
                    build packages even with --no-build), and the web UI's
                    npm dependencies
  --no-packages     Skip apt-get update and apt-get install
  --no-build        Skip `cargo build --release -p strata-cli`
  --no-import       Build the rootfs tarballs but do not import them
  --rebuild-rootfs  Rebuild the rootfs tarballs even when they are cached
  -h, --help        Print this help

Environment:
  STRATA_CACHE_DIR  Where the rootfs tarballs go (default /var/cache/strata)
  STRATA_ROOT       The store that images are imported into (default /var/lib/strata)
  STRATA_BIN        The strata binary to import with (default target/release/strata)
  DEBIAN_MIRROR     The mirror debootstrap uses (default http://deb.debian.org/debian)
USAGE
}

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${STRATA_CACHE_DIR:-/var/cache/strata}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE=bookworm
STRATA=""
BUILD_DIR=""
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# jq reads `strata image ls --format json` when importing the base images.
RUNTIME_PACKAGES=(runc busybox-static debootstrap ca-certificates jq)
# rusqlite builds SQLite with cc, and flate2's zlib-ng backend needs cmake.
BUILD_PACKAGES=(build-essential pkg-config cmake curl)
TEST_PACKAGES=(
    docker.io docker-registry skopeo buildah uidmap iptables hyperfine time bc
    xz-utils zstd bzip2 openssl apache2-utils chromium
    # `strata build --ui` and `strata view` draw with OpenGL on X11; the
    # tests open them on Xvfb with Mesa's software renderer.
    xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1
    libxrandr2 libxi6
)
# The web UI's tests need Node 20 or newer and npm; Debian's packages are
# installed only when either is missing, so a newer Node stays in place.
NODE_PACKAGES=(nodejs npm)

with_test=0
do_packages=1
do_build=1
do_import=1
rebuild_rootfs=0

log() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

parse_args() {
    while (($#)); do
        case "$1" in
            --test) with_test=1 ;;
            --no-packages) do_packages=0 ;;
            --no-build) do_build=0 ;;
            --no-import) do_import=0 ;;
            --rebuild-rootfs) rebuild_rootfs=1 ;;
            -h | --help) usage; exit 0 ;;
            *) die "Unknown option \`$1\`; run \`installer/setup.sh --help\` for the list" ;;
        esac
        shift
    done
}

install_packages() {
    local packages=("${RUNTIME_PACKAGES[@]}")
    if ((do_build || with_test)); then
        packages+=("${BUILD_PACKAGES[@]}")
    fi
    if ((with_test)); then
        packages+=("${TEST_PACKAGES[@]}")
        if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
            packages+=("${NODE_PACKAGES[@]}")
        fi
    fi
    log "Installing ${#packages[@]} packages with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${packages[@]}"
}

# Finds cargo even under sudo, whose PATH leaves out ~/.cargo/bin.
find_cargo() {
    local candidate
    for candidate in "$(command -v cargo || true)" "${HOME:-/root}/.cargo/bin/cargo" \
        "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)/.cargo/bin/cargo"; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# Installs a Rust toolchain with rustup when none is present, because
# Debian's rustc is older than the workspace's `rust-version`.
ensure_rust() {
    if find_cargo >/dev/null; then
        return 0
    fi
    log "Installing a Rust toolchain with rustup into ${HOME:-/root}/.cargo"
    command -v curl >/dev/null || die "\`curl\` not found; rerun without --no-packages"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --component rustfmt,clippy
}

build_binary() {
    ensure_rust
    local cargo
    cargo="$(find_cargo)" || die "\`cargo\` not found after installing Rust; add ~/.cargo/bin to PATH and rerun"
    log "Building strata with \`cargo build --release -p strata-cli\`"
    (cd "$REPO_DIR" && "$cargo" build --release -p strata-cli)
    log "Built $REPO_DIR/target/release/strata"
}

# Writes DIR as an uncompressed tar with sorted names. With MTIME, every
# owner becomes root and every mtime becomes MTIME, so equal trees give equal
# bytes. The tar is written next to OUT and renamed, so a cached tarball is
# never a partial one.
write_tar() {
    local dir="$1" out="$2" mtime="${3:-}"
    local args=(--sort=name --format=gnu --numeric-owner)
    if [[ -n "$mtime" ]]; then
        args+=(--owner=0 --group=0 --mtime="@$mtime")
    fi
    local entries
    mapfile -t entries < <(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort)
    LC_ALL=C tar -C "$dir" "${args[@]}" -cf "$out.partial" "${entries[@]}"
    mv "$out.partial" "$out"
}

# shellcheck source=installer/rootfs.sh
source "$REPO_DIR/installer/rootfs.sh"

# Returns success when `strata image ls` lists NAME, in its short form or
# normalised as `docker.io/library/NAME`.
image_listed() {
    local name="$1" listing
    listing="$("$STRATA" image ls --format json)" ||
        die "\`strata image ls --format json\` failed; check the store at \`${STRATA_ROOT:-/var/lib/strata}\`"
    [[ -n "$listing" ]] || return 1
    jq -e --arg short "$name" --arg long "docker.io/library/$name" \
        '[.. | strings | select(. == $short or . == $long)] | length > 0' \
        <<<"$listing" >/dev/null
}

import_image() {
    local tarball="$1" name="$2" cmd="$3"
    if image_listed "$name"; then
        log "Image $name is already in the store; skipping the import"
        return 0
    fi
    log "Importing $tarball as $name"
    "$STRATA" image import "$tarball" --tag "$name" \
        --change "CMD [\"$cmd\"]" --change "ENV PATH=$IMAGE_PATH"
    image_listed "$name" ||
        die "\`strata image import\` succeeded but \`strata image ls\` does not list \`$name\`; check the store at \`${STRATA_ROOT:-/var/lib/strata}\`"
}

# Installs the web UI's locked npm dependencies (Vitest, Vite, Playwright's
# core) for `npm --prefix ui/web test` and `ui/web/run-e2e.sh`.
install_web_dependencies() {
    command -v npm >/dev/null || die "\`npm\` not found; rerun without --no-packages or install Node 20 and npm"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || die "Node $(node --version) is too old for the web UI: install Node 20 or newer"
    log "Installing the web UI's npm dependencies with \`npm --prefix ui/web ci\`"
    npm --prefix "$REPO_DIR/ui/web" ci --no-audit --no-fund
}

main() {
    parse_args "$@"
    ((EUID == 0)) || die "Run as root (sudo installer/setup.sh), because debootstrap, apt-get and the store need it"
    command -v apt-get >/dev/null || die "\`apt-get\` not found; setup.sh supports Debian and Ubuntu only"

    if ((do_packages)); then
        install_packages
    fi
    if ((do_build)); then
        build_binary
    fi
    if ((with_test)); then
        install_web_dependencies
    fi

    mkdir -p "$CACHE_DIR"
    local busybox_tar="$CACHE_DIR/busybox-rootfs.tar"
    local debian_tar="$CACHE_DIR/debian-$DEBIAN_SUITE-rootfs.tar"
    ensure_rootfs "$busybox_tar" build_busybox_rootfs
    ensure_rootfs "$debian_tar" build_debian_rootfs

    if ((do_import)); then
        STRATA="${STRATA_BIN:-$REPO_DIR/target/release/strata}"
        [[ -x "$STRATA" ]] ||
            die "The strata binary \`$STRATA\` is missing; run without --no-build or set STRATA_BIN"
        command -v jq >/dev/null || die "\`jq\` not found; install it with \`apt-get install jq\`"
        import_image "$busybox_tar" busybox:latest sh
        import_image "$debian_tar" debian:$DEBIAN_SUITE bash
    fi

    log "Done"
    local binary="${STRATA_BIN:-$REPO_DIR/target/release/strata}"
    if [[ -x "$binary" ]]; then
        log "  binary:   $binary"
    fi
    log "  rootfs:   $busybox_tar"
    log "            $debian_tar"
    if ((do_import)); then
        log "  store:    ${STRATA_ROOT:-/var/lib/strata} (busybox:latest, debian:$DEBIAN_SUITE)"
    fi
}

main "$@"
