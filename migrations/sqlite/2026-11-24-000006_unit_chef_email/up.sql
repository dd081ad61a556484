-- Where reminders escalate when a unit's deviations are left unhandled (SPEC §3.1, §6.1).
ALTER TABLE units ADD COLUMN chef_email TEXT;
