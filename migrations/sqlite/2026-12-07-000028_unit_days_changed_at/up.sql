-- An incremental scan judges again the older storhelg staffing days whose
-- (unit, day) entry in the unit-day register changed since the last scan:
-- a judged day depends on nothing else of the events (rules::bemanning,
-- StaffingTracker::observe_day). It found them through every event that
-- arrived (an index on events.received_at: 634 MB of 9.9 GB at 1 M cases,
-- written on every event of an import, read by one query); the register's
-- entries now say when they last changed (the arriving batch's
-- received_at), read through an index of a few hundred thousand entries.
-- Entries made before this migration count as changed now, and after the
-- latest scan's start whatever the two clocks say: the next incremental
-- scan judges those pairs of its judged older staffing days once more (or,
-- past 200 000 entries, every staffing day whole), and never misses one
-- that changed before it.
ALTER TABLE unit_days ADD COLUMN changed_at TIMESTAMP;
UPDATE unit_days SET changed_at = max(
    strftime('%Y-%m-%d %H:%M:%f', 'now'),
    coalesce((SELECT strftime('%Y-%m-%d %H:%M:%f', max(started_at), '+1 second') FROM scan_runs), ''));
CREATE INDEX unit_days_changed_at ON unit_days (changed_at);
DROP INDEX events_received_at;
