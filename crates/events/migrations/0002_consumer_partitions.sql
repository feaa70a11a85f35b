-- Where each consumer (crm-events `consumer`) is in its topics, and which replica reads which
-- partition (docs/adr/0013-consumer-recovery.md). Offsets are committed here, in the transaction
-- of the handler's effect, not in the broker's consumer group.

-- The replicas of a consumer that are alive: each renews its row every lease round, and a row
-- whose lease ran out belongs to a replica that died (SIGKILL, lost node) and is deleted.
CREATE TABLE IF NOT EXISTS consumer_members (
    consumer   TEXT NOT NULL,
    member     TEXT NOT NULL,                       -- one per process: <host>-<random>
    expires_at TIMESTAMPTZ NOT NULL,                -- now() + kafka.session_timeout_ms, renewed
    PRIMARY KEY (consumer, member)
);

-- One row per partition of the consumer's topics: the next offset to apply, and the replica
-- that holds it until `lease_until` (renewed with the member's row).
CREATE TABLE IF NOT EXISTS consumer_partitions (
    consumer    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT,                             -- NULL: nothing applied yet, start at the earliest
    owner       TEXT,                               -- NULL: free
    lease_until TIMESTAMPTZ,
    PRIMARY KEY (consumer, topic, partition)
);
