#!/usr/bin/env bash
# Times layer compression and cache export/import, and rewrites the
# registry section of docs/benchmarks.md:
#
# - export of one 500 MB layer (text mixed with random bytes) with gzip on
#   one thread and on every core, and with zstd, against a single-core
#   zlib-ng probe (flate2's encoder over the same tar) divided by the core
#   count;
# - cache export and import in `max` mode for a 50-step build, through a
#   local layout directory and a plain registry on 127.0.0.1.
#
# Every case runs RUNS times (default 3) and the table shows the median.
#
# Usage: bench/registry.sh   (as root; STRATA_BIN picks the binary, and
#        target/debug/examples/gzip_probe must be built:
#        cargo build -p strata-exporter --example gzip_probe)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
strata=${STRATA_BIN:-$repo/target/release/strata}
probe=${STRATA_GZIP_PROBE:-$repo/target/debug/examples/gzip_probe}
runs=${RUNS:-3}
# Bytes of the big layer's file; smaller values make a quick trial run.
layer_bytes=${LAYER_BYTES:-500000000}
work=$(mktemp -d /var/tmp/strata-bench-registry.XXXXXX)
registry_pid=
cleanup() {
    [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
[[ -x $strata ]] || { echo "error: $strata is missing; run: cargo build --release -p strata-cli" >&2; exit 1; }
[[ -x $probe ]] || { echo "error: $probe is missing; run: cargo build -p strata-exporter --example gzip_probe" >&2; exit 1; }

rootfs=${STRATA_TEST_CACHE:-/var/tmp/strata-test-cache}/busybox-rootfs-test-v2.tar
[[ -f $rootfs ]] || { echo "error: $rootfs is missing; run: cargo test -p strata-cli --test e2e_build once" >&2; exit 1; }

new_store() {
    local root=$work/$1
    STRATA_ROOT=$root "$strata" image import "$rootfs" --tag busybox:latest --change 'CMD ["sh"]' >/dev/null
    echo "$root"
}

# Prints the seconds a command takes, discarding its output. A failed
# command stops the benchmark, because its time would mean nothing.
seconds() {
    local start end
    start=$(date +%s.%N)
    if ! "$@" >"$work/last.log" 2>&1; then
        echo "error: \`$*\` failed:" >&2
        tail -20 "$work/last.log" >&2
        kill -TERM $$
        exit 1
    fi
    end=$(date +%s.%N)
    printf '%.2f\n' "$(echo "$end - $start" | bc)"
}

# Prints the median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs a command RUNS times and prints the median seconds.
median_seconds() {
    local times=() i
    for ((i = 0; i < runs; i++)); do times+=("$(seconds "$@")"); done
    median "${times[@]}"
}

cores=$(nproc)

# 1. One 500 MB layer. Each MiB is three quarters log-like text lines and
# one quarter random bytes, so gzip level 6 shrinks it to about 40 %.
mkdir -p "$work/big"
python3 - "$work/big/data" "$layer_bytes" <<'PY'
import random
import sys

path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
words = ["layer", "build", "cache", "strata", "snapshot", "export", "gzip", "block",
         "thread", "digest", "manifest", "registry", "config", "vertex", "solver"]
lines = []
for i in range(20000):
    count = rng.randint(4, 12)
    lines.append(f"{i:06d} " + " ".join(rng.choice(words) for _ in range(count)) + "\n")
with open(path, "wb") as out:
    written = 0
    while written < size:
        text = "".join(rng.choices(lines, k=12000)).encode()[: 768 * 1024]
        chunk = (text + rng.randbytes(256 * 1024))[: size - written]
        out.write(chunk)
        written += len(chunk)
PY
printf 'FROM busybox\nCOPY data /data\n' >"$work/big/Dockerfile"
store=$(new_store big-store)
STRATA_ROOT=$store "$strata" build --progress quiet "$work/big" >/dev/null
# A non-default level is never taken from the layer cache, so each run
# compresses. $1 is the thread count, $2 the output's compression keys.
export_time() {
    median_seconds env STRATA_ROOT="$store" STRATA_COMPRESSION_THREADS="$1" "$strata" build \
        --progress quiet --output "type=oci,dest=$work/out.tar,$2" "$work/big"
}
gzip_one=$(export_time 1 compression=gzip,compression-level=6)
gzip_all=$(export_time "$cores" compression=gzip,compression-level=6)
zstd_one=$(export_time 1 compression=zstd,compression-level=3)
zstd_all=$(export_time "$cores" compression=zstd,compression-level=3)
rm -f "$work/out.tar"

# The probe compresses the layer's own tar, taken from an uncompressed export.
STRATA_ROOT=$store "$strata" build --progress quiet \
    --output "type=oci,dest=$work/plain.tar,compression=uncompressed" "$work/big" >/dev/null
mkdir -p "$work/plain"
tar -xf "$work/plain.tar" -C "$work/plain" blobs
rm -f "$work/plain.tar"
layer_tar=$(find "$work/plain/blobs" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
declare -a flate2_times block_one_times block_all_times
for ((i = 0; i < runs; i++)); do
    while read -r encoder threads time _; do
        case "$encoder $threads" in
            "flate2 1") flate2_times+=("$time") ;;
            "blocks 1") block_one_times+=("$time") ;;
            "blocks $cores") block_all_times+=("$time") ;;
        esac
    done < <("$probe" "$layer_tar")
