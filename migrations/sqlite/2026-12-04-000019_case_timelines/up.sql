-- Every case's events packed in one row (store::packed), kept in the
-- transaction that changes the case's events, so a scan reads one row per
-- case. Derived from `events`: filled from the stored events by
-- `svu-vakt migrate` (store::timelines::rebuild_all) when this migration
-- runs; a case without a row is read from `events`.
CREATE TABLE case_timelines (
    case_id TEXT PRIMARY KEY NOT NULL,
    packed BLOB NOT NULL
);
