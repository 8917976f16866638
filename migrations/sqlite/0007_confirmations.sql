-- One row per village head asked to confirm one send: written with the send's deliveries (one
-- transaction), confirmed by a reply (or, to come, a link), reminded and escalated when late.
CREATE TABLE confirmations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    commune_id      TEXT NOT NULL,
    occurrence_id   BIGINT NOT NULL,
    announcement_id TEXT NOT NULL,
    village_id      TEXT NOT NULL,
    person          TEXT NOT NULL,
    user_id         TEXT,
    phone           TEXT,
    requested_at    BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    state           TEXT NOT NULL,     -- pending | confirmed
    confirmed_at    BIGINT,
    via             TEXT,              -- reply | link
    inbound_id      BIGINT,
    UNIQUE (occurrence_id, village_id, person)
);
CREATE INDEX confirmations_user ON confirmations (commune_id, user_id, requested_at);
