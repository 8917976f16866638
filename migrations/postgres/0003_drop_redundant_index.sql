-- The unique (occurrence_id, target_kind, target) index already serves lookups by occurrence;
-- one b-tree fewer to update for every delivery written.
DROP INDEX deliveries_occurrence;
