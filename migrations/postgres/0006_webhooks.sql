-- Zalo's webhook events, as received: the raw body is kept (the record of what Zalo said), the key
-- deduplicates Zalo's retries (the message id, or a hash of the body for events without one), and
-- processed_at is set once the event has been applied, so a crash between the two re-applies it.
CREATE TABLE webhook_events (
    id           BIGSERIAL PRIMARY KEY,
    commune_id   TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    outcome      TEXT,
    UNIQUE (commune_id, event_key)
);
CREATE INDEX webhook_events_pending ON webhook_events (commune_id, id) WHERE processed_at IS NULL;

-- What people wrote to the OA: kept and shown to staff; a confirmation names the delivery it
-- confirmed.
CREATE TABLE inbound_messages (
    id           BIGSERIAL PRIMARY KEY,
    commune_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    msg_id       TEXT,
    text         TEXT NOT NULL,
    at           BIGINT NOT NULL,
    confirms     BIGINT
);
CREATE INDEX inbound_messages_at ON inbound_messages (commune_id, at);

-- Receipts name Zalo's message id: find the delivery by it.
CREATE INDEX deliveries_message ON deliveries (provider_message_id) WHERE provider_message_id IS NOT NULL;
