-- The event log is written by the database: every delivery inserted, and every change of its state
-- or attempt count, appends a row. No code path can change a delivery without leaving its trace,
-- and a claim or an outcome is one statement instead of two.
ALTER TABLE deliveries ADD COLUMN node TEXT;

CREATE FUNCTION loa_delivery_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state OR NEW.attempts IS DISTINCT FROM OLD.attempts THEN
        INSERT INTO delivery_events (delivery_id, commune_id, at, state, detail, node)
        VALUES (NEW.id, NEW.commune_id, NEW.updated_at, NEW.state,
                CASE WHEN TG_OP = 'INSERT' THEN NEW.error_reason
                     WHEN NEW.state = 'sending' THEN NULL
                     ELSE COALESCE(NEW.error_reason, NEW.provider_message_id) END,
                NEW.node);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_event AFTER INSERT OR UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION loa_delivery_event();
