-- Zalo may tell that a message was received before loa has written that message's outcome (the
-- receipt races the end of the send's chunk). Such an event is applied again a little later
-- instead of being counted as matching nothing: retry_at says when.
ALTER TABLE webhook_events ADD COLUMN retry_at BIGINT;
