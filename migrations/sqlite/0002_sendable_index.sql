-- Claiming deliveries walks this index in priority order (urgent first, then oldest due) instead
-- of sorting every waiting delivery for each chunk.
CREATE INDEX deliveries_sendable ON deliveries (commune_id, urgent DESC, next_attempt_at, id)
    WHERE state IN ('planned', 'retrying');
