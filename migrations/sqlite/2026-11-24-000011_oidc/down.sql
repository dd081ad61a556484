DROP TABLE oidc_logins;
DROP INDEX users_hsa_id;
ALTER TABLE users DROP COLUMN hsa_id;
