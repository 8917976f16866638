-- A village group Zalo refused when a send went to it (-237: the group is disabled; -403: the OA
-- is not in it) reached none of its members: they are then written to one by one, once for each
-- refused group delivery. This table is that "once", across every daemon sharing the database.
CREATE TABLE group_failovers (
    delivery_id BIGINT PRIMARY KEY,
    commune_id  TEXT NOT NULL,
    members     BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
-- The refused group deliveries are few; the daemon looks for new ones on every tick.
CREATE INDEX deliveries_failed_groups ON deliveries (commune_id, deadline)
    WHERE target_kind = 'group' AND state = 'failed';
