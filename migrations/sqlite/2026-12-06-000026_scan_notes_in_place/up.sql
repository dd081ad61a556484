-- As the PostgreSQL migration of the same name, without the page fill
-- (SQLite rewrites a row in place in its b-tree): cases never summarised
-- are found by `changed_at` (a case without a summary changed after the
-- last scan started; those an earlier version left are marked changed
-- here once), and only a case with a next check is indexed by it. A first
-- scan then removes no entry from an index per case.
UPDATE cases SET changed_at = datetime((SELECT max(started_at) FROM scan_runs), '+1 second')
  WHERE summary_hash IS NULL
    AND changed_at <= (SELECT max(started_at) FROM scan_runs);
DROP INDEX cases_unsummarised;
DROP INDEX cases_next_check;
CREATE INDEX cases_next_check ON cases (next_check) WHERE next_check IS NOT NULL;
