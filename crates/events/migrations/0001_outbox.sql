-- Platform tables every service database gets (crm-events). Service migrations use timestamp
-- versions, so these small versions never collide with them.

-- Events waiting to be published, written in the same transaction as the change they describe.
CREATE TABLE IF NOT EXISTS event_outbox (
    seq             BIGSERIAL PRIMARY KEY,          -- commit order per record is seq order
    id              UUID NOT NULL UNIQUE,            -- CloudEvents id; consumers dedup on it
    topic           TEXT NOT NULL,
    subject         TEXT NOT NULL,                   -- record id; also the Kafka key (ordering)
    event_type      TEXT NOT NULL,
    source          TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    data            JSONB NOT NULL,
    trace_headers   JSONB NOT NULL DEFAULT '[]',     -- W3C traceparent/tracestate of the writer
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    published_at    TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS event_outbox_pending
    ON event_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS event_outbox_pending_subject
    ON event_outbox (topic, subject, seq) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS event_outbox_published
    ON event_outbox (published_at) WHERE published_at IS NOT NULL;

-- Events a consumer has applied, written in the same transaction as the consumer's effect.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
