# shellcheck shell=bash
# Base rootfs builders for setup.sh, which sources this file after defining
# `log`, `die`, `write_tar`, CACHE_DIR, DEBIAN_MIRROR, DEBIAN_SUITE and
# rebuild_rootfs.
# shellcheck disable=SC2154

# Builds OUT with BUILDER unless it is cached. BUILDER fills an empty
# directory and then calls `write_tar DIR OUT`.
ensure_rootfs() {
    local out="$1" builder="$2"
    if [[ -s "$out" ]] && ((!rebuild_rootfs)); then
        log "Reusing $out ($(du -h "$out" | cut -f1))"
        return 0
    fi
    BUILD_DIR="$(mktemp -d "$CACHE_DIR/.build.XXXXXX")"
    trap 'rm -rf "$BUILD_DIR"' EXIT
    "$builder" "$BUILD_DIR/rootfs" "$out"
    rm -rf "$BUILD_DIR"
    trap - EXIT
    log "Built $out ($(du -h "$out" | cut -f1))"
}

# Builds a BusyBox rootfs from Debian's static build: `/bin/busybox`, every
# applet as a symlink next to it, and the few files a shell session expects.
# Every mtime is set to the busybox-static package's, so the tar is reproducible for
# a given package version.
build_busybox_rootfs() {
    local root="$1" out="$2"
    # Debian's `busybox` package is dynamically linked and would need a libc
    # that the image does not have.
    if [[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]]; then
        die "\`busybox-static\` is not installed; install it with \`apt-get install busybox-static\`"
    fi

    log "Building the BusyBox rootfs from /bin/busybox ($(/bin/busybox | head -1 | cut -d' ' -f1-2))"
    mkdir -p "$root"
    (
        cd "$root" || exit
        umask 022
        mkdir -p bin sbin usr/bin usr/sbin etc root home tmp var/tmp dev proc sys
        chmod 0700 root
        chmod 1777 tmp var/tmp
        install -m 0755 /bin/busybox bin/busybox

        local applet
        for applet in $(/bin/busybox --list); do
            [[ "$applet" == busybox || "$applet" == linuxrc ]] && continue
            ln -s busybox "bin/$applet"
        done
        # Scripts with a `#!/usr/bin/env` line expect env at this path.
        ln -s ../../bin/busybox usr/bin/env

        printf '%s\n' \
            'root:x:0:0:root:/root:/bin/sh' \
            'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >etc/passwd
        printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >etc/group
    )

    local mtime
    mtime="$(stat -c %Y /usr/share/doc/busybox-static/changelog.Debian.gz 2>/dev/null || echo 0)"
    write_tar "$root" "$out" "$mtime"
}

# Builds a minimal Debian rootfs with debootstrap, then removes what the
# official images leave out: apt caches and lists, logs, device nodes and the
# host's resolv.conf and hostname, which the runtime provides per container.
# `/etc/apt/sources.list` stays, so `apt-get update` works in the image.
build_debian_rootfs() {
    local root="$1" out="$2"
    command -v debootstrap >/dev/null ||
        die "\`debootstrap\` not found; install it with \`apt-get install debootstrap\`"

    log "Running debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR"
    if ! debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
        >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        die "debootstrap of \`$DEBIAN_SUITE\` from \`$DEBIAN_MIRROR\` failed; the log tail is above"
    fi
    # debootstrap unmounts the target's /proc and /sys when it succeeds. A
    # leftover mount would be archived, and `rm -rf` would delete through it.
    if findmnt -rn -o TARGET | grep -q "^$root/"; then
        die "debootstrap left mounts under \`$root\`; unmount them and rerun"
    fi

    (
        cd "$root" || exit
        find var/cache/apt var/lib/apt/lists -type f ! -name lock -delete
        find var/log -type f -name '*.log' -delete
        find var/log -type f -exec truncate -s 0 {} +
        rm -f var/cache/debconf/*-old var/lib/dpkg/*-old
        rm -f etc/resolv.conf etc/hostname
        find dev -mindepth 1 -delete
        [[ -s etc/apt/sources.list ]] || die "debootstrap wrote no \`etc/apt/sources.list\` in \`$root\`"
    )
    write_tar "$root" "$out"
}
