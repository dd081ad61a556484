-- When a deviation's last reminder and escalation went (SPEC §6.1: once per period).
ALTER TABLE deviation_handling ADD COLUMN reminded_at TIMESTAMP;
ALTER TABLE deviation_handling ADD COLUMN escalated_at TIMESTAMP;
