//! A fresh database per test, dropped when the test process exits.
//!
//! Every test gets its own empty database (`test_<uuid>`), so tests never see each other's rows
//! and can run in parallel. The databases this process made are remembered and dropped when it
//! exits (`WITH (FORCE)`, so connections a service under test still holds do not stop it):
//! nextest runs each test in its own process, so a test's database goes when the test ends,
//! whether it passed or panicked. Only a killed test process leaves its database behind; `./dev
//! test` drops those before a run.

use std::sync::{Mutex, Once};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The databases made by this process, and the server they are on.
static CREATED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static CLEANUP: Once = Once::new();

/// Creates an empty database on the server of `server_url` and returns its URL.
#[allow(unsafe_code)] // `atexit`: the only way to run code when the test process ends.
pub async fn create(server_url: &str) -> Result<String, sqlx::Error> {
    CLEANUP.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no arguments, as `atexit` requires.
        unsafe { libc::atexit(drop_created) };
    });
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_options(server_url)?.connect().await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    CREATED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((server_url.to_string(), name.clone()));
    let mut url = url_without_database(server_url);
    url.push('/');
    url.push_str(&name);
    Ok(url)
}

fn admin_options(server_url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(server_url.parse::<PgConnectOptions>()?.database("postgres"))
}

/// Drops every database this process made. Runs at exit, outside any runtime: it makes its own
/// on a thread of its own, and never panics (a failure to clean up must not fail the test).
extern "C" fn drop_created() {
    let created = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|e| e.into_inner()));
    if created.is_empty() {
        return;
    }
    let cleanup = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            for (server_url, name) in created {
                let Ok(options) = admin_options(&server_url) else {
                    continue;
                };
                let Ok(mut admin) = options.connect().await else {
                    continue;
                };
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                if let Err(err) = sqlx::query(AssertSqlSafe(drop)).execute(&mut admin).await {
                    eprintln!("crm-testkit: could not drop test database {name}: {err}");
                }
                let _ = admin.close().await;
            }
        });
    });
    let _ = cleanup.join();
}

fn url_without_database(url: &str) -> String {
    // postgres://user@host:port/db?params -> postgres://user@host:port
    let (base, _query) = url.split_once('?').unwrap_or((url, ""));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[scheme_end..].find('/') {
        Some(slash) => base[..scheme_end + slash].to_string(),
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_database_from_url() {
        assert_eq!(
            url_without_database("postgres://u@h:5432/db?sslmode=disable"),
            "postgres://u@h:5432"
        );
        assert_eq!(
            url_without_database("postgres://u@h:5432"),
            "postgres://u@h:5432"
        );
    }
}
