-- A deviation's berörd parts and history lines must name a deviation that
-- exists, as before; PostgreSQL checks it once per statement now, not once
-- per row. A row-level foreign key ran a query per inserted row that
-- locked the deviation (`SELECT … FOR KEY SHARE`): without them a first
-- full scan of 100 000 cases took 2.6 s less than its 9 s (200 000 parties
-- and history lines),
-- where one anti-join of the statement's rows takes milliseconds. The
-- rules the foreign keys kept are kept by the triggers below: a party or
-- history line without its deviation is refused, a deviation with history
-- cannot be deleted, and deleting one deletes its parties; stricter than
-- the keys, a deviation's id cannot be changed. svu-vakt never deletes a
-- deviation or changes its id; those rules are for an operator's hand.
-- SQLite keeps its foreign keys (checked in-process, they cost little).
ALTER TABLE deviation_parties DROP CONSTRAINT deviation_parties_deviation_id_fkey;
ALTER TABLE deviation_history DROP CONSTRAINT deviation_history_deviation_id_fkey;

CREATE FUNCTION svu_links_have_deviation() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_links n WHERE NOT EXISTS (SELECT 1 FROM deviations d WHERE d.id = n.deviation_id)) THEN
        RAISE EXCEPTION 'insert or update on table "%" violates the link to "deviations"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER deviation_parties_have_deviation_ins AFTER INSERT ON deviation_parties
    REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION svu_links_have_deviation();
CREATE TRIGGER deviation_history_has_deviation_ins AFTER INSERT ON deviation_history
    REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION svu_links_have_deviation();

-- A link moved to another deviation (never done by svu-vakt): row by row.
CREATE FUNCTION svu_link_moved() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM deviations d WHERE d.id = NEW.deviation_id) THEN
        RAISE EXCEPTION 'insert or update on table "%" violates the link to "deviations"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER deviation_parties_moved BEFORE UPDATE OF deviation_id ON deviation_parties
    FOR EACH ROW EXECUTE FUNCTION svu_link_moved();
CREATE TRIGGER deviation_history_moved BEFORE UPDATE OF deviation_id ON deviation_history
    FOR EACH ROW EXECUTE FUNCTION svu_link_moved();

-- A delete waits for every transaction that is adding parties or history
-- lines (SHARE against their ROW EXCLUSIVE) and then sees what they added:
-- the row-level key's lock on the deviation did the same the other way round.
CREATE FUNCTION svu_deviations_gone() RETURNS trigger AS $$
BEGIN
    LOCK TABLE deviation_history, deviation_parties IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM old_deviations o JOIN deviation_history h ON h.deviation_id = o.id) THEN
        RAISE EXCEPTION 'delete on table "deviations" violates the link from "deviation_history"'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    DELETE FROM deviation_parties p USING old_deviations o WHERE p.deviation_id = o.id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER deviations_gone_del AFTER DELETE ON deviations
    REFERENCING OLD TABLE AS old_deviations FOR EACH STATEMENT EXECUTE FUNCTION svu_deviations_gone();

-- A deviation's id is never changed (its parties and history name it).
CREATE FUNCTION svu_deviation_id_kept() RETURNS trigger AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'update on table "deviations" would change the id that its parts and history name'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER deviations_id_kept BEFORE UPDATE OF id ON deviations
    FOR EACH ROW EXECUTE FUNCTION svu_deviation_id_kept();
