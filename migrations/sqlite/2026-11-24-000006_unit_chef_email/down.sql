ALTER TABLE units DROP COLUMN chef_email;
