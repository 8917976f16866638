-- The OA's ZNS quota as Zalo last reported it with a phone message it accepted: how many a day,
-- how many are left. One row per commune; of several daemons' reports the latest stands. Read by
-- `loa zalo status`, the dashboard and /metrics.
CREATE TABLE zns_quota (
    commune_id      TEXT PRIMARY KEY,
    daily_quota     BIGINT NOT NULL,
    remaining_quota BIGINT NOT NULL,
    seen_at         BIGINT NOT NULL,
    node            TEXT NOT NULL
);