done
rm -rf "$work/plain" "$work/big/data"
flate2_one=$(median "${flate2_times[@]}")
block_one=$(median "${block_one_times[@]}")
block_all=$(median "${block_all_times[@]}")
ideal=$(printf '%.2f' "$(echo "scale=4; $flate2_one / $cores" | bc)")

# 2. A 50-step build, exported in max mode and imported by a fresh store.
mkdir -p "$work/steps"
{
    echo "FROM busybox"
    for i in $(seq 1 50); do echo "RUN echo step $i > /step-$i"; done
} >"$work/steps/Dockerfile"
port=$((20000 + RANDOM % 20000))
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry/config.yml" >/dev/null 2>&1 &
registry_pid=$!
sleep 1

source_store=$(new_store steps-source)
cold=$(seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet "$work/steps")
warm=$(median_seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet "$work/steps")
local_export=$(median_seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet \
    --cache-to "type=local,dest=$work/cache,mode=max" "$work/steps")
registry_export=$(median_seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet \
    --allow-insecure-registry "127.0.0.1:$port" \
    --cache-to "type=registry,ref=127.0.0.1:$port/bench/cache:steps,mode=max" "$work/steps")
# Each import run needs a store without the cache, so it gets a new one.
import_time() {
    local kind=$1 times=() i root
    shift
    for ((i = 0; i < runs; i++)); do
        root=$(new_store "steps-$kind-$i")
        times+=("$(seconds env STRATA_ROOT="$root" "$strata" build --progress quiet "$@" "$work/steps")")
        rm -rf "$root"
    done
    median "${times[@]}"
}
local_import=$(import_time local --cache-from "type=local,src=$work/cache")
registry_import=$(import_time registry --allow-insecure-registry "127.0.0.1:$port" \
    --cache-from "type=registry,ref=127.0.0.1:$port/bench/cache:steps")

layer_mb=$((layer_bytes / 1000000))
load=$(cut -d' ' -f1-3 /proc/loadavg)
table=$(cat <<TABLE
Measured on $(date -u +%Y-%m-%d), $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), median of $runs runs, with \`$(basename "$strata")\` from \`$(basename "$(dirname "$strata")")\`. The machine was shared with other builds (load average $load at the end), so the cores were often busy and the parallel rows gain less than they would on an idle machine.

| Case | Seconds |
| --- | --- |
| $layer_mb MB layer, gzip level 6, 1 thread (\`STRATA_COMPRESSION_THREADS=1\`) | $gzip_one |
| $layer_mb MB layer, gzip level 6, $cores threads | $gzip_all |
| $layer_mb MB layer, zstd level 3, 1 worker | $zstd_one |
| $layer_mb MB layer, zstd level 3, $cores workers | $zstd_all |
| probe: the layer tar, flate2 zlib-ng gzip on 1 thread | $flate2_one |
| probe: ideal gzip on $cores cores (the row above / $cores) | $ideal |
| probe: the layer tar, block gzip on 1 thread | $block_one |
| probe: the layer tar, block gzip on $cores threads | $block_all |
| 50 steps, cold build (one run) | $cold |
| 50 steps, warm build (no export) | $warm |
| 50 steps, warm build + cache export, local, max | $local_export |
| 50 steps, warm build + cache export, registry, max | $registry_export |
| 50 steps, fresh store + cache import, local | $local_import |
| 50 steps, fresh store + cache import, registry | $registry_import |
TABLE
)

doc=$repo/docs/benchmarks.md
python3 - "$doc" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- bench:registry:start -->", "<!-- bench:registry:end -->"
before, rest = text.split(start, 1)
_, after = rest.split(end, 1)
open(path, "w").write(before + start + "\n" + table + "\n" + end + after)
PY
echo "$table"
