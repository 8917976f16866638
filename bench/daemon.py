#!/usr/bin/env python3
"""Daemon benchmarks on SQLite with the log channel (issue figures in brackets):
  1. fan-out recording rate: N deliveries due at once, deliveries/s from first claim to last
     outcome recorded [>= 20,000/s];
  2. lateness: 1,000 sends due in the same minute, from due time to the channel call, p50/p99
     [p99 <= 50 ms];
  3. idle daemon with 10,000 announcements: RSS [<= 50 MB]; one edited file re-planned [<= 100 ms].
Run from the repository root after `cargo build --release`: bench/daemon.py"""
import json, os, re, signal, sqlite3, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOA = Path(os.environ.get("LOA_BIN", ROOT / "target" / "release" / "loa"))
VN = timezone(timedelta(hours=7))

def fanout_repo(d: Path, villages: int, files: int, due: datetime):
    ann = d / "announcements"; ann.mkdir(parents=True); (d / "templates").mkdir()
    lines = ["commune: Xã Thử tải", "villages:"]
    lines += [f'  - {{ id: v{v}, name: Thôn {v}, zalo_group: "{0xa0000000 + v:08x}" }}' for v in range(villages)]
    (ann / "commune.yaml").write_text("\n".join(lines) + "\n")
    (d / "templates" / "general.tera").write_text("{{ title }} · {{ send.at }}{% if village %} · {{ village.name }}{% endif %}")
    at = due.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S")
    for i in range(files):
        (ann / f"tb-{i:05d}.yaml").write_text(f"title: Thông báo {i}\nsend:\n  - at: {at}\n")

def start(d: Path, **env):
    e = dict(os.environ, LOA_DATABASE=f"sqlite://{d}/loa.db", LOA_LOG_CHANNEL_PATH=str(d / "sent.jsonl"), LOA_LOG="info")
    e.update({k: str(v) for k, v in env.items()})
    return subprocess.Popen([str(LOA), "run"], cwd=d, env=e, stdout=subprocess.DEVNULL, stderr=open(d / "daemon.log", "w"))

def wait_final(d: Path, n: int, timeout=300):
    end = time.time() + timeout
    while not (d / "loa.db").exists() and time.time() < end:
        time.sleep(0.1)
    db = sqlite3.connect(str(d / "loa.db"), timeout=30)
    done = 0
    while time.time() < end:
        try:
            done = db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
            if done >= n:
                return db
        except sqlite3.OperationalError:
            pass
        time.sleep(0.2)
    sys.exit(f"only {done} of {n} deliveries sent")

def stop(p):
    p.send_signal(signal.SIGTERM); p.wait()

def broadcast_repo(d: Path, villages: int, heads: int, due: datetime):
    """One announcement to every village head: villages x heads recipients, one render a village."""
    ann = d / "announcements"; ann.mkdir(parents=True); (d / "templates").mkdir()
    lines = ["commune: Xã Thử tải", "villages:"]
    for v in range(villages):
        lines.append(f"  - id: v{v}\n    name: Thôn {v}\n    heads:")
        lines += [f'      - {{ name: Người {v}-{h}, zalo_user: "{7_000_000_000 + v * heads + h}" }}' for h in range(heads)]
    (ann / "commune.yaml").write_text("\n".join(lines) + "\n")
    (d / "templates" / "general.tera").write_text("{{ title }} · {{ send.at }}{% if village %} · {{ village.name }}{% endif %}")
    at = due.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S")
    (ann / "broadcast.yaml").write_text(f"title: Thông báo chung\naudience: {{ roles: [village_head] }}\nsend:\n  - at: {at}\n")

def fanout(villages=100, heads=200, concurrency=256):
    with tempfile.TemporaryDirectory() as t:
        d = Path(t); n = villages * heads
        broadcast_repo(d, villages, heads, datetime.now(timezone.utc) + timedelta(seconds=8))
        p = start(d, LOA_CONCURRENCY=concurrency)
        db = wait_final(d, n); stop(p)
        first = db.execute("SELECT MIN(at) FROM delivery_events WHERE state IN ('planned','sending')").fetchone()[0]
        last = db.execute("SELECT MAX(at) FROM delivery_events WHERE state = 'sent'").fetchone()[0]
        secs = (last - first) / 1e6
        return n, secs, n / secs

def lateness(files=1000, concurrency=256):
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        fanout_repo(d, 1, files, datetime.now(timezone.utc) + timedelta(seconds=8))
        p = start(d, LOA_CONCURRENCY=concurrency)
        db = wait_final(d, files); stop(p)
        # The channel call's own time: the log channel stamps each line as it writes it.
        due = {r[0]: r[1] for r in db.execute("SELECT id, due FROM deliveries")}
        late = []
        for line in (d / "sent.jsonl").read_text().splitlines():
            rec = json.loads(line)
            at = datetime.fromisoformat(rec["at"].replace("Z", "+00:00"))
            late.append((at.timestamp() * 1e6 - due[rec["delivery"]]) / 1000)
        late.sort()
        expanded = (db.execute("SELECT MAX(at) FROM delivery_events WHERE state = 'planned'").fetchone()[0]
                    - db.execute("SELECT MIN(due) FROM deliveries").fetchone()[0]) / 1000
        lateness.min = late[0]  # the first send's delay: how late the daemon starts, apart from its pace
        return statistics.median(late), late[int(len(late) * 0.99) - 1], late[-1], expanded

def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.*)$", status, re.M)}

def idle_and_replan(files=10000):
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_announcements.py"), str(files), str(d)], check=True, stdout=subprocess.DEVNULL)
        p = start(d)
        log = d / "daemon.log"
        end = time.time() + 300
        while "planned files=" not in log.read_text() and time.time() < end:
            time.sleep(0.2)
        time.sleep(5)
        idle = rss_kib(p.pid)
        target = next((d / "announcements").rglob("tb-00007.yaml"))
        times = []
        for i in range(5):
            target.write_text(target.read_text().replace("Cắt điện đợt", "Cắt điện (sửa) đợt") if i % 2 == 0 else target.read_text().replace("Cắt điện (sửa) đợt", "Cắt điện đợt"))
            before = log.read_text().count("re-planned changed files")
            end = time.time() + 10
            while log.read_text().count("re-planned changed files") == before and time.time() < end:
                time.sleep(0.05)
            times.append(int(re.findall(r"re-planned changed files.* ms=(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", log.read_text()))[-1]))
        stop(p)
        return idle, times

if __name__ == "__main__":
    if not LOA.exists():
        sys.exit("build first: cargo build --release")
    print(f"machine: {os.cpu_count()} cores, {Path('/proc/meminfo').read_text().split()[1]} kB RAM")
    for c in (64, 256, 1000):
        n, secs, rate = fanout(concurrency=c)
        print(f"fan-out (SQLite, log channel, {c} in flight): one announcement to {n} people in {secs:.2f} s = {rate:,.0f} deliveries/s")
    for c in (64, 256, 1000):
        p50, p99, mx, _ = lateness(concurrency=c)
        print(f"lateness, 1,000 sends due at once ({c} in flight): due -> channel call p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {mx:.1f} ms, least {lateness.min:.1f} ms")
    idle, times = idle_and_replan()
    print(f"idle with 10,000 announcements: RSS {idle['VmRSS'] / 1024:.1f} MiB (peak {idle['VmHWM'] / 1024:.1f} MiB)")
    print(f"one edited file re-planned: {statistics.median(times)} ms median of {len(times)} ({times})")
