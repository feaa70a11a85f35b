//! Verification keys: PEM keys from settings and an identity provider's JWKS.
//!
//! PEM keys are trusted for any `kid` (a single-issuer set-up has no need for key ids). JWKS keys
//! are cached by `kid`; a token naming a `kid` the cache does not know triggers one refetch,
//! which is what picks up a key rotation, but at most once per [`REFETCH_AFTER_SUCCESS`], so
//! tokens with made-up key ids cannot make the gateway hammer the identity provider.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::sync::{Mutex, RwLock};

/// Minimum time between two JWKS fetches once one succeeded.
pub const REFETCH_AFTER_SUCCESS: Duration = Duration::from_secs(30);
/// After a failed fetch the provider may simply have been restarting: try again sooner.
const REFETCH_AFTER_FAILURE: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A key and, when the JWKS pins one, the only algorithm it may be used with.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub alg: Option<Algorithm>,
}

impl VerifyingKey {
    /// Whether a token signed with `alg` may be checked with this key: the key's family must
    /// match the algorithm (an RSA key never verifies an HS256 token) and a pinned algorithm must
    /// be the token's.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|pinned| pinned == alg)
    }
}

/// Parses a PEM public key of any supported family (RSA, EC, Ed25519).
pub fn from_pem(pem: &[u8]) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| "not an RSA, EC or Ed25519 public key in PEM form".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching the JWKS failed: {0}")]
    Fetch(#[from] reqwest::Error),
}

#[derive(Default)]
struct Cache {
    by_kid: HashMap<String, VerifyingKey>,
    /// Keys published without a `kid`: tried for tokens that carry none.
    unnamed: Vec<VerifyingKey>,
    /// Whether a fetch ever succeeded (an empty cache then means an empty JWKS).
    loaded: bool,
}

/// A JWKS endpoint and its cached keys.
pub struct Jwks {
    url: reqwest::Url,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// When the last fetch happened and whether it worked. The mutex also makes concurrent
    /// requests with a new `kid` wait for one fetch instead of each starting their own.
    last_fetch: Mutex<Option<(Instant, bool)>>,
}

/// What the JWKS knows about a token's key.
pub enum Lookup {
    Found(Vec<VerifyingKey>),
    /// The token names a `kid` the JWKS does not have (even after a refetch).
    UnknownKid,
    /// The JWKS could never be fetched: the keys are unavailable, not the token wrong.
    Unavailable,
}

impl Jwks {
    pub fn new(url: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("auth.jwks_url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("auth.jwks_url must be an http(s) URL".into());
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // A JWKS answer is trusted key material: never follow a redirect to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("JWKS client: {e}"))?;
        Ok(Self {
            url,
            client,
            cache: RwLock::new(Cache::default()),
            last_fetch: Mutex::new(None),
        })
    }

    /// Keys for a token with header `kid` and algorithm `alg`, refetching once if needed.
    pub async fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        if let Some(found) = self.cached(kid, alg).await {
            return Lookup::Found(found);
        }
        self.refresh_if_due().await;
        match self.cached(kid, alg).await {
            Some(found) => Lookup::Found(found),
            None if !self.cache.read().await.loaded => Lookup::Unavailable,
            None if kid.is_some() => Lookup::UnknownKid,
            None => Lookup::Found(Vec::new()),
        }
    }

    /// `None` when the cache cannot answer (unknown kid, or nothing loaded yet).
    async fn cached(&self, kid: Option<&str>, alg: Algorithm) -> Option<Vec<VerifyingKey>> {
        let cache = self.cache.read().await;
        if !cache.loaded {
            return None;
        }
        match kid {
            Some(kid) => cache.by_kid.get(kid).map(|k| vec![k.clone()]),
            None => Some(
                cache
                    .unnamed
                    .iter()
                    .filter(|k| k.accepts(alg))
                    .cloned()
                    .collect(),
            ),
        }
    }

    async fn refresh_if_due(&self) {
        let mut last = self.last_fetch.lock().await;
        if let Some((at, ok)) = *last {
            let wait = if ok {
                REFETCH_AFTER_SUCCESS
            } else {
                REFETCH_AFTER_FAILURE
            };
            if at.elapsed() < wait {
                return;
            }
        }
        let result = self.fetch().await;
        *last = Some((Instant::now(), result.is_ok()));
        match result {
            Ok(fresh) => {
                tracing::info!(
                    keys = fresh.by_kid.len() + fresh.unnamed.len(),
                    "JWKS loaded"
                );
                *self.cache.write().await = fresh;
            }
            // Keep serving with the keys we have: a provider outage must not log everyone out.
            Err(err) => tracing::warn!(error = %err, url = %self.url, "JWKS fetch failed"),
        }
    }

    async fn fetch(&self) -> Result<Cache, JwksError> {
        let set: JwkSet = self
            .client
            .get(self.url.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut cache = Cache {
            loaded: true,
            ..Cache::default()
        };
        for jwk in &set.keys {
            let Some(key) = usable(jwk) else { continue };
            match &jwk.common.key_id {
                Some(kid) => {
                    cache.by_kid.insert(kid.clone(), key);
                }
                None => cache.unnamed.push(key),
            }
        }
        Ok(cache)
    }
}

/// A JWK we may verify signatures with: asymmetric, meant for signatures, and well-formed.
fn usable(jwk: &Jwk) -> Option<VerifyingKey> {
    // Symmetric keys would let anyone holding them mint tokens; they have no place here.
    if matches!(
        jwk.algorithm,
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
    ) {
        return None;
    }
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.common.key_algorithm {
        Some(a) => Some(Algorithm::from_str(&a.to_string()).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    if key.family() == AlgorithmFamily::Hmac {
        return None;
    }
    Some(VerifyingKey { key, alg })
}
