-- The send loop claims the next chunk while the current one is on the wire. After a crash, a
-- claimed chunk that never reached the wire must not count as in doubt (a normal announcement's
-- in-doubt messages are never sent again). Each claim is numbered, and before a chunk goes out
-- its number is written here; recovery releases the chunks numbered after it.
ALTER TABLE deliveries ADD COLUMN claim_chunk BIGINT;
CREATE TABLE wire_marks (
    node  TEXT PRIMARY KEY,
    chunk BIGINT NOT NULL
);
