-- A deleted announcement's pending confirmations are closed when it is deleted (from this version
-- on); those of announcements deleted before are closed here, so that restoring such a file does
-- not remind heads of its old sends.
UPDATE confirmations SET closed_at = (
    SELECT a.updated_at FROM announcements a
    WHERE a.commune_id = confirmations.commune_id AND a.id = confirmations.announcement_id)
WHERE state = 'pending' AND closed_at IS NULL
  AND EXISTS (
    SELECT 1 FROM announcements a
    WHERE a.commune_id = confirmations.commune_id AND a.id = confirmations.announcement_id
      AND a.status = 'deleted');
