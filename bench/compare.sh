#!/usr/bin/env bash
# Times the same builds with strata, docker build (BuildKit and the legacy
# builder, on a private dockerd) and buildah, and writes a Markdown table of
# medians and ratios to docs/benchmarks.md.
#
# Usage: bench/compare.sh [RUNS]   (as root; needs installer/setup.sh --test)
set -euo pipefail

runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
strata=${STRATA_BIN:-$repo/target/release/strata}
work=$(mktemp -d /var/tmp/strata-bench.XXXXXX)
export STRATA_ROOT=$work/strata-root
docker_cli=/usr/bin/docker
trap 'rm -rf "$work"' EXIT

[[ -x $strata ]] || { echo "error: $strata is missing; run: cargo build --release -p strata-cli" >&2; exit 1; }
bash "$repo/tests/support/dockerd.sh" start >/dev/null
eval "$(bash "$repo/tests/support/dockerd.sh" env)"

# One busybox root filesystem, imported into every builder.
rootfs=${STRATA_CACHE_DIR:-/var/cache/strata}/busybox-rootfs.tar
[[ -f $rootfs ]] || { echo "error: $rootfs is missing; run installer/setup.sh" >&2; exit 1; }
"$strata" image import "$rootfs" --tag busybox:latest --change 'CMD ["sh"]' >/dev/null
# Strata with the context monitor (STRATA_CONTEXT_MONITOR=1) gets its own
# store, so the two Strata columns never share a context mirror.
monitor_root=$work/strata-monitor-root
STRATA_ROOT=$monitor_root "$strata" image import "$rootfs" --tag busybox:latest --change 'CMD ["sh"]' >/dev/null
"$docker_cli" import --change 'CMD ["sh"]' "$rootfs" busybox:latest >/dev/null
"$docker_cli" save busybox:latest -o "$work/busybox-docker.tar"
buildah pull --quiet "docker-archive:$work/busybox-docker.tar" >/dev/null
buildah tag "$(buildah images --quiet --filter reference=busybox | head -n1)" docker.io/library/busybox:latest 2>/dev/null || true

# Workload 1: four independent 2-second stages joined at the end. A
# builder that runs them in parallel takes about 2 s plus its fixed cost.
mkdir -p "$work/parallel"
cat >"$work/parallel/Dockerfile" <<'DOCKERFILE'
FROM busybox AS a
RUN sleep 2 && echo a > /a
FROM busybox AS b
RUN sleep 2 && echo b > /b
FROM busybox AS c
RUN sleep 2 && echo c > /c
FROM busybox AS d
RUN sleep 2 && echo d > /d
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
COPY --from=d /d /d
DOCKERFILE

# Workload 2: a 10,000-file context copied whole, then one RUN.
mkdir -p "$work/context/src"
python3 - "$work/context/src" <<'PY'
import os, sys
for i in range(10000):
    with open(os.path.join(sys.argv[1], f"file{i}.bin"), "wb") as f:
        f.write(os.urandom(4096))
PY
cat >"$work/context/Dockerfile" <<'DOCKERFILE'
FROM busybox
COPY . /app
RUN find /app -type f | wc -l > /count
DOCKERFILE

now() { date +%s.%N; }

# time_build NAME KIND DIR: prints seconds for one build of DIR.
time_build() {
    local tool=$1 kind=$2 dir=$3 start end nocache=()
    [[ $kind == cold ]] && nocache=(--no-cache)
    start=$(now)
    case $tool in
        strata)
            /usr/bin/time -f %M -o "$work/rss" "$strata" build --progress quiet "${nocache[@]}" "$dir" >/dev/null 2>&1
            peak_rss=$(( $(cat "$work/rss") > peak_rss ? $(cat "$work/rss") : peak_rss ))
            ;;
        strata-monitor)
            STRATA_ROOT=$monitor_root STRATA_CONTEXT_MONITOR=1 "$strata" build --progress quiet "${nocache[@]}" "$dir" >/dev/null 2>&1
            ;;
        # Host networking everywhere, as Strata's RUN steps use by default;
        # the test dockerd has no bridge network.
        buildkit) DOCKER_BUILDKIT=1 "$docker_cli" build --network host -q "${nocache[@]}" "$dir" >/dev/null 2>&1 ;;
        legacy) DOCKER_BUILDKIT=0 "$docker_cli" build --network host -q "${nocache[@]}" "$dir" >/dev/null 2>&1 ;;
        buildah) buildah bud --quiet --layers --network host "${nocache[@]}" "$dir" >/dev/null 2>&1 ;;
    esac
    end=$(now)
    echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

tools=(strata strata-monitor buildkit legacy buildah)
peak_rss=0
declare -A result
for workload in parallel context; do
    dir=$work/$workload
    for tool in "${tools[@]}"; do
        time_build "$tool" warm "$dir" >/dev/null   # fill the cache once
        for kind in cold warm edit; do
            samples=()
            for _ in $(seq 1 "$runs"); do
                if [[ $kind == edit ]]; then
                    date +%s%N >"$dir/edited.txt"
                fi
                time_build "$tool" "$kind" "$dir" >"$work/sample"
                samples+=("$(cat "$work/sample")")
            done
            result[$workload,$kind,$tool]=$(printf '%s\n' "${samples[@]}" | median)
            echo "$workload $kind $tool ${result[$workload,$kind,$tool]}s" >&2
        done
    done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
    echo "| workload | run | strata | strata, monitor | BuildKit | legacy builder | buildah | BuildKit / strata | BuildKit / strata, monitor | legacy / strata | buildah / strata |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for workload in parallel context; do
        for kind in cold warm edit; do
            s=${result[$workload,$kind,strata]}
            m=${result[$workload,$kind,strata-monitor]}
            row="| $workload | $kind | ${s}s"
            for tool in strata-monitor buildkit legacy buildah; do row+=" | ${result[$workload,$kind,$tool]}s"; done
            row+=" | $(echo "scale=2; ${result[$workload,$kind,buildkit]} / $s" | bc)x"
            row+=" | $(echo "scale=2; ${result[$workload,$kind,buildkit]} / $m" | bc)x"
            for tool in legacy buildah; do
                row+=" | $(echo "scale=2; ${result[$workload,$kind,$tool]} / $s" | bc)x"
            done
            echo "$row |"
        done
    done
    echo
    echo "Peak resident memory of the \`strata\` process over all runs: $((peak_rss / 1024)) MiB."
    echo
    echo "Median of $runs runs each, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(uname -r)."
} >"$work/table.md"
cat "$work/table.md"
python3 - "$repo/docs/benchmarks.md" "$work/table.md" <<'PY'
import sys, re
doc, table = sys.argv[1], open(sys.argv[2]).read()
text = open(doc).read()
start, end = "<!-- bench:compare:start -->", "<!-- bench:compare:end -->"
new = f"{start}\n{table}{end}"
text = re.sub(re.escape(start) + ".*?" + re.escape(end), new, text, flags=re.S) if start in text else text + "\n" + new + "\n"
open(doc, "w").write(text)
PY
