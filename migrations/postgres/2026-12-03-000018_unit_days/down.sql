CREATE INDEX events_unit_at ON events (unit, at);
CREATE INDEX events_at ON events (at);
DROP TABLE unit_days;
