-- The Zalo channel. One token row per commune: the refresh token is single-use, so the newest is
-- written here before the new access token is used; `refreshing_by`/`refreshing_until` elect the
-- one refresher among the daemons sharing this database (a lease: a dead refresher's claim runs out).
CREATE TABLE zalo_tokens (
    commune_id        TEXT PRIMARY KEY,
    access_token      TEXT NOT NULL,
    refresh_token     TEXT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    generation        BIGINT NOT NULL,
    refreshing_by     TEXT,
    refreshing_until  BIGINT,
    last_error        TEXT,
    updated_at        BIGINT NOT NULL
);

-- The OA's followers, from paging user/getlist (and later follow/unfollow webhooks). A follower's
-- village comes from the village's tag; `in_group` when they are in one of the commune's village
-- groups, which reach them already.
CREATE TABLE followers (
    commune_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    village_id       TEXT,
    in_group         BIGINT NOT NULL DEFAULT 0,
    following        BIGINT NOT NULL,
    last_interaction BIGINT,
    display_name     TEXT,
    synced_at        BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (commune_id, user_id)
);

-- A head's phone behind their Zalo id: ZNS when the 7-day window for `message/cs` has closed.
ALTER TABLE deliveries ADD COLUMN fallback TEXT;
