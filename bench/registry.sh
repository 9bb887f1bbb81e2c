#!/usr/bin/env bash
# Times layer compression and cache export/import, and rewrites the
# registry section of docs/benchmarks.md:
#
# - export of one 500 MB layer with gzip and zstd, against the ideal of a
#   single-core zlib-ng gzip (Strata's own gzip of the same layer)
#   multiplied by the core count;
# - cache export and import in `max` mode for a 50-step build, through a
#   local layout directory and a plain registry on 127.0.0.1.
#
# Usage: bench/registry.sh   (as root; builds target/release/strata first)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
strata=${STRATA_BIN:-$repo/target/release/strata}
work=$(mktemp -d /var/tmp/strata-bench-registry.XXXXXX)
registry_pid=
cleanup() {
    [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
[[ -x $strata ]] || { echo "error: $strata is missing; run: cargo build --release -p strata-cli" >&2; exit 1; }

rootfs=${STRATA_TEST_CACHE:-/var/tmp/strata-test-cache}/busybox-rootfs-test-v2.tar
[[ -f $rootfs ]] || { echo "error: $rootfs is missing; run: cargo test -p strata-cli --test e2e_build once" >&2; exit 1; }

new_store() {
    local root=$work/$1
    STRATA_ROOT=$root "$strata" image import "$rootfs" --tag busybox:latest --change 'CMD ["sh"]' >/dev/null
    echo "$root"
}

# Prints the seconds a command takes, discarding its output.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    printf '%.2f\n' "$(echo "$end - $start" | bc)"
}

cores=$(nproc)

# 1. One 500 MB layer: base64 of random bytes, which gzip shrinks to about 76 %.
mkdir -p "$work/big"
head -c 375M /dev/urandom | base64 -w 0 | head -c 500M >"$work/big/data"
printf 'FROM busybox\nCOPY data /data\n' >"$work/big/Dockerfile"
store=$(new_store big-store)
STRATA_ROOT=$store "$strata" build --progress quiet "$work/big" >/dev/null
# A non-default level is never taken from the layer cache, so each run compresses.
export_time() {
    seconds env STRATA_ROOT="$store" "$strata" build --progress quiet \
        --output "type=oci,dest=$work/out.tar,$1" "$work/big"
}
gzip_time=$(export_time compression=gzip,compression-level=6)
zstd_time=$(export_time compression=zstd,compression-level=3)
ideal=$(printf '%.2f' "$(echo "scale=4; $gzip_time / $cores" | bc)")

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
warm=$(seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet "$work/steps")
local_export=$(seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet \
    --cache-to "type=local,dest=$work/cache,mode=max" "$work/steps")
registry_export=$(seconds env STRATA_ROOT="$source_store" "$strata" build --progress quiet \
    --allow-insecure-registry "127.0.0.1:$port" \
    --cache-to "type=registry,ref=127.0.0.1:$port/bench/cache:steps,mode=max" "$work/steps")
local_store=$(new_store steps-local)
local_import=$(seconds env STRATA_ROOT="$local_store" "$strata" build --progress quiet \
    --cache-from "type=local,src=$work/cache" "$work/steps")
registry_store=$(new_store steps-registry)
registry_import=$(seconds env STRATA_ROOT="$registry_store" "$strata" build --progress quiet \
    --allow-insecure-registry "127.0.0.1:$port" \
    --cache-from "type=registry,ref=127.0.0.1:$port/bench/cache:steps" "$work/steps")

table=$(cat <<TABLE
Measured on $(date -u +%Y-%m-%d), $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), one run each.

| Case | Seconds |
| --- | --- |
| 500 MB layer, gzip level 6 (single-core zlib-ng) | $gzip_time |
| 500 MB layer, ideal gzip on $cores cores (the row above / $cores) | $ideal |
| 500 MB layer, zstd level 3 | $zstd_time |
| 50 steps, cold build | $cold |
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
