-- The grants inside the svu_vakt database (run by setup.sql, or alone as a
-- superuser connected to the database). Idempotent.
--
-- The schema belongs to the owner role; PUBLIC may not create in it. The
-- service role reads and writes every table and uses the id sequences,
-- today's and those a later migration creates (default privileges).

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO svu_vakt_agare;
GRANT USAGE ON SCHEMA public TO svu_vakt;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO svu_vakt;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO svu_vakt;
ALTER DEFAULT PRIVILEGES FOR ROLE svu_vakt_agare IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO svu_vakt;
ALTER DEFAULT PRIVILEGES FOR ROLE svu_vakt_agare IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO svu_vakt;
