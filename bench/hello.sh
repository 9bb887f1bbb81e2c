#!/usr/bin/env bash
# Times builds of assets/demos/hello with hyperfine:
#
#   cold       empty store with only the base images imported
#   no-op      rebuild with every step cached
#   edit       rebuild after a change to hello.c, so only the compile and
#              the final COPY run again
#
# With --docker it also times the same three cases with BuildKit in the private
# dockerd from tests/support/dockerd.sh, for reference, and --no-strata skips
# the Strata cases. Results go to
# bench/results/ as hyperfine JSON and Markdown. The cold and edit cases run
# apt-get against deb.debian.org, so their times include the network.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STRATA="${STRATA_BIN:-$REPO_DIR/target/release/strata}"
CACHE_DIR="${STRATA_CACHE_DIR:-/var/cache/strata}"
RESULTS="$REPO_DIR/bench/results"
DOCKER=/usr/bin/docker
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
runs=3
with_strata=1
with_docker=0

die() { printf 'bench/hello.sh: %s\n' "$*" >&2; exit 1; }

while (($#)); do
    case "$1" in
        --runs) runs="${2:?--runs needs a number}"; shift ;;
        --docker) with_docker=1 ;;
        --no-strata) with_strata=0 ;;
        *) die "Unknown option \`$1\`; use --runs N, --docker or --no-strata" ;;
    esac
    shift
done

((EUID == 0)) || die "Run as root, because strata and dockerd need it"
command -v hyperfine >/dev/null || die "\`hyperfine\` not found; run \`installer/setup.sh --test\`"
for tarball in busybox-rootfs.tar debian-bookworm-rootfs.tar; do
    [[ -s "$CACHE_DIR/$tarball" ]] || die "\`$CACHE_DIR/$tarball\` is missing; run \`installer/setup.sh\` first"
done

# The benchmark edits a copy, so the demo in the repository stays unchanged.
WORK="$(mktemp -d /tmp/strata-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$REPO_DIR/assets/demos/hello" "$WORK/context"
CONTEXT="$WORK/context"
# Appending a comment changes the file's digest but not the program.
EDIT="echo '/* edited at '\$(date +%s%N)' */' >>$CONTEXT/hello.c"
mkdir -p "$RESULTS"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"

bench_strata() {
    [[ -x "$STRATA" ]] || die "The strata binary \`$STRATA\` is missing; run \`installer/setup.sh\`"
    local root="$WORK/store"
    local import="STRATA_ROOT=$root $STRATA image import"
    local reset="rm -rf $root && $import $CACHE_DIR/busybox-rootfs.tar --tag busybox:latest \
--change 'CMD [\"sh\"]' --change 'ENV PATH=$IMAGE_PATH' && $import \
$CACHE_DIR/debian-bookworm-rootfs.tar --tag debian:bookworm \
--change 'CMD [\"bash\"]' --change 'ENV PATH=$IMAGE_PATH'"
    local build="STRATA_ROOT=$root $STRATA build -t hello $CONTEXT"

    hyperfine --runs "$runs" \
        --export-json "$RESULTS/hello-strata-$stamp.json" \
        --export-markdown "$RESULTS/hello-strata-$stamp.md" \
        -n cold --prepare "$reset" "$build" \
        -n no-op --prepare "$build" "$build" \
        -n edit --prepare "$EDIT" "$build"
}

bench_docker() {
    "$REPO_DIR/tests/support/dockerd.sh" start
    eval "$("$REPO_DIR/tests/support/dockerd.sh" env)"
    export DOCKER_BUILDKIT=1
    local import="$DOCKER import --change 'ENV PATH=$IMAGE_PATH'"
    local reset="$DOCKER builder prune -af >/dev/null && \
$import --change 'CMD [\"sh\"]' $CACHE_DIR/busybox-rootfs.tar busybox:latest && \
$import --change 'CMD [\"bash\"]' $CACHE_DIR/debian-bookworm-rootfs.tar debian:bookworm"
    # The private dockerd gives containers no network unless asked, so RUN
    # steps use the host's network to reach the Debian mirror.
    local build="$DOCKER build -q --network host -t hello $CONTEXT"

    hyperfine --runs "$runs" \
        --export-json "$RESULTS/hello-docker-$stamp.json" \
        --export-markdown "$RESULTS/hello-docker-$stamp.md" \
        -n cold --prepare "$reset" "$build" \
        -n no-op --prepare "$build" "$build" \
        -n edit --prepare "$EDIT" "$build"
}

if ((with_strata)); then
    bench_strata
fi
if ((with_docker)); then
    bench_docker
fi
echo "Results are in $RESULTS"
