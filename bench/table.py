#!/usr/bin/env python3
"""One table of loa's figures, on this machine, in one run (issue 6):
  - fan-out: one announcement to N followers through `loa sim` (rate limit off), deliveries/s,
    against the simulator's raw rate under wrk, and against a sequential Python script (requests +
    sqlite3, `bench/baseline.py`) doing the same sends the way a commune's IT person would;
  - due-time lateness p50/p99 (1,000 sends due at once, log channel);
  - `loa check` and `loa plan --days 30` on 10,000 files (median of 5, peak RSS);
  - idle RSS with 10,000 announcements, and peak RSS during the fan-out.
Run from the repository root: bench/table.py [--followers N] [--baseline N]   (builds --release)"""
import os, platform, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import daemon, zalo  # noqa: E402  (the per-area scripts; their functions do the measuring)

LOA = ROOT / "target" / "release" / "loa"

def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default

def timed(cmd, runs=5):
    """Median wall time of `runs` (after one warm-up) and the peak RSS of those processes alone
    (from wait4, not RUSAGE_CHILDREN, which would include every earlier child)."""
    walls, peak = [], 0
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0
        walls.append(time.perf_counter() - t0)
        peak = max(peak, usage.ru_maxrss)
    return statistics.median(walls[1:]), peak / 1024

def check_plan(files=10_000):
    with tempfile.TemporaryDirectory() as t:
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_announcements.py"), str(files), t],
                       check=True, stdout=subprocess.DEVNULL)
        ann = str(Path(t) / "announcements")
        check = timed([str(LOA), "check", ann])
        plan = timed([str(LOA), "plan", ann, "--from", "2026-11-20", "--days", "30", "--now=2026-11-20 00:00"])
        return check, plan

def baseline(n):
    with tempfile.TemporaryDirectory() as t:
        d = Path(t); zalo.repo(d, 10)
        port = zalo.free_port(); base = f"http://127.0.0.1:{port}"
        sim = zalo.start_sim(d, port, n, "--rate-limit", "0")
        try:
            token = zalo.http(f"{base}/_sim/tokens", b"")["access_token"]
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "baseline.py"), base, token, str(n), str(d / "b.db")],
                                 capture_output=True, text=True, check=True).stdout.split()
            return int(out[0]) / float(out[1])
        finally:
            sim.send_signal(signal.SIGTERM); sim.wait()

if __name__ == "__main__":
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    followers, base_n = arg("--followers", 100_000), arg("--baseline", 5_000)
    print("measuring (a few minutes)…", file=sys.stderr)
    rate, raw, peak_kib = zalo.fanout(followers)
    slow = baseline(base_n)
    p50, p99, _, _ = daemon.lateness(concurrency=256)
    (check_s, check_rss), (plan_s, plan_rss) = check_plan()
    idle, _ = daemon.idle_and_replan()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.machine())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1048576
    print(f"\nMachine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB; loa, `loa sim` and wrk share the cores.\n")
    print("| measure | loa | compared with | ratio |")
    print("|---|---|---|---|")
    print(f"| fan-out to {followers:,} followers over HTTP, rendered and recorded | {rate:,.0f} deliveries/s | simulator's raw rate under wrk, mean of just before and just after: {raw:,.0f} req/s | {rate / raw:.2f} |")
    print(f"| the same sends, sequential Python (requests + sqlite3), {base_n:,} followers | {rate:,.0f} deliveries/s | {slow:,.0f} deliveries/s | {rate / slow:.1f}× |")
    print(f"| due-time lateness, 1,000 sends due at once | p50 {p50:.1f} ms, p99 {p99:.1f} ms | | |")
    print(f"| `loa check`, 10,000 files | {check_s:.2f} s, peak RSS {check_rss:.0f} MiB | | |")
    print(f"| `loa plan --days 30`, 10,000 files | {plan_s:.2f} s, peak RSS {plan_rss:.0f} MiB | | |")
    print(f"| daemon idle with 10,000 announcements | RSS {idle['VmRSS'] / 1024:.1f} MiB | | |")
    print(f"| daemon peak during the fan-out | RSS {peak_kib / 1024:.1f} MiB | | |")
