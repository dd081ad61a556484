-- PostgreSQL checks an event's ingest batch once per statement instead of
-- through a row-level foreign key (the reasons: the PostgreSQL migration of
-- the same name). SQLite keeps its foreign key: checked in-process, it
-- costs little. Nothing changes here.
SELECT 1;
