//! # crm-jobs
//!
//! Durable jobs and timers, built once for everything that must happen later and exactly once:
//! pool reclaim, SLA timers, follow-up reminders, imports, retention. A job is a row in the
//! owning service's own database (`jobs`, this crate's [`MIGRATOR`]), so it is scheduled in the
//! same transaction as the change that calls for it and survives any restart.
//!
//! - [`schedule`] writes a job inside the caller's transaction. With a key, there is at most one
//!   pending job per (kind, key), and scheduling again moves it: a timer re-armed (an SLA
//!   deadline that moves when the ticket is paused) never fires twice. [`cancel`] disarms one.
//! - [`Worker`] runs due jobs. It takes one row at a time with `FOR UPDATE SKIP LOCKED`, so
//!   replicas share the work and never run a job twice at once, and runs the handler **in the
//!   transaction that marks the job done**: the handler's effect commits exactly when the job
//!   does. A worker that dies mid-job holds nothing: its row lock goes with its connection and the
//!   next worker runs the job (the effect of the first never committed).
//! - "Due" is decided by a [`Clock`] the worker is given, never by Postgres' `now()`: a test moves
//!   a manual clock and calls [`Worker::run_once`], instead of sleeping until a timer fires.
//! - A handler that fails (or panics) is retried with exponential back-off; after
//!   [`WorkerOptions::max_attempts`] the job is `failed`, kept with its last error for an operator,
//!   and counted (`crm_jobs_total{outcome="failed"}`).
//!
//! Why not a queue in Kafka or Redis: a job belongs with the change that scheduled it (same
//! transaction, same backup), and its timing must be testable; both hold in Postgres, and
//! `SKIP LOCKED` gives the concurrency for free.
//!
//! Migration versions 101–199 belong to this crate (the outbox's are 1–99), so its migrator
//! runs beside the others in one database (`crm_db::migrate`).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crm_clock::Clock;

/// The `jobs` table.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A job to schedule.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Which handler runs it (`pool.reclaim`).
    pub kind: String,
    /// With a key, at most one pending job per (kind, key): scheduling again moves it.
    pub key: Option<String>,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
}

/// Schedules `job` inside the caller's transaction; returns its id (the pending job's, when a
/// keyed one was moved).
pub async fn schedule(conn: &mut PgConnection, job: &NewJob) -> Result<Uuid, JobError> {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, key, payload, run_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (kind, key) WHERE state = 'pending' AND key IS NOT NULL
         DO UPDATE SET payload = EXCLUDED.payload, run_at = EXCLUDED.run_at, attempts = 0,
                       last_error = NULL
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&job.kind)
    .bind(&job.key)
    .bind(&job.payload)
    .bind(job.run_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Disarms the pending job of (`kind`, `key`); whether there was one.
pub async fn cancel(conn: &mut PgConnection, kind: &str, key: &str) -> Result<bool, JobError> {
    let gone = sqlx::query("DELETE FROM jobs WHERE kind = $1 AND key = $2 AND state = 'pending'")
        .bind(kind)
        .bind(key)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(gone > 0)
}

/// A due job, as its handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub key: Option<String>,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// Failed runs before this one.
    pub attempts: i32,
}

/// What a handler did with its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the job is `done`.
    Done,
    /// Not yet (a condition to wait for, not a failure): run it again at this time.
    Later(DateTime<Utc>),
}

/// Why a handler failed; logged, kept as the job's `last_error`, retried.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Handler::run`] returns.
pub type HandlerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, HandlerError>> + Send + 'a>>;

/// Runs the jobs of one kind. `tx` is the transaction that marks the job done: write the
/// job's effect through it, so both commit together or neither does.
pub trait Handler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job, tx: &'a mut PgConnection) -> HandlerFuture<'a>;
}

/// How a [`Worker`] paces itself.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How long [`Worker::run`] waits when nothing was due.
    pub poll: Duration,
    /// At most this many jobs per [`Worker::run_once`].
    pub batch: usize,
    /// Failed runs after which a job is `failed` for good.
    pub max_attempts: i32,
    /// The wait after the first failure; doubled after each further one, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll: Duration::from_secs(1),
            batch: 100,
            max_attempts: 10,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

impl WorkerOptions {
    /// The wait before the next try after `failures` failed runs (1, 2, …).
    pub fn backoff_after(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.backoff
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_backoff)
    }
}

/// Runs the due jobs of the kinds it has handlers for. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    pool: PgPool,
    clock: Clock,
    handlers: Arc<HashMap<String, Arc<dyn Handler>>>,
    options: WorkerOptions,
}

