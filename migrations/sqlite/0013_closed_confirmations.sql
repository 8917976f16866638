-- When the daemon stopped following up a confirmation nobody gave: its announcement expired or
-- its version can no longer be read. Still unconfirmed in reports; no longer reminded, escalated
-- or read again at every tick, nor counted in loa_confirmations_pending.
ALTER TABLE confirmations ADD COLUMN closed_at BIGINT;
