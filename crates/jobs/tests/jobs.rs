//! Jobs against a real Postgres: timers fire when the test's clock says so and once, keyed
//! timers move and cancel, failures back off and end as `failed`, a job's effect commits with
//! it or not at all, replicas run each job once, and a worker that dies mid-job leaves it to the
//! next.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crm_jobs::{
    Clock, Handler, HandlerFuture, Job, NewJob, Outcome, Worker, WorkerOptions, cancel, schedule,
};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;

async fn pool() -> PgPool {
    let pool = PgPool::connect(&crm_testkit::fresh_db_url().await)
        .await
        .expect("the test database");
    crm_db::migrate(&pool, &[&crm_jobs::MIGRATOR])
        .await
        .expect("jobs migration");
    sqlx::query("CREATE TABLE effects (job_id UUID PRIMARY KEY, payload JSONB NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// One row per run into `effects`, in the job's transaction (a second run of the same job
/// would violate the primary key).
async fn write_effect(job: &Job, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO effects (job_id, payload) VALUES ($1, $2)")
        .bind(job.id)
        .bind(&job.payload)
        .execute(tx)
        .await?;
    Ok(())
}

/// Writes its effect and is done.
struct Record;

impl Handler for Record {
    fn run<'a>(&'a self, job: &'a Job, tx: &'a mut PgConnection) -> HandlerFuture<'a> {
        Box::pin(async move {
            write_effect(job, tx).await?;
            Ok(Outcome::Done)
        })
    }
}

/// Writes its effect, then fails: the effect must not stay.
struct WriteThenFail;

impl Handler for WriteThenFail {
    fn run<'a>(&'a self, job: &'a Job, tx: &'a mut PgConnection) -> HandlerFuture<'a> {
        Box::pin(async move {
            write_effect(job, tx).await?;
            Err(format!("refused on attempt {}", job.attempts + 1).into())
        })
    }
}

/// Says it started, then never finishes (a worker killed mid-job).
struct Hang(Arc<Notify>);

impl Handler for Hang {
    fn run<'a>(&'a self, _: &'a Job, _: &'a mut PgConnection) -> HandlerFuture<'a> {
        Box::pin(async move {
            self.0.notify_one();
            std::future::pending().await
        })
    }
}

fn job(kind: &str, key: Option<&str>, run_at: chrono::DateTime<Utc>) -> NewJob {
    NewJob {
        kind: kind.into(),
        key: key.map(str::to_string),
        payload: serde_json::json!({"account": "acme"}),
        run_at,
    }
}

async fn add(pool: &PgPool, new: NewJob) -> uuid::Uuid {
    let mut conn = pool.acquire().await.unwrap();
    schedule(&mut conn, &new).await.unwrap()
}

