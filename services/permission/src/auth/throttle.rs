//! Sign-in throttling rules, as pure functions over one username's counter row (the SQL that
//! locks and stores the row is in [`super::store`]), and the key the counter is kept under
//! ([`throttle_key`]). A helper of [`super`] only, so it lives inside it; no I/O.
//!
//! An attempt is counted as a failure *before* its password is checked ([`Lockout::admit`]) and
//! forgiven on success (the row is deleted). Counting up front is what makes the limit hold under
//! concurrency: a burst of parallel guesses cannot all pass the check before the first failure is
//! written, because each one takes a slot under the row lock; once `max_failures` slots are
//! taken, further attempts are refused until the lock passes.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::settings::{LockoutSettings, secs};

/// Throttle keys are cut here: no valid username is longer, and the table must not grow with
/// whatever an attacker sends.
const MAX_THROTTLE_KEY: usize = 128;

/// The key failed sign-ins are counted under: the username as typed, trimmed and lower-cased —
/// the same normalisation usernames are stored with, so `Alice` and `alice ` share a counter.
/// It does not depend on whether the user exists (see the crate docs).
pub fn throttle_key(username: &str) -> String {
    username
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_THROTTLE_KEY)
        .collect()
}

/// One username's counter, as stored in `login_throttle`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottleState {
    /// Attempts since the last success or lock that did not succeed (including ones in flight).
    pub failures: i32,
    /// Locks so far: the next one lasts `base * 2^lock_count`.
    pub lock_count: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on and check the password (the attempt is already counted).
    Admitted,
    /// Refuse without checking the password.
    Locked { retry_after: Duration },
}

#[derive(Debug, Clone)]
pub struct Lockout {
    max_failures: i32,
    base: chrono::Duration,
    max: chrono::Duration,
    forget_after: chrono::Duration,
}

impl Lockout {
    pub fn new(settings: &LockoutSettings) -> Self {
        Self {
            max_failures: i32::try_from(settings.max_failures.max(1)).unwrap_or(i32::MAX),
            base: secs(settings.base_lock_secs.max(1)),
            max: secs(settings.max_lock_secs.max(settings.base_lock_secs).max(1)),
            forget_after: secs(settings.forget_after_secs.max(1)),
        }
    }

    /// How long a username is forgotten after: rows untouched for longer are deleted.
    pub fn forget_after(&self) -> chrono::Duration {
        self.forget_after
    }

    /// The length of lock number `lock_count + 1`: doubling, capped.
    pub fn lock_duration(&self, lock_count: i32) -> chrono::Duration {
        let doublings = lock_count.clamp(0, 30) as u32;
        let factor = 1i32.checked_shl(doublings).unwrap_or(i32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    fn lock(&self, s: &mut ThrottleState, now: DateTime<Utc>) -> chrono::Duration {
        let duration = self.lock_duration(s.lock_count);
        s.lock_count = s.lock_count.saturating_add(1);
        s.locked_until = Some(now + duration);
        s.failures = 0;
        duration
    }

    /// Decides on an attempt and counts it. `s` is the row as read under its lock and is updated
    /// in place; the caller writes it back in the same transaction.
    pub fn admit(&self, s: &mut ThrottleState, now: DateTime<Utc>) -> Admission {
        if let Some(until) = s.locked_until.filter(|until| *until > now) {
            return Admission::Locked {
                retry_after: retry_after(until - now),
            };
        }
        // A username quiet for long enough starts from scratch.
        if s.last_failure_at
            .is_some_and(|at| now - at > self.forget_after)
        {
            *s = ThrottleState::default();
        }
        if s.failures >= self.max_failures {
            // Only reachable when attempts were in flight together: the slots are used up, so
            // this one locks the username instead of getting a guess.
            let duration = self.lock(s, now);
            return Admission::Locked {
                retry_after: retry_after(duration),
            };
        }
        s.failures += 1;
        s.last_failure_at = Some(now);
        Admission::Admitted
    }

    /// After an admitted attempt failed: the attempt was counted already; lock when it was the
    /// last one allowed.
    pub fn failed(&self, s: &mut ThrottleState, now: DateTime<Utc>) {
        s.last_failure_at = Some(now);
        let locked = s.locked_until.is_some_and(|until| until > now);
        if !locked && s.failures >= self.max_failures {
            self.lock(s, now);
        }
    }
}

/// Whole seconds, rounded up and at least one, so a client that waits that long gets in.
fn retry_after(d: chrono::Duration) -> Duration {
    let millis = d.num_milliseconds().max(1) as u64;
    Duration::from_secs(millis.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lockout() -> Lockout {
        Lockout::new(&LockoutSettings {
            max_failures: 5,
            base_lock_secs: 30,
            max_lock_secs: 3600,
            forget_after_secs: 86400,
        })
    }

    fn fail_n(l: &Lockout, s: &mut ThrottleState, now: DateTime<Utc>, n: usize) {
        for _ in 0..n {
            assert_eq!(l.admit(s, now), Admission::Admitted);
            l.failed(s, now);
        }
    }

    #[test]
    fn fifth_failure_locks_and_locks_double_up_to_the_cap() {
        let l = lockout();
        let mut s = ThrottleState::default();
        let mut now = Utc::now();
        fail_n(&l, &mut s, now, 4);
        assert_eq!(s.locked_until, None);
        fail_n(&l, &mut s, now, 1);
        assert_eq!(s.locked_until, Some(now + chrono::Duration::seconds(30)));
        assert_eq!(
            l.admit(&mut s, now + chrono::Duration::seconds(10)),
            Admission::Locked {
                retry_after: Duration::from_secs(20)
            }
        );
        let mut expected = vec![];
        for _ in 0..8 {
            now = s.locked_until.unwrap();
            fail_n(&l, &mut s, now, 5);
            expected.push((s.locked_until.unwrap() - now).num_seconds());
        }
        assert_eq!(expected, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn attempts_in_flight_count_so_a_burst_gets_only_max_guesses() {
        let l = lockout();
        let mut s = ThrottleState::default();
        let now = Utc::now();
        // Ten parallel attempts read the row one after another (row lock) before any finishes.
        let admitted = (0..10)
            .filter(|_| l.admit(&mut s, now) == Admission::Admitted)
            .count();
        assert_eq!(admitted, 5);
        assert!(s.locked_until.is_some(), "the sixth locked the username");
    }

    #[test]
    fn quiet_usernames_are_forgotten() {
        let l = lockout();
        let mut s = ThrottleState::default();
        let now = Utc::now();
        fail_n(&l, &mut s, now, 5);
        let later = now + chrono::Duration::days(2);
        assert_eq!(l.admit(&mut s, later), Admission::Admitted);
        assert_eq!((s.failures, s.lock_count), (1, 0));
    }

    #[test]
    fn throttle_key_ignores_case_and_surrounding_space_and_is_bounded() {
        assert_eq!(throttle_key("  Alice "), "alice");
        assert_eq!(throttle_key(&"A".repeat(1000)).len(), 128);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(
            retry_after(chrono::Duration::milliseconds(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_after(chrono::Duration::milliseconds(1001)),
            Duration::from_secs(2)
        );
    }
}
