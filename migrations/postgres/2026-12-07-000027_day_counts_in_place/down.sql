ALTER TABLE obligation_days RESET (fillfactor);