async fn effects(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn state(pool: &PgPool, id: uuid::Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT state, attempts, last_error FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_timer_fires_when_the_clock_reaches_it_and_only_once() {
    let pool = pool().await;
    let clock = Clock::manual_now();
    let worker = Worker::new(pool.clone(), clock.clone(), WorkerOptions::default())
        .handle("reminder", Record);
    let id = add(
        &pool,
        job("reminder", None, clock.now() + chrono::Duration::hours(1)),
    )
    .await;

    assert_eq!(worker.run_once().await.unwrap(), 0, "not due yet");
    clock.advance(Duration::from_secs(3599));
    assert_eq!(worker.run_once().await.unwrap(), 0, "a second early");
    clock.advance(Duration::from_secs(1));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(effects(&pool).await, 1);
    assert_eq!(state(&pool, id).await.0, "done");
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(worker.run_once().await.unwrap(), 0, "done is done");

    // A kind this worker has no handler for is left alone (a newer replica's).
    let other = add(&pool, job("sla.breach", None, clock.now())).await;
    assert_eq!(worker.run_once().await.unwrap(), 0);
    assert_eq!(state(&pool, other).await.0, "pending");
}

#[tokio::test]
async fn a_keyed_timer_is_moved_not_doubled_and_can_be_cancelled() {
    let pool = pool().await;
    let clock = Clock::manual_now();
    let worker =
        Worker::new(pool.clone(), clock.clone(), WorkerOptions::default()).handle("sla", Record);
    let first = add(
        &pool,
        job(
            "sla",
            Some("ticket-1"),
            clock.now() + chrono::Duration::hours(1),
        ),
    )
    .await;
    let moved = add(
        &pool,
        job(
            "sla",
            Some("ticket-1"),
            clock.now() + chrono::Duration::hours(4),
        ),
    )
    .await;
    assert_eq!(first, moved, "one pending job per key");

    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(worker.run_once().await.unwrap(), 0, "it was moved to 4 h");
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(worker.run_once().await.unwrap(), 1);

    // Once done, the same key schedules a new job; cancelled, it never runs.
    let next = add(&pool, job("sla", Some("ticket-1"), clock.now())).await;
    assert_ne!(next, first);
    let mut conn = pool.acquire().await.unwrap();
    assert!(cancel(&mut conn, "sla", "ticket-1").await.unwrap());
    assert!(!cancel(&mut conn, "sla", "ticket-1").await.unwrap());
    assert_eq!(worker.run_once().await.unwrap(), 0);
    assert_eq!(effects(&pool).await, 1);
}

#[tokio::test]
async fn a_failing_job_keeps_none_of_its_effect_backs_off_and_ends_failed() {
    let pool = pool().await;
    let clock = Clock::manual_now();
    let options = WorkerOptions {
        max_attempts: 3,
        backoff: Duration::from_secs(10),
        ..Default::default()
    };
    let worker = Worker::new(pool.clone(), clock.clone(), options).handle("import", WriteThenFail);
    let id = add(&pool, job("import", None, clock.now())).await;

    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(
        effects(&pool).await,
        0,
        "the failed run's effect was rolled back"
    );
    let (s, attempts, error) = state(&pool, id).await;
    assert_eq!((s.as_str(), attempts), ("pending", 1));
    assert_eq!(error.as_deref(), Some("refused on attempt 1"));

    assert_eq!(worker.run_once().await.unwrap(), 0, "backing off 10 s");
    clock.advance(Duration::from_secs(10));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    clock.advance(Duration::from_secs(19));
    assert_eq!(worker.run_once().await.unwrap(), 0, "then 20 s");
    clock.advance(Duration::from_secs(1));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let (s, attempts, error) = state(&pool, id).await;
    assert_eq!((s.as_str(), attempts), ("failed", 3));
    assert_eq!(error.as_deref(), Some("refused on attempt 3"));
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        worker.run_once().await.unwrap(),
        0,
        "failed is for an operator"
    );
    assert_eq!(effects(&pool).await, 0);
}

#[tokio::test]
async fn replicas_share_the_due_jobs_and_run_each_exactly_once() {
    let pool = pool().await;
    let clock = Clock::manual_now();
    for n in 0..200 {
        add(
            &pool,
            job("reclaim", None, clock.now() - chrono::Duration::seconds(n)),
        )
        .await;
    }
    // Two replicas: each its own pool, as two processes would have.
    let second = PgPool::connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let a = Worker::new(pool.clone(), clock.clone(), WorkerOptions::default())
        .handle("reclaim", Record);
    let b = Worker::new(second, clock.clone(), WorkerOptions::default()).handle("reclaim", Record);
    let (ran_a, ran_b) = tokio::join!(
        async {
            let mut total = 0;
            loop {
                let ran = a.run_once().await.unwrap();
                if ran == 0 {
                    return total;
                }
                total += ran;
            }
        },
        async {
            let mut total = 0;
            loop {
                let ran = b.run_once().await.unwrap();
                if ran == 0 {
                    return total;
                }
                total += ran;
            }
        }
    );
    assert_eq!(ran_a + ran_b, 200);
    assert_eq!(
        effects(&pool).await,
        200,
        "every job once (a second run would violate the key)"
    );
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'done'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(done, 200);
}

#[tokio::test]
async fn a_worker_that_dies_mid_job_leaves_the_job_to_the_next() {
    let pool = pool().await;
    let clock = Clock::manual_now();
    let id = add(&pool, job("reclaim", None, clock.now())).await;

    // The first replica takes the job and dies in the middle of it: its process (here, its
    // task and its own pool, so its connections) goes away.
    let dying_pool = PgPool::connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let started = Arc::new(Notify::new());
    let dying = Worker::new(dying_pool.clone(), clock.clone(), WorkerOptions::default())
        .handle("reclaim", Hang(started.clone()));
    let task = tokio::spawn(async move { dying.run_once().await });
    started.notified().await;
    // While it holds the job, nobody else runs it.
    let next = Worker::new(pool.clone(), clock.clone(), WorkerOptions::default())
        .handle("reclaim", Record);
    assert_eq!(
        next.run_once().await.unwrap(),
        0,
        "held by the running replica"
    );
    task.abort();
    let _ = task.await;
    dying_pool.close().await;

    assert_eq!(next.run_once().await.unwrap(), 1);
    assert_eq!(effects(&pool).await, 1);
    assert_eq!(state(&pool, id).await.0, "done");
}
