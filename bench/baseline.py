#!/usr/bin/env python3
"""The same fan-out done the way a commune's IT person would: a short sequential script that pages
the OA's followers, sends each the text with `requests`, and records each answer in SQLite. It is
the baseline `bench/table.py` compares loa with. Usage: bench/baseline.py BASE_URL ACCESS_TOKEN N DB"""
import sqlite3, sys, time

import requests

base, token, n, db_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = requests.Session()
s.headers["access_token"] = token
db = sqlite3.connect(db_path)
db.execute("CREATE TABLE IF NOT EXISTS sent (user_id TEXT, message_id TEXT, error INTEGER, at REAL)")

followers, offset = [], 0
while len(followers) < n:
    r = s.get(f"{base}/v3.0/oa/user/getlist", params={"data": f'{{"offset":{offset},"count":50}}'}).json()
    users = r.get("data", {}).get("users", [])
    if not users:
        break
    followers += [u["user_id"] for u in users]
    offset += len(users)
followers = followers[:n]

start = time.time()
for user in followers:
    body = {"recipient": {"user_id": user}, "message": {"text": "Mời bà con xem thông báo của xã."}}
    r = s.post(f"{base}/v3.0/oa/message/cs", json=body).json()
    db.execute("INSERT INTO sent VALUES (?, ?, ?, ?)",
               (user, (r.get("data") or {}).get("message_id"), r.get("error"), time.time()))
    db.commit()
secs = time.time() - start
print(f"{len(followers)} {secs:.3f}")
