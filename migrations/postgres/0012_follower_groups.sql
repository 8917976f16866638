-- Which village groups each follower is in (their Zalo group ids, comma-separated), not only
-- whether they are in one: a follower in another village's group must still be reached one by
-- one by their own village's announcements. NULL with in_group = 1 (synced before this column):
-- unknown, counted as in every group until the next sync.
ALTER TABLE followers ADD COLUMN group_ids TEXT;
