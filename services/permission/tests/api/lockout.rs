use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{PASSWORD, spawn_app, spawn_with};

const WRONG: &str = "not the right password";

fn retry_delay(status: &tonic::Status) -> Duration {
    status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a RetryInfo detail with a delay")
}

fn assert_throttled(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "too many failed sign-in attempts; try again later"
    );
    let api = crm_errors::ApiError::from_status(status);
    assert_eq!(api.code, crm_errors::Code::RateLimited);
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("rate_limited", "crm")
    );
}

/// Five failures lock a username, existing or not, with identical answers; while locked even
/// the right password is refused, without being checked.
#[tokio::test]
async fn lockout_after_five_failures_is_identical_for_existing_and_unknown_usernames() {
    let app = spawn_app().await;
    app.create_user("erin", PASSWORD).await;
    for _ in 0..5 {
        for username in ["erin", "ghost"] {
            let err = app.login(username, WRONG).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{username}");
        }
    }

    let before = app.passwords.verifications();
    let existing = app.login("erin", PASSWORD).await.unwrap_err();
    let unknown = app.login("ghost", PASSWORD).await.unwrap_err();
    // Another spelling of the same username shares the counter.
    let respelled = app.login(" ERIN", PASSWORD).await.unwrap_err();
    assert_eq!(
        app.passwords.verifications(),
        before,
        "no password is checked while locked"
    );
    for status in [&existing, &unknown, &respelled] {
        assert_throttled(status);
    }
    let (a, b) = (retry_delay(&existing), retry_delay(&unknown));
    assert!(
        a <= Duration::from_secs(30) && a >= Duration::from_secs(28),
        "{a:?}"
    );
    assert!(a.abs_diff(b) <= Duration::from_secs(1), "{a:?} vs {b:?}");
    assert_eq!(existing.message(), unknown.message());

    // Other usernames are unaffected.
    app.create_user("frank", PASSWORD).await;
    app.login("frank", PASSWORD)
        .await
        .expect("frank is not locked");
    app.shutdown().await;
}

/// After the lock runs out the right password works, and the success resets both the counter
/// and the escalation: the next lock is a first lock again.
#[tokio::test]
async fn success_after_the_lock_expires_resets_the_counter() {
    // Time moves when the test moves it: no sleeping past the lock.
    let clock = crm_clock::Clock::manual_now();
    let app = spawn_with(|s| {
        s.auth.lockout.base_lock_secs = 1;
        s.auth.lockout.max_lock_secs = 8;
        s.clock = clock.clone();
    })
    .await;
    app.create_user("grace", PASSWORD).await;
    for _ in 0..5 {
        app.login("grace", WRONG).await.unwrap_err();
    }
    let locked = app.login("grace", PASSWORD).await.unwrap_err();
    assert_throttled(&locked);
    let delay = retry_delay(&locked);
    assert_eq!(delay, Duration::from_secs(1));

    // Just before the lock runs out: still locked, and the password is not even checked.
    clock.advance(delay - Duration::from_millis(1));
    assert_throttled(&app.login("grace", PASSWORD).await.unwrap_err());
    clock.advance(Duration::from_millis(1));
    app.login("grace", PASSWORD)
        .await
        .expect("the lock has expired");

    for attempt in 1..=5 {
        let err = app.login("grace", WRONG).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    let relocked = app.login("grace", PASSWORD).await.unwrap_err();
    assert_throttled(&relocked);
    assert_eq!(
        retry_delay(&relocked),
        Duration::from_secs(1),
        "a first lock again, not a doubled one"
    );
    app.shutdown().await;
}

/// Without a success in between, each further lock doubles.
#[tokio::test]
async fn repeated_locks_double() {
    let clock = crm_clock::Clock::manual_now();
    let app = spawn_with(|s| {
        s.auth.lockout.base_lock_secs = 1;
        s.auth.lockout.max_lock_secs = 8;
        s.clock = clock.clone();
    })
    .await;
    for _ in 0..5 {
        app.login("henry", WRONG).await.unwrap_err();
    }
    let first = retry_delay(&app.login("henry", WRONG).await.unwrap_err());
    clock.advance(first);
    for _ in 0..5 {
        assert_eq!(
            app.login("henry", WRONG).await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }
    let second = retry_delay(&app.login("henry", WRONG).await.unwrap_err());
    assert_eq!(
        (first, second),
        (Duration::from_secs(1), Duration::from_secs(2))
    );
    app.shutdown().await;
}

/// Parallel guesses cannot outrun the limit: attempts are counted before their password is
/// checked.
#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_at_most_five_checks() {
    let app = spawn_app().await;
    app.create_user("ivan", PASSWORD).await;
    let before = app.passwords.verifications();
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move { app.login("ivan", &format!("guess number {i}")).await }
    });
    let results = futures::future::join_all(guesses).await;
    let checked = app.passwords.verifications() - before;
    assert!(checked <= 5, "{checked} passwords were checked");
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert_eq!(throttled as u64, 20 - checked);
    app.shutdown().await;
}
