-- svu-vakt on PostgreSQL: two roles, one database, the least grants.
--
--   svu_vakt_agare  owns the database's schema and its tables; only
--                   `svu-vakt migrate` (at installation and after an upgrade)
--                   logs in as it.
--   svu_vakt        the running service: reads and writes rows, never
--                   changes the schema. `serve` finds no migration pending
--                   and starts; with one pending it stops and says so.
--
-- Run as a superuser (or a role with CREATEROLE and CREATEDB):
--   psql -v agare_pw="'…'" -v tjanst_pw="'…'" -f ops/postgres/setup.sql
-- Passwords are best set afterwards with \password, never kept in a file.

CREATE ROLE svu_vakt_agare LOGIN;
CREATE ROLE svu_vakt LOGIN;
CREATE DATABASE svu_vakt OWNER svu_vakt_agare ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE svu_vakt FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE svu_vakt TO svu_vakt_agare, svu_vakt;

\connect svu_vakt
\ir grants.sql
