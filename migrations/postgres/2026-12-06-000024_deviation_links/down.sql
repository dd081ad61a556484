DROP TRIGGER deviations_id_kept ON deviations;
DROP FUNCTION svu_deviation_id_kept();
DROP TRIGGER deviations_gone_del ON deviations;
DROP FUNCTION svu_deviations_gone();
DROP TRIGGER deviation_history_moved ON deviation_history;
DROP TRIGGER deviation_parties_moved ON deviation_parties;
DROP FUNCTION svu_link_moved();
DROP TRIGGER deviation_history_has_deviation_ins ON deviation_history;
DROP TRIGGER deviation_parties_have_deviation_ins ON deviation_parties;
DROP FUNCTION svu_links_have_deviation();
ALTER TABLE deviation_history ADD CONSTRAINT deviation_history_deviation_id_fkey
    FOREIGN KEY (deviation_id) REFERENCES deviations (id);
ALTER TABLE deviation_parties ADD CONSTRAINT deviation_parties_deviation_id_fkey
    FOREIGN KEY (deviation_id) REFERENCES deviations (id) ON DELETE CASCADE;
