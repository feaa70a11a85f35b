//! A test's database goes when its process exits, passed or panicked (crm_testkit::database).
//! The test runs this binary again as the "test" whose database must go.

use std::process::Command;

const CHILD: &str = "CRM_TESTKIT_CLEANUP_CHILD";
const NAME: &str = "a_test_process_drops_its_databases_when_it_exits_passed_or_panicked";

async fn exists(name: &str) -> bool {
    let admin = format!("{}/postgres", crm_testkit::pg_url());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n == 1
}

/// Runs this test again in a child process that makes a database, then ends as `how` says;
/// the name of the database it made.
fn child(how: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, how)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = stdout
        .lines()
        .find_map(|l| l.split_once("DATABASE=").map(|(_, url)| url.trim()))
        .unwrap_or_else(|| {
            panic!(
                "the child printed no database: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(
        output.status.success(),
        how == "pass",
        "{how}: {:?}",
        output.status
    );
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn a_test_process_drops_its_databases_when_it_exits_passed_or_panicked() {
    if let Ok(how) = std::env::var(CHILD) {
        let url = crm_testkit::fresh_db_url().await;
        // A pool still open at exit, as a service under test would hold one.
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        println!("DATABASE={url}");
        std::mem::forget(pool);
        assert_eq!(how, "pass", "the child fails as asked");
        return;
    }
    for how in ["pass", "panic"] {
        let name = child(how);
        assert!(name.starts_with("test_"), "{name}");
        assert!(!exists(&name).await, "{how}: {name} is still there");
    }
}
