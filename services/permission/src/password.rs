//! Password hashing (argon2id, PHC strings) and constant-work verification.
//!
//! Sign-in must cost the same whether or not the username exists, or response times would
//! reveal which usernames do. So [`Passwords::verify`] always runs exactly one argon2
//! verification: against the stored hash when there is one, otherwise against a dummy hash made
//! at start with the current parameters (so it costs what a real one costs). Its result then says
//! which of the two it ran, and the dummy case can never match.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::settings::PasswordHashingSettings;

/// What a verification compared against, and whether it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Match,
    Mismatch,
    /// There was no stored hash (unknown user, SSO-only user, unreadable hash): the dummy hash
    /// was verified instead, and the attempt fails.
    Dummy,
}

pub struct Passwords {
    argon2: Argon2<'static>,
    /// The current parameters: hashes made with others are redone at the next sign-in.
    params: Params,
    /// A hash of a random password nobody knows, with the current parameters.
    dummy: PasswordHash,
    /// Argon2 verifications run so far (tests assert the unknown-user path ran one).
    verifications: AtomicU64,
    /// Argon2 is CPU- and memory-bound: at most one hash per core at a time, the rest queue,
    /// so a burst of sign-ins cannot take the process' memory or starve the async runtime.
    permits: Semaphore,
}

impl Passwords {
    pub fn new(settings: &PasswordHashingSettings) -> Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| Error::Crypto(format!("invalid auth.password_hashing: {e}")))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut random = [0u8; 32];
        aws_lc_rs::rand::fill(&mut random)
            .map_err(|_| Error::Crypto("no randomness for the dummy password".into()))?;
        let dummy = argon2.hash_password(&random).map_err(Error::PasswordHash)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            argon2,
            params,
            dummy,
            verifications: AtomicU64::new(0),
            permits: Semaphore::new(cores),
        })
    }

    /// A new argon2id PHC string with its own random salt.
    pub fn hash(&self, password: &SecretString) -> Result<String> {
        Ok(self
            .argon2
            .hash_password(password.expose_secret().as_bytes())
            .map_err(Error::PasswordHash)?
            .to_string())
    }

    /// Runs exactly one argon2 verification: against `stored`, or the dummy hash without one.
    pub fn verify(&self, stored: Option<&str>, password: &SecretString) -> Verified {
        let password = password.expose_secret().as_bytes();
        let parsed = stored.and_then(|s| match PasswordHash::new(s) {
            Ok(hash) => Some(hash),
            Err(err) => {
                tracing::error!(error = %err, "stored password hash is unreadable");
                None
            }
        });
        match parsed {
            Some(hash) if self.argon2_verify(password, &hash) => Verified::Match,
            Some(_) => Verified::Mismatch,
            None => {
                // The outcome is irrelevant (nobody knows the dummy's password); the work is the
                // point.
                self.argon2_verify(password, &self.dummy);
                Verified::Dummy
            }
        }
    }

    /// Whether `stored` was made with another algorithm, version or parameters than the current
    /// ones (`auth.password_hashing` changed): the sign-in that proves the password redoes it.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let current = &self.params;
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
            || Params::try_from(&hash).map_or(true, |p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (current.m_cost(), current.t_cost(), current.p_cost())
            })
    }

    /// The one place argon2 verifies, and counts it.
    fn argon2_verify(&self, password: &[u8], hash: &PasswordHash) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.argon2.verify_password(password, hash).is_ok()
    }

    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// [`Self::hash`] on the blocking pool.
    pub async fn hash_blocking(self: &Arc<Self>, password: SecretString) -> Result<String> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash(&password)).await?
    }

    /// [`Self::verify`] on the blocking pool.
    pub async fn verify_blocking(
        self: &Arc<Self>,
        stored: Option<String>,
        password: SecretString,
    ) -> Result<Verified> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let this = self.clone();
        Ok(tokio::task::spawn_blocking(move || this.verify(stored.as_deref(), &password)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&PasswordHashingSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_made_with_other_parameters_need_redoing() {
        let old = cheap();
        let stronger = Passwords::new(&PasswordHashingSettings {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap();
        let hash = old
            .hash(&SecretString::from("correct horse battery"))
            .unwrap();
        assert!(!old.needs_rehash(&hash));
        assert!(stronger.needs_rehash(&hash));
        let redone = stronger
            .hash(&SecretString::from("correct horse battery"))
            .unwrap();
        assert!(!stronger.needs_rehash(&redone));
        assert!(
            !stronger.needs_rehash("not a hash"),
            "unreadable hashes are not touched"
        );
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let p = cheap();
        let secret = SecretString::from("correct horse battery");
        let a = p.hash(&secret).unwrap();
        let b = p.hash(&secret).unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "every hash has its own salt");
        assert_eq!(p.verify(Some(&a), &secret), Verified::Match);
        assert_eq!(
            p.verify(Some(&a), &SecretString::from("wrong horse battery")),
            Verified::Mismatch
        );
    }

    #[test]
    fn without_a_stored_hash_the_dummy_is_verified_and_never_matches() {
        let p = cheap();
        let before = p.verifications();
        assert_eq!(
            p.verify(None, &SecretString::from("whatever password")),
            Verified::Dummy
        );
        assert_eq!(p.verifications(), before + 1, "one argon2 verification ran");
        // An unreadable stored hash takes the same path.
        assert_eq!(
            p.verify(Some("not-a-phc-string"), &SecretString::from("x")),
            Verified::Dummy
        );
        assert_eq!(p.verifications(), before + 2);
        // The dummy costs what a real hash costs: same algorithm and parameters.
        let real = p
            .hash(&SecretString::from("correct horse battery"))
            .unwrap();
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(&p.dummy.to_string()), params(&real));
    }
}
