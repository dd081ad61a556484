-- The berörd part of a deviation (SPEC §6): the units whose work the breach
-- hurt, one row each, so the list can filter by either side and a kommun
-- can find what was reported on its behalf.
CREATE TABLE deviation_parties (
    deviation_id BIGINT NOT NULL REFERENCES deviations (id) ON DELETE CASCADE,
    unit TEXT NOT NULL,
    PRIMARY KEY (deviation_id, unit)
);
CREATE INDEX deviation_parties_unit ON deviation_parties (unit, deviation_id);
