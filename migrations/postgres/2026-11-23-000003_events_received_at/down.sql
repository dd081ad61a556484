DROP INDEX events_received_at;
