-- Failed logins with a user name that no account has, counted like an
-- account's (five in a row lock the name for fifteen minutes). Kept in the
-- database, not in memory: the answer costs the same write as a known
-- name's (timing does not tell which names exist), a restart does not
-- reset the lock, and what an anonymous caller can make us keep is one
-- fixed-size row per name (an HMAC under the installation key), pruned by age and capped in
-- number (store::users::UNKNOWN_LOGINS_KEPT).
CREATE TABLE unknown_logins (
    name_hash TEXT PRIMARY KEY NOT NULL,
    failed INTEGER NOT NULL,
    touched TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);
CREATE INDEX unknown_logins_touched ON unknown_logins (touched);
