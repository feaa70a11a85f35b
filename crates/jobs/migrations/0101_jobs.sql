-- Durable jobs and timers (crm-jobs). One row per job; a job is due when run_at has passed by
-- the worker's clock. Workers take due rows with FOR UPDATE SKIP LOCKED and run each inside the
-- transaction that marks it done, so a job's effect commits exactly when the job does, and a
-- worker that dies mid-job leaves the row to the next one (its lock goes with its connection).

CREATE TABLE IF NOT EXISTS jobs (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,                 -- which handler runs it: 'pool.reclaim', …
    key         TEXT,                          -- at most one pending job per (kind, key)
    payload     JSONB NOT NULL DEFAULT '{}',
    run_at      TIMESTAMPTZ NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,    -- failed runs so far
    last_error  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at) WHERE state = 'pending';
CREATE UNIQUE INDEX IF NOT EXISTS jobs_pending_key ON jobs (kind, key)
    WHERE state = 'pending' AND key IS NOT NULL;
