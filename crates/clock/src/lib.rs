//! # crm-clock
//!
//! The time the services act on, injectable: [`Clock::system`] in production, a manual clock
//! ([`Clock::manual`]) in tests, which stands still until the test moves it ([`Clock::advance`]).
//! Anything whose behaviour depends on elapsed time — sign-in lockouts today; pool reclaim, SLA
//! timers, reminders and retention next — reads its "now" from a `Clock` it was given, so a test
//! proves "locked for one second, then open" by moving the clock a second, not by sleeping and
//! hoping the machine kept up.
//!
//! Times are truncated to microseconds, the precision Postgres keeps, so what a write stores
//! equals what a later read returns.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// A source of "now". Cheap to clone; clones of a manual clock move together.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that reads `start` until moved.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock {
            manual: Some(Arc::new(Mutex::new(start.trunc_subsecs(6)))),
        }
    }

    /// A manual clock starting at the system's now.
    pub fn manual_now() -> Self {
        Self::manual(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now().trunc_subsecs(6),
            Some(time) => *time.lock().expect("not poisoned"),
        }
    }

    /// Moves a manual clock forward by `by`.
    ///
    /// # Panics
    /// On the system clock: only tests move time, and a test moving the real clock has a bug.
    pub fn advance(&self, by: std::time::Duration) {
        let time = self
            .manual
            .as_ref()
            .expect("only a manual clock can be moved");
        let by = Duration::from_std(by).expect("a representable duration");
        let mut time = time.lock().expect("not poisoned");
        *time = (*time + by).trunc_subsecs(6);
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(_) => write!(f, "Clock::manual({})", self.now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_clones_move_together() {
        let start = DateTime::parse_from_rfc3339("2026-12-03T08:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        let other = clock.clone();
        assert_eq!(
            clock.now(),
            start.trunc_subsecs(6),
            "microseconds, as Postgres keeps"
        );
        assert_eq!(clock.now(), clock.now());
        other.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.now(), start.trunc_subsecs(6) + Duration::seconds(90));
        assert!(clock.is_manual() && !Clock::system().is_manual());
    }

    #[test]
    fn the_system_clock_follows_the_system() {
        let before = Utc::now().trunc_subsecs(6);
        let now = Clock::system().now();
        assert!(now >= before && now <= Utc::now());
        assert_eq!(format!("{:?}", Clock::default()), "Clock::system");
    }

    #[test]
    #[should_panic(expected = "only a manual clock")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(std::time::Duration::from_secs(1));
    }
}
