-- SPEC §6.0: an outbox row goes by mail or to a route's webhook (the
-- huvudman's own deviation system). A webhook row keeps its URL as
-- {"webhook": "<url>"} in `recipients` and its Idempotency-Key in
-- `message_id`; mail and webhooks are claimed apart.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail';
CREATE INDEX outbox_pending_channel ON outbox (channel, id)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
