-- Confirm links and follow-ups. Each confirmation gets a random key that its signed link names;
-- reminders and escalations are occurrences of their own (rule -1: reminder, -2: escalation)
-- that name the send they follow up, so they are sent, retried and recorded like any send.
ALTER TABLE confirmations ADD COLUMN link_key TEXT;
ALTER TABLE confirmations ADD COLUMN escalate_at BIGINT;
ALTER TABLE confirmations ADD COLUMN reminded_at BIGINT;
ALTER TABLE confirmations ADD COLUMN escalated_at BIGINT;
CREATE UNIQUE INDEX confirmations_link ON confirmations (link_key);
CREATE INDEX confirmations_pending ON confirmations (commune_id, due_at) WHERE state = 'pending';

ALTER TABLE occurrences ADD COLUMN parent_id BIGINT;
CREATE UNIQUE INDEX occurrences_follow_up ON occurrences (parent_id, rule) WHERE parent_id IS NOT NULL;

-- Secrets the daemons of one commune share (the key that signs confirm links).
CREATE TABLE secrets (
    commune_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (commune_id, name)
);

-- A text Zalo retried, or re-applied after a crash, is kept once.
CREATE UNIQUE INDEX inbound_messages_msg ON inbound_messages (commune_id, msg_id) WHERE msg_id IS NOT NULL;
