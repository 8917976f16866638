-- The delivery ledger. Times are microseconds since the Unix epoch (UTC). Every row belongs to a
-- commune, so one deployment can later serve many. Append-only: change the schema in a new file.

CREATE TABLE communes (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    planned_until BIGINT,            -- occurrences are materialised up to here
    updated_at    BIGINT NOT NULL
);

-- One row per load of the announcement directory (start, reload, SIGHUP).
CREATE TABLE loads (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    commune_id     TEXT NOT NULL,
    at             BIGINT NOT NULL,
    node           TEXT NOT NULL,
    git_commit     TEXT,
    files          BIGINT NOT NULL,
    problems       BIGINT NOT NULL,
    templates_hash TEXT NOT NULL
);

-- The current state of each announcement file.
CREATE TABLE announcements (
    commune_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    revision    BIGINT NOT NULL,     -- the last good revision, the one scheduled
    status      TEXT NOT NULL,       -- active | deleted
    problems    TEXT,                -- JSON array while the file does not validate, else NULL
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (commune_id, id)
);

-- Every good version of every file, as loaded: a broken edit or a restart falls back to it.
CREATE TABLE revisions (
    commune_id      TEXT NOT NULL,
    announcement_id TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    content_hash    TEXT NOT NULL,
    git_commit      TEXT,
    path            TEXT NOT NULL,
    source          TEXT NOT NULL,
    loaded_at       BIGINT NOT NULL,
    PRIMARY KEY (commune_id, announcement_id, revision)
);

-- One planned send of one announcement; expands into deliveries when due.
CREATE TABLE occurrences (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    commune_id      TEXT NOT NULL,
    announcement_id TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    rule            BIGINT NOT NULL,
    due             BIGINT NOT NULL,     -- the time the rule names
    send_at         BIGINT NOT NULL,     -- after quiet hours
    deadline        BIGINT NOT NULL,     -- not sent after this (missed instead)
    trigger         TEXT NOT NULL,       -- JSON
    urgent          BIGINT NOT NULL,
    state           TEXT NOT NULL,       -- planned | claimed | expanded | missed | cancelled
    reason          TEXT,
    claimed_by      TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (commune_id, announcement_id, revision, rule, due)
);
CREATE INDEX occurrences_due ON occurrences (commune_id, state, send_at);
CREATE INDEX occurrences_announcement ON occurrences (commune_id, announcement_id, due);

-- One row per recipient of one occurrence: a village group, a follower, a phone.
CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    occurrence_id       BIGINT NOT NULL REFERENCES occurrences (id),
    commune_id          TEXT NOT NULL,
    announcement_id     TEXT NOT NULL,
    village_id          TEXT,
    target_kind         TEXT NOT NULL,   -- group | user | phone
    target              TEXT NOT NULL,
    person              TEXT,
    text                TEXT NOT NULL,
    urgent              BIGINT NOT NULL,
    due                 BIGINT NOT NULL,
    deadline            BIGINT NOT NULL,
    state               TEXT NOT NULL,   -- planned sending sent delivered seen confirmed retrying failed expired missed unknown
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    possible_duplicate  BIGINT NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    error_code          TEXT,
    error_reason        TEXT,
    claimed_by          TEXT,
    lease_until         BIGINT,
    updated_at          BIGINT NOT NULL,
    UNIQUE (occurrence_id, target_kind, target)
);
CREATE INDEX deliveries_due ON deliveries (commune_id, state, next_attempt_at);
CREATE INDEX deliveries_occurrence ON deliveries (occurrence_id);

-- Every state change of every delivery, with its time.
CREATE TABLE delivery_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL,
    commune_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT,
    node        TEXT
);
CREATE INDEX delivery_events_delivery ON delivery_events (delivery_id);
