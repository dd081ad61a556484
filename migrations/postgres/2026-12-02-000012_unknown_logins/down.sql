DROP TABLE unknown_logins;
