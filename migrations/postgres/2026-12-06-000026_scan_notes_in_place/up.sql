-- A scan notes three columns of every case it judges (next_check,
-- summary_hash, findings_hash). PostgreSQL writes such an UPDATE on the
-- case's own page without new index entries (a HOT update) when no indexed
-- column changes and the page has room; otherwise every case judged costs
-- a new entry in each of the table's indexes. Measured on 100 000 cases
-- (docs/PERFORMANCE.md, fifteenth round): one UPDATE of every case's three
-- columns 865 ms as the schema was, 272 ms like this.
--
-- 1. Cases never summarised are no longer indexed by their own condition
--    (`summary_hash IS NULL`, which every first scan changed): a case
--    without a summary is one that changed after the last scan started
--    (ingest, remove-batch and a unit register's reshaping set changed_at
--    with the summary), so `cases_changed_at` finds it. Cases left without
--    one by an earlier version are marked changed here once.
UPDATE cases SET changed_at = (SELECT max(started_at) FROM scan_runs) + interval '1 second'
  WHERE summary_hash IS NULL
    AND changed_at <= (SELECT max(started_at) FROM scan_runs);
DROP INDEX cases_unsummarised;
-- 2. Only a case with a next check is indexed by it (after a scan nearly
--    every case has none): a smaller index. (A note of NULL over NULL was
--    in place already; a case given a next check never is.)
DROP INDEX cases_next_check;
CREATE INDEX cases_next_check ON cases (next_check) WHERE next_check IS NOT NULL;
-- 3. Room on each page for the case's next version. Pages written before
--    keep their fill until they are rewritten; a scan's updates move such
--    cases once, and vacuum leaves room behind them.
ALTER TABLE cases SET (fillfactor = 45);
