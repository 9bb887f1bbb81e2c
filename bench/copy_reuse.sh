#!/usr/bin/env bash
# Measures COPY from the build context with hardlink reuse (`COPY . /app`)
# against a byte copy of the same files (`COPY --chown=0:0 . /app`, which
# sets an owner and so copies), for a context of many small files and one
# of fewer large files, and writes a Markdown table of medians to
# docs/benchmarks.md. Each timed build uses --no-cache after a warm-up
# build, so the context mirror is already up to date and the COPY step
# dominates; a `sync` before each timed build keeps the writeback of
# earlier builds out of its time. Disk use is the growth of the store's snapshots (`du` counts
# a hardlinked inode once).
#
# Usage: bench/copy_reuse.sh [RUNS]   (as root, with runc)
set -euo pipefail

runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
strata=${STRATA_BIN:-$repo/target/release/strata}
work=$(mktemp -d /var/tmp/strata-bench-copy.XXXXXX)
export STRATA_ROOT=$work/strata-root
trap 'rm -rf "$work"' EXIT

[[ -x $strata ]] || { echo "error: $strata is missing; run: cargo build --release -p strata-cli" >&2; exit 1; }

# A busybox root filesystem: the end-to-end tests' cached one, or a
# minimal one made from Debian's static busybox.
rootfs=${STRATA_TEST_CACHE:-/var/tmp/strata-test-cache}/busybox-rootfs-test-v2.tar
if [[ ! -f $rootfs ]]; then
    mkdir -p "$work/rootfs/bin"
    cp /bin/busybox "$work/rootfs/bin/busybox"
    ln -s busybox "$work/rootfs/bin/sh"
    rootfs=$work/busybox.tar
    tar -C "$work/rootfs" -cf "$rootfs" .
fi
"$strata" image import "$rootfs" --tag busybox:latest --change 'CMD ["sh"]' >/dev/null

# make_context DIR FILES BYTES: FILES files of BYTES random bytes each.
make_context() {
    local dir=$1 files=$2 bytes=$3
    mkdir -p "$dir/files"
    head -c "$bytes" /dev/urandom >"$work/blob"
    for ((i = 0; i < files; i++)); do
        [[ $((i % 100)) -eq 0 ]] && mkdir -p "$dir/files/d$((i / 100))"
        cp "$work/blob" "$dir/files/d$((i / 100))/f$i"
        printf '%d' "$i" >>"$dir/files/d$((i / 100))/f$i"
    done
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# time_builds DIR COPY_LINE: median seconds of RUNS --no-cache builds and
# the snapshot growth in MiB of one build.
time_builds() {
    local dir=$1 copy=$2
    printf 'FROM busybox\n%s\n' "$copy" >"$dir/Dockerfile"
    "$strata" build --progress quiet "$dir" >/dev/null
    local times=() start end before after
    for ((run = 0; run < runs; run++)); do
        before=$(du -sm "$STRATA_ROOT/snapshots" | cut -f1)
        # Flush earlier writes so their writeback does not land in this run.
        sync
        start=$(date +%s.%N)
        "$strata" build --progress quiet --no-cache "$dir" >/dev/null
        end=$(date +%s.%N)
        after=$(du -sm "$STRATA_ROOT/snapshots" | cut -f1)
        times+=("$(echo "$end - $start" | bc)")
    done
    printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | median)" "$((after - before))"
}

rows=()
for workload in "10000 4096 10,000 files of 4 KiB" "200 1048576 200 files of 1 MiB"; do
    read -r files bytes label <<<"$workload"
    dir=$work/ctx-$files
    make_context "$dir" "$files" "$bytes"
    read -r linked_s linked_mb < <(time_builds "$dir" 'COPY . /app')
    read -r copied_s copied_mb < <(time_builds "$dir" 'COPY --chown=0:0 . /app')
    ratio=$(echo "scale=2; $copied_s / $linked_s" | bc)
    rows+=("| $label | ${copied_s} s, ${copied_mb} MiB | ${linked_s} s, ${linked_mb} MiB | ${ratio} |")
    rm -rf "$dir"
done

table=$(
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, median of $runs builds, with \`$(basename "$strata")\` from \`${strata#"$repo"/}\`."
    echo
    echo "| context | byte copy (time, snapshot growth) | hardlink reuse (time, snapshot growth) | speed-up |"
    echo "| --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
)
echo "$table"

doc=$repo/docs/benchmarks.md
python3 - "$doc" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- bench:copy-reuse:start -->", "<!-- bench:copy-reuse:end -->"
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + start + "\n" + table + "\n" + end + tail)
PY