/// What one attempt at one job came to.
enum Ran {
    Nothing,
    Job,
}

impl Worker {
    pub fn new(pool: PgPool, clock: Clock, options: WorkerOptions) -> Self {
        Worker {
            pool,
            clock,
            handlers: Arc::new(HashMap::new()),
            options,
        }
    }

    /// Runs jobs of `kind` with `handler`. Jobs of kinds without a handler are left alone (a
    /// newer replica's, during a rolling upgrade).
    pub fn handle(mut self, kind: &str, handler: impl Handler) -> Self {
        Arc::make_mut(&mut self.handlers).insert(kind.to_string(), Arc::new(handler));
        self
    }

    /// Runs due jobs, one transaction each, until none is due or `batch` ran; how many ran
    /// (whatever their outcome).
    pub async fn run_once(&self) -> Result<usize, JobError> {
        let mut ran = 0;
        while ran < self.options.batch {
            match self.run_one().await? {
                Ran::Nothing => break,
                Ran::Job => ran += 1,
            }
        }
        Ok(ran)
    }

    /// Runs jobs until `stop`, waiting `poll` whenever nothing was due; database errors are
    /// logged and retried after the same wait.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let ran = match self.run_once().await {
                Ok(ran) => ran,
                Err(err) => {
                    tracing::warn!(error = %err, "jobs: could not run due jobs; retrying");
                    0
                }
            };
            if ran == 0 {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.options.poll) => {}
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    }

    async fn run_one(&self) -> Result<Ran, JobError> {
        let kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let job: Option<Job> = sqlx::query_as(
            "SELECT id, kind, key, payload, run_at, attempts FROM jobs
              WHERE state = 'pending' AND run_at <= $1 AND kind = ANY($2)
              ORDER BY run_at, id
              LIMIT 1
              FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(&kinds)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = job else {
            return Ok(Ran::Nothing);
        };
        let handler = self.handlers[&job.kind].clone();
        // A panicking handler is a failed run, not a dead worker.
        let outcome = AssertUnwindSafe(handler.run(&job, &mut tx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err("the handler panicked".into()));
        match outcome {
            Ok(Outcome::Done) => {
                sqlx::query(
                    "UPDATE jobs SET state = 'done', finished_at = $2, last_error = NULL
                      WHERE id = $1",
                )
                .bind(job.id)
                .bind(self.clock.now())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                count(&job.kind, "done");
            }
            Ok(Outcome::Later(at)) => {
                sqlx::query("UPDATE jobs SET run_at = $2 WHERE id = $1")
                    .bind(job.id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                count(&job.kind, "later");
            }
            Err(err) => {
                // Nothing of the failed run stays; the failure is recorded on its own.
                tx.rollback().await?;
                self.failed(&job, &err.to_string()).await?;
            }
        }
        Ok(Ran::Job)
    }

    async fn failed(&self, job: &Job, error: &str) -> Result<(), JobError> {
        let failures = job.attempts + 1;
        let gave_up = failures >= self.options.max_attempts;
        let retry_at = self.clock.now()
            + chrono::Duration::from_std(self.options.backoff_after(failures))
                .unwrap_or(chrono::Duration::MAX);
        tracing::warn!(job = %job.id, kind = %job.kind, failures, gave_up, error, "jobs: a run failed");
        // The lock went with the rollback: if another worker ran the job meanwhile (its
        // attempt count or state moved on), its outcome stands and this failure is not recorded.
        sqlx::query(
            "UPDATE jobs SET attempts = $2, last_error = $3,
                    state = CASE WHEN $4 THEN 'failed' ELSE state END,
                    finished_at = CASE WHEN $4 THEN $5 ELSE finished_at END,
                    run_at = CASE WHEN $4 THEN run_at ELSE $6 END
              WHERE id = $1 AND state = 'pending' AND attempts = $7",
        )
        .bind(job.id)
        .bind(failures)
        .bind(error)
        .bind(gave_up)
        .bind(self.clock.now())
        .bind(retry_at)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        count(&job.kind, if gave_up { "failed" } else { "retry" });
        Ok(())
    }
}

fn count(kind: &str, outcome: &'static str) {
    metrics::counter!("crm_jobs_total", "kind" => kind.to_string(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let options = WorkerOptions {
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=6)
            .map(|n| options.backoff_after(n).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(options.backoff_after(i32::MAX).as_secs(), 60);
    }
}
