//! Access-token signing keys: Ed25519 pairs made with aws-lc-rs, stored with the private half
//! encrypted (AES-256-GCM under the key-encryption key), rotated on a timeline, published as a
//! JWKS.
//!
//! Timeline of a key created at `c`, with rotation `r` and access-token lifetime `t`:
//! - `c .. c + r` (`not_after_signing`): the current key, signs new access tokens;
//! - `c .. c + r + t + skew` (`auth.clock_skew_secs`): in the JWKS, so every token it signed
//!   verifies until it expires;
//! - after that: retired — gone from the JWKS, its private half deleted from the row.
//!
//! Any replica may find the current key too old (lazily when signing, or in the periodic
//! maintenance) and make the next one; a transaction-scoped advisory lock makes the replicas take
//! turns, and the one that waited then sees the new key and uses it instead of making another.
//! Private keys exist decrypted only in this process' memory.
//!
//! Layout: [`domain`] (the key-encryption key, key generation, the signer — cryptography, no
//! SQL), [`store`] (the `signing_keys` SQL), [`service`] ([`KeyRing`]: rotation, retirement,
//! the key set), [`http`] (the JWKS route; keys have no gRPC service of their own — `GetJwks`
//! is answered by [`crate::auth::grpc`]).

pub mod domain;
pub mod http;
pub mod service;
pub mod store;

pub use domain::{ALGORITHM, Kek, KekError, Signer};
pub use service::KeyRing;
