#!/usr/bin/env python3
"""Generates N realistic announcement files (a mix of every kind and send rule) beside a copy of
the example commune, for benchmarking `loa check` and `loa plan`. Usage: gen_announcements.py N DIR"""
import random
import shutil
import sys
from pathlib import Path

n, out = int(sys.argv[1]), Path(sys.argv[2])
root = Path(__file__).resolve().parent.parent
ann = out / "announcements"
if out.exists():
    shutil.rmtree(out)
ann.mkdir(parents=True)
shutil.copy(root / "announcements" / "commune.yaml", ann / "commune.yaml")
shutil.copytree(root / "templates", out / "templates")
villages = ["lang-tre", "go-da", "yen-ngua", "bieu-qua", "ba-lien"]
rng = random.Random(42)

for i in range(n):
    day = 1 + i % 28
    month = 12 if i % 2 else 11
    v = rng.sample(villages, rng.randint(1, 3))
    kind = ["id_card_campaign", "power_cut", "meeting", "general", "storm_warning"][i % 5]
    sub = ann / f"nhom-{i // 500:02d}"
    sub.mkdir(exist_ok=True)
    if kind == "id_card_campaign":
        body = f"""title: Làm căn cước công dân đợt {i}
kind: id_card_campaign
audience: {{ villages: [{", ".join(v)}] }}
event: {{ starts: 2026-12-{day:02d} 07:30, ends: 2026-12-{day:02d} 11:00, place: Nhà văn hóa thôn }}
send:
  - at: 2026-11-20 08:00
  - before_event: [7d, 1d, 2h]
confirm: {{ by: [village_head], within: 2h, escalate_to: [cong-an-xa] }}
data: {{ who: công dân từ đủ 14 tuổi, bring: [Sổ hộ khẩu, Giấy khai sinh], contact: Công an xã }}
"""
    elif kind == "power_cut":
        body = f"""title: Cắt điện đợt {i}
kind: power_cut
audience: {{ villages: [{", ".join(v)}] }}
event: {{ starts: 2026-12-{day:02d} 07:00, ends: 2026-12-{day:02d} 16:00 }}
send:
  - at: 2026-11-21 08:00
  - before_event: [1d]
data: {{ reason: bảo trì, area: các thôn, utility: Điện lực Minh Long }}
"""
    elif kind == "meeting":
        body = f"""title: Họp thôn định kỳ {i}
kind: meeting
audience: {{ villages: [{v[0]}] }}
send:
  - cron: "{rng.randint(0, 59)} {rng.randint(6, 20)} * * {rng.choice(["MON", "WED", "FRI", "SUN"])}"
    from: 2026-11-01
    until: 2027-06-30
data: {{ when: "19:30", place: Nhà văn hóa thôn, agenda: [Việc chung, Việc khác] }}
"""
    elif kind == "general":
        body = f"""title: Thông báo chung số {i}
send:
  - at: 2026-{month}-{day:02d} {rng.randint(6, 20):02d}:{rng.choice(["00", "30"])}
expires: 2027-01-31 17:00
data:
  body: Nội dung thông báo số {i} gửi toàn xã.
"""
    else:
        body = f"""title: Cảnh báo thời tiết {i}
kind: storm_warning
priority: urgent
send:
  - cron: "0 */6 * * *"
    from: 2026-{month}-{day:02d}
expires: 2026-{month}-{day:02d} 23:00
confirm: {{ by: [village_head], within: 1h, escalate_to: [chu-tich] }}
data:
  storm: Áp thấp nhiệt đới
  level: cấp 7
  landfall: trong ngày
  rain: mưa to
  actions: [Chằng chống nhà cửa]
  hotline: "0255 3860 123"
"""
    (sub / f"tb-{i:05d}.yaml").write_text(body, encoding="utf-8")
print(f"{n} announcements in {ann}")
