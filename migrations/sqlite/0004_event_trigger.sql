-- The event log is written by the database: every delivery inserted, and every change of its state
-- or attempt count, appends a row. No code path can change a delivery without leaving its trace,
-- and a claim or an outcome is one statement instead of two.
ALTER TABLE deliveries ADD COLUMN node TEXT;

CREATE TRIGGER deliveries_event_insert AFTER INSERT ON deliveries
BEGIN
    INSERT INTO delivery_events (delivery_id, commune_id, at, state, detail, node)
    VALUES (NEW.id, NEW.commune_id, NEW.updated_at, NEW.state, NEW.error_reason, NEW.node);
END;

CREATE TRIGGER deliveries_event_update AFTER UPDATE OF state, attempts ON deliveries
WHEN NEW.state <> OLD.state OR NEW.attempts <> OLD.attempts
BEGIN
    INSERT INTO delivery_events (delivery_id, commune_id, at, state, detail, node)
    VALUES (NEW.id, NEW.commune_id, NEW.updated_at, NEW.state,
            CASE WHEN NEW.state = 'sending' THEN NULL ELSE COALESCE(NEW.error_reason, NEW.provider_message_id) END,
            NEW.node);
END;
