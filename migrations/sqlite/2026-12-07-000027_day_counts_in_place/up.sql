-- The day counts with room on their pages is a PostgreSQL setting (the
-- reasons: the PostgreSQL migration of the same name); SQLite rewrites a
-- row in place in its b-tree. Nothing changes here.
SELECT 1;
