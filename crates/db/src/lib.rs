//! Postgres plumbing shared by the services: every service owns its own database.
//!
//! - [`pool`] makes a lazy pool, so a process starts (and answers liveness probes) before
//!   Postgres is reachable;
//! - [`migrate_until_done`] creates the database when allowed, applies every embedded migrator
//!   (the platform's outbox tables and the service's own schema) and retries with back-off until it
//!   succeeds — readiness stays false until then.
//!
//! Several migrators share one database: each runs with `ignore_missing`, so the versions applied
//! by the others do not count as "missing" and each applies only its own.

use std::time::Duration;

use crm_settings::DatabaseSettings;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use tokio_util::sync::CancellationToken;

pub use sqlx;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stopped before migrations finished")]
    Cancelled,
}

fn options(settings: &DatabaseSettings) -> Result<PgConnectOptions, DbError> {
    let options: PgConnectOptions = settings.url().parse().map_err(DbError::Url)?;
    // Statement logging at INFO would flood the logs; slow statements still warn.
    Ok(options
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
}

/// A pool that connects on first use.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect_lazy_with(options(settings)?))
}

/// Creates the database named in the settings when it does not exist yet, connecting to the
/// server's `postgres` database to do so.
pub async fn create_database_if_missing(settings: &DatabaseSettings) -> Result<(), DbError> {
    let target = options(settings)?;
    let name = target.get_database().unwrap_or("postgres").to_string();
    let mut admin = target.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it so any name is taken literally.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}

/// Applies each migrator in order. Concurrent replicas are safe: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool, migrators: &[&Migrator]) -> Result<(), DbError> {
    for migrator in migrators {
        let mut migrator = Migrator::with_migrations(migrator.iter().cloned().collect());
        migrator.set_ignore_missing(true);
        migrator.run(pool).await?;
    }
    Ok(())
}

/// Creates (if allowed) and migrates the database, retrying with back-off (up to 10 s between
/// tries) until it works or `stop` is cancelled.
pub async fn migrate_until_done(
    pool: &PgPool,
    settings: &DatabaseSettings,
    migrators: &[&Migrator],
    stop: &CancellationToken,
) -> Result<(), DbError> {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            if settings.create_if_missing {
                create_database_if_missing(settings).await?;
            }
            migrate(pool, migrators).await
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            // A broken migration will not fix itself by waiting: fail loudly.
            Err(DbError::Migrate(e)) if !is_transient_migrate(&e) => {
                return Err(DbError::Migrate(e));
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "database not ready");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Err(DbError::Cancelled),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Whether `err` means Postgres is unreachable or saturated (the client may retry: 503), as
/// opposed to a statement that failed on it (a bug: 500).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
    )
}

/// Errors of reaching the database (retried), as opposed to a migration that fails on it.
/// `Protocol` covers a peer that accepts and hangs up (a proxy or pooler with no database behind
/// it yet: sqlx sees its SSLRequest answered by nothing).
fn is_transient_migrate(err: &sqlx::migrate::MigrateError) -> bool {
    matches!(
        err,
        sqlx::migrate::MigrateError::Execute(
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
        )
    )
}
