-- An event must name an ingest batch that exists, as before; PostgreSQL
-- checks it once per statement now, not once per row. The row-level
-- foreign key ran a query per copied event that locked its batch's row
-- (`SELECT … FOR KEY SHARE`): two thirds of the server's time in an
-- import's COPY (100 000 cases, 1.6 M events: 18.7 s of COPY, 5.9 s
-- without the key), where one anti-join of the statement's batch ids takes
-- milliseconds. The rules the key kept are kept by the triggers below: an
-- event whose batch does not exist is refused, and a batch that still has
-- events cannot be deleted (nor the table truncated); stricter than the
-- key, a batch's id cannot be
-- changed. svu-vakt deletes a batch only after its events
-- (`remove-batch`) and never changes its id. SQLite keeps its foreign key.
ALTER TABLE events DROP CONSTRAINT events_batch_id_fkey;

-- The statement's batches are locked as the key locked them (FOR KEY
-- SHARE), one row per batch rather than per event: a delete of a batch
-- waits for a transaction adding events to it and then sees them.
CREATE FUNCTION svu_events_have_batch() RETURNS trigger AS $$
DECLARE
    wanted bigint;
    present bigint;
BEGIN
    SELECT count(DISTINCT batch_id) INTO wanted FROM new_events;
    SELECT count(*) INTO present FROM (
        SELECT b.id FROM ingest_batches b
        WHERE b.id IN (SELECT batch_id FROM new_events) FOR KEY SHARE OF b) AS locked;
    IF present < wanted THEN
        RAISE EXCEPTION 'insert or update on table "events" violates the link to "ingest_batches"'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER events_have_batch_ins AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION svu_events_have_batch();

-- An event moved to another batch (never done by svu-vakt): row by row.
CREATE FUNCTION svu_event_moved() RETURNS trigger AS $$
BEGIN
    PERFORM 1 FROM ingest_batches b WHERE b.id = NEW.batch_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "events" violates the link to "ingest_batches"'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER events_moved BEFORE UPDATE OF batch_id ON events
    FOR EACH ROW EXECUTE FUNCTION svu_event_moved();

-- A delete of batches: refused while events name them. A transaction
-- adding events holds their batches' rows (above), so the delete waits
-- for it and its query, in a snapshot of its own, sees what it added.
-- Nothing else waits: an import into other batches goes on.
CREATE FUNCTION svu_batches_gone() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_batches o JOIN events e ON e.batch_id = o.id) THEN
        RAISE EXCEPTION 'delete on table "ingest_batches" violates the link from "events"'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ingest_batches_gone_del AFTER DELETE ON ingest_batches
    REFERENCING OLD TABLE AS old_batches FOR EACH STATEMENT EXECUTE FUNCTION svu_batches_gone();

-- TRUNCATE, which the key refused without CASCADE, is refused while any
-- event is stored (truncate `events` first).
CREATE FUNCTION svu_batches_truncated() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events) THEN
        RAISE EXCEPTION 'cannot truncate "ingest_batches" while "events" names its rows'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ingest_batches_truncated BEFORE TRUNCATE ON ingest_batches
    FOR EACH STATEMENT EXECUTE FUNCTION svu_batches_truncated();

-- A batch's id is never changed (its events name it).
CREATE FUNCTION svu_batch_id_kept() RETURNS trigger AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'update on table "ingest_batches" would change the id that its events name'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ingest_batches_id_kept BEFORE UPDATE OF id ON ingest_batches
    FOR EACH ROW EXECUTE FUNCTION svu_batch_id_kept();
