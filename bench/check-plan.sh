#!/usr/bin/env bash
# Benchmark for `loa check` and `loa plan --days 30` on N generated announcement files (default
# 10,000). Prints wall time (median of 5 runs) and peak RSS for each. Run from the repository root:
#   bench/check-plan.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
bin=target/release/loa
python3 bench/gen_announcements.py "$n" "$work/repo" >/dev/null

# Median wall seconds of 5 runs, and the peak RSS (KiB) of the last, read from the kernel's
# accounting of the finished child.
measure() {
  python3 - "$@" <<'PY'
import resource, statistics, subprocess, sys, time
walls = []
for _ in range(6):
    t0 = time.perf_counter()
    r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walls.append(time.perf_counter() - t0)
    if r.returncode not in (0,):
        sys.exit(f"{sys.argv[1:]} exited {r.returncode}")
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{statistics.median(walls[1:]):8.3f} s   peak RSS {rss / 1024:6.1f} MiB")
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
echo "files:   $n announcements"
printf 'loa check               '; measure "$bin" check "$work/repo/announcements"
printf 'loa plan --days 30      '; measure "$bin" plan "$work/repo/announcements" --from 2026-11-20 --days 30 --now "2026-11-20 00:00"
printf 'plan rows: '; "$bin" plan "$work/repo/announcements" --from 2026-11-20 --days 30 --now "2026-11-20 00:00" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
