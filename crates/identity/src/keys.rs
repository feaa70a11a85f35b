//! Ed25519 keys: a process's private signing key and its callers' public keys.
//!
//! Formats are what operators already have: the private key as PKCS#8 PEM
//! (`openssl genpkey -algorithm ed25519`), the public key as the base64url of its 32 bytes (a
//! JWK's `x`, one line, fits an environment variable or a values file) or as SPKI PEM
//! (`openssl pkey -pubout`). A key's id (`kid`) is derived from the public key, so a token
//! names the key that signed it and rotation needs no id bookkeeping.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn key_err(what: impl Into<String>) -> IdentityError {
    IdentityError::Key(what.into())
}

/// The body of a PEM block with the given label.
fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, IdentityError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| key_err(format!("not a PEM {label}")))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| key_err(format!("PEM {label} has no end line")))?
        + start;
    let body: String = pem[start..stop].split_whitespace().collect();
    STANDARD
        .decode(body)
        .map_err(|_| key_err(format!("PEM {label} is not base64")))
}

/// `kid` of a public key: the first 12 bytes of its SHA-256, base64url.
fn key_id(public: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12])
}

/// A private Ed25519 key that signs this process's calls.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), v1 (OpenSSL) or v2.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, IdentityError> {
        Self::from_pkcs8_der(&pem_body(pem, "PRIVATE KEY")?)
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, IdentityError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| key_err(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(Self::from_pair(pair))
    }

    /// The key made from a 32-byte seed: the same seed gives the same key (test fixtures).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are a seed");
        Self::from_pair(pair)
    }

    /// A new random key.
    pub fn generate() -> Result<Self, IdentityError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| key_err("Ed25519 key generation failed"))?;
        Self::from_pkcs8_der(der.as_ref())
    }

    fn from_pair(pair: Ed25519KeyPair) -> Self {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        SigningKey {
            pair,
            public: PublicKey::from_raw(raw),
        }
    }

    /// PKCS#8 v1 PEM, as OpenSSL writes it (to hand a generated key to another process).
    pub fn to_pkcs8_pem(&self) -> String {
        let der = self
            .pair
            .to_pkcs8v1()
            .expect("an Ed25519 key pair serialises");
        let body = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// A caller's public Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    raw: [u8; 32],
    kid: String,
}

impl PublicKey {
    fn from_raw(raw: [u8; 32]) -> Self {
        PublicKey {
            kid: key_id(&raw),
            raw,
        }
    }

    /// From the base64url (or base64) of the 32 raw bytes, or from SPKI PEM.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let text = text.trim();
        let bytes = if text.starts_with("-----BEGIN") {
            let der = pem_body(text, "PUBLIC KEY")?;
            der.strip_prefix(&SPKI_PREFIX[..])
                .ok_or_else(|| key_err("PEM PUBLIC KEY is not an Ed25519 key"))?
                .to_vec()
        } else {
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .or_else(|_| URL_SAFE.decode(text))
                .or_else(|_| STANDARD.decode(text))
                .map_err(|_| key_err("a public key is the base64url of 32 bytes, or SPKI PEM"))?
        };
        let raw: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            key_err(format!(
                "an Ed25519 public key has 32 bytes, not {}",
                b.len()
            ))
        })?;
        Ok(Self::from_raw(raw))
    }

    /// The base64url of the 32 bytes (a JWK's `x`): what `identity.callers.*.keys` takes.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.raw)
    }

    /// The key id tokens signed with the matching private key carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHy24buMU+NZ/2TBBziiemhYP0HGQTzmkHQK0kNoNiK5
-----END PRIVATE KEY-----
";

    #[test]
    fn openssl_keys_load_and_public_keys_parse_in_every_form() {
        let key = SigningKey::from_pkcs8_pem(OPENSSL_PRIVATE).unwrap();
        let x = key.public_key().encoded();
        // What `openssl pkey -pubout -outform DER | tail -c 32 | base64url` prints for it.
        assert_eq!(x, "7k7fInG5AFb5B3VJEVsdcXubCLFs0MGwwm9LGxLL5kY");
        let spki = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode([&SPKI_PREFIX[..], &key.public.raw[..]].concat())
        );
        for form in [x.clone(), format!("{x}="), spki] {
            assert_eq!(
                &PublicKey::parse(&form).unwrap(),
                key.public_key(),
                "{form}"
            );
        }
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let signature = key.sign(b"message");
        assert!(key.public_key().verifies(b"message", &signature));
        assert!(!key.public_key().verifies(b"massage", &signature));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("", "32 bytes, not 0"),
            ("not*base64", "base64url of 32 bytes"),
            ("AAAA", "32 bytes, not 3"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "no end line"),
            (
                "-----BEGIN PUBLIC KEY-----\nMAUGAytlcA==\n-----END PUBLIC KEY-----",
                "not an Ed25519 key",
            ),
        ] {
            let err = PublicKey::parse(bad).unwrap_err().to_string();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
        let err = SigningKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an Ed25519 PKCS#8 key"), "{err}");
        assert!(SigningKey::from_pkcs8_pem("ssh-ed25519 AAAA").is_err());
    }

    #[test]
    fn seeds_give_the_same_key_and_kids_differ_per_key() {
        let a = SigningKey::from_seed(&[1; 32]);
        assert_eq!(a.public_key(), SigningKey::from_seed(&[1; 32]).public_key());
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.public_key().kid(), b.public_key().kid());
        assert!(!format!("{a:?}").contains(&a.to_pkcs8_pem()[30..50]));
    }
}
