-- A fan-out changes each delivery's state twice (claimed, answered). Every index that names the
-- state is rewritten each time, so only the small sets the daemon looks for are indexed: what is
-- waiting to be sent (`deliveries_sendable`) and what is in flight (for taking over a dead
-- daemon's leases). The full (commune, state, time) index went.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_in_flight ON deliveries (commune_id, lease_until) WHERE state = 'sending';

-- Zalo's message ids are random: indexed, each chunk's outcomes landed on as many pages of the
-- index as it had rows, and every commit wrote them all again (half the cost of a fan-out). A
-- receipt names its recipient, so a person's delivery is found through the send's unique
-- (occurrence, kind, target) index for each recent send instead; only a village group's
-- deliveries, whose receipts name a member and not the group, keep a message-id index, a small one.
DROP INDEX deliveries_message;
CREATE INDEX deliveries_group_message ON deliveries (provider_message_id)
    WHERE target_kind = 'group' AND provider_message_id IS NOT NULL;

-- The event log is read per send (the reach-over-time chart), never per delivery. Indexed by the
-- send, its rows are appended at the end of one range instead of being inserted next to each
-- delivery's earlier events all over the index.
ALTER TABLE delivery_events ADD COLUMN occurrence_id BIGINT;
UPDATE delivery_events SET occurrence_id = (SELECT d.occurrence_id FROM deliveries d WHERE d.id = delivery_events.delivery_id);
DROP INDEX delivery_events_delivery;
CREATE INDEX delivery_events_occurrence ON delivery_events (occurrence_id);

DROP TRIGGER deliveries_event_insert;
CREATE TRIGGER deliveries_event_insert AFTER INSERT ON deliveries
BEGIN
    INSERT INTO delivery_events (delivery_id, occurrence_id, commune_id, at, state, detail, node)
    VALUES (NEW.id, NEW.occurrence_id, NEW.commune_id, NEW.updated_at, NEW.state, NEW.error_reason, NEW.node);
END;

DROP TRIGGER deliveries_event_update;
CREATE TRIGGER deliveries_event_update AFTER UPDATE OF state, attempts ON deliveries
WHEN NEW.state <> OLD.state OR NEW.attempts <> OLD.attempts
BEGIN
    INSERT INTO delivery_events (delivery_id, occurrence_id, commune_id, at, state, detail, node)
    VALUES (NEW.id, NEW.occurrence_id, NEW.commune_id, NEW.updated_at, NEW.state,
            CASE WHEN NEW.state = 'sending' THEN NULL ELSE COALESCE(NEW.error_reason, NEW.provider_message_id) END,
            NEW.node);
END;
