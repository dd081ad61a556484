CREATE INDEX events_received_at ON events (received_at);
