-- PostgreSQL checks a deviation's parties and history lines once per
-- statement instead of through row-level foreign keys (the reasons: the
-- PostgreSQL migration of the same name). SQLite keeps its foreign keys:
-- checked in-process, they cost little. Nothing changes here.
SELECT 1;
