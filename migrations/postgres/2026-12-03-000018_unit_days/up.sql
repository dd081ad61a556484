-- The unit-day register: per unit and local day, its first act and the
-- first act of each kind that shows storhelg staffing (SPEC §4.4). Kept at
-- ingest, it replaces the events' `at` and `(unit, at)` indexes, which
-- cost import more than half its time. Filled from the stored events by
-- `svu-vakt migrate` (store::unit_days::rebuild) when this migration runs.
CREATE TABLE unit_days (
    unit TEXT NOT NULL,
    day TEXT NOT NULL,
    first_at TIMESTAMP NOT NULL,
    bemanning_at TIMESTAMP,
    morning_at TIMESTAMP,
    afternoon_at TIMESTAMP,
    PRIMARY KEY (unit, day)
);
CREATE INDEX unit_days_day ON unit_days (day);
CREATE INDEX unit_days_first_at ON unit_days (first_at);
DROP INDEX events_at;
DROP INDEX events_unit_at;
