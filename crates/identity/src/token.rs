//! Call tokens: minted per call by the caller's [`Signer`], checked by the callee's
//! [`Verifier`] against the callers its `identity` settings name.
//!
//! The wire form is a compact JWS (`header.claims.signature`, base64url, `alg` `EdDSA`), so any
//! JWT tool can read one while debugging; it is built and checked here rather than by a JWT
//! library because exactly one algorithm and one claim set are accepted, and every check is
//! spelled out below.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_access::Access;
use crm_settings::IdentitySettings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{PublicKey, SigningKey};
use crate::{Caller, IdentityError};

/// How every refusal's message starts.
pub const REFUSED: &str = "call refused: ";

/// The longest lifetime a verifier accepts, whatever the signer chose: a token is per call.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated between processes.
pub const LEEWAY: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default)]
    typ: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    rpc: String,
    iat: u64,
    exp: u64,
    /// base64url SHA-256 of the `crm-access-bin` value sent with the call: the user acted for
    /// and their scopes, bound to this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ctx: Option<String>,
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// base64url SHA-256 of an access context header value, as sent.
pub fn context_digest(access_header: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_header))
}

/// Mints the tokens of one process's outgoing calls.
#[derive(Debug)]
pub struct Signer {
    principal: String,
    key: SigningKey,
    ttl: Duration,
}

impl Signer {
    pub fn new(principal: impl Into<String>, key: SigningKey, ttl: Duration) -> Self {
        Signer {
            principal: principal.into(),
            key,
            ttl: ttl.min(MAX_LIFETIME),
        }
    }

    /// The signer `settings` configure: `None` without `signing_key` and `signing_key_file`
    /// (a process that calls nobody).
    pub fn from_settings(settings: &IdentitySettings) -> Result<Option<Self>, IdentityError> {
        let pem = match (&settings.signing_key, &settings.signing_key_file) {
            (Some(key), _) => key.expose_secret().to_string(),
            (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
                IdentityError::Config(format!("signing_key_file {}: {e}", file.display()))
            })?,
            (None, None) => return Ok(None),
        };
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| IdentityError::Config(format!("signing_key: {e}")))?;
        if settings.token_ttl_secs == 0 || settings.token_ttl_secs > MAX_LIFETIME.as_secs() {
            return Err(IdentityError::Config(format!(
                "token_ttl_secs must be between 1 and {}, not {}",
                MAX_LIFETIME.as_secs(),
                settings.token_ttl_secs
            )));
        }
        Ok(Some(Signer::new(
            settings.name.clone(),
            key,
            Duration::from_secs(settings.token_ttl_secs),
        )))
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The token for one call of `rpc` (`/package.Service/Method`) on `audience`, made `now`;
    /// `access` is the `crm-access-bin` value sent with it, if the call acts for a user.
    pub fn token(
        &self,
        audience: &str,
        rpc: &str,
        access: Option<&[u8]>,
        now: SystemTime,
    ) -> String {
        let iat = seconds(now);
        let claims = Claims {
            iss: self.principal.clone(),
            aud: audience.to_string(),
            rpc: rpc.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
            ctx: access.map(context_digest),
        };
        let header = Header {
            alg: "EdDSA".into(),
            kid: self.key.public_key().kid().to_string(),
            typ: Some("crm-call+jwt".into()),
        };
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }
}

fn encode(part: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).expect("plain structs serialise"))
}

/// A method pattern of a caller's grants.
#[derive(Debug, Clone)]
enum Grant {
    Any,
    Service(String),
    Method(String),
}

impl Grant {
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_start_matches('/');
        if raw == "*" {
            return Ok(Grant::Any);
        }
        match raw.split_once('/') {
            Some((service, "*")) if !service.is_empty() => {
                Ok(Grant::Service(format!("/{service}/")))
            }
            Some((service, method))
                if !service.is_empty() && !method.is_empty() && !method.contains(['/', '*']) =>
            {
                Ok(Grant::Method(format!("/{service}/{method}")))
            }
            _ => Err(format!(
                "{raw:?} is not `package.Service/Method`, `package.Service/*` or `*`"
            )),
        }
    }

    fn allows(&self, path: &str) -> bool {
        match self {
            Grant::Any => true,
            Grant::Service(prefix) => path.starts_with(prefix.as_str()),
            Grant::Method(method) => path == method,
        }
    }
}

#[derive(Debug)]
struct CallerPolicy {
    on_behalf_of_users: bool,
    grants: Vec<Grant>,
}

/// Why a call is refused (all are `UNAUTHENTICATED` on the wire, with a message that starts
/// with [`REFUSED`]; the reason is in the message and the log, never which key would have
/// worked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("call refused: it carries no identity (crm-call-token)")]
    Missing,
    #[error("call refused: its identity token is malformed: {0}")]
    Malformed(&'static str),
    #[error("call refused: its identity token is signed by an unknown key")]
    UnknownKey,
    #[error("call refused: its identity token has a bad signature")]
    BadSignature,
    #[error("call refused: its identity token is for {0:?}, not this service")]
    WrongAudience(String),
    #[error("call refused: its identity token is for another method")]
    WrongMethod,
    #[error("call refused: its identity token has expired")]
    Expired,
    #[error("call refused: its identity token is not valid yet or lives too long")]
    BadLifetime,
    #[error("call refused: the access context is not the one the caller signed")]
    ContextMismatch,
    #[error("call refused: {0} may not act for users")]
    NotOnBehalf(String),
    #[error("call refused: {0} may not call this method as itself")]
    NotGranted(String),
    #[error("call refused: the access context is malformed: {0}")]
    BadContext(String),
}

/// Checks the calls of one service against the callers it trusts.
#[derive(Debug)]
pub struct Verifier {
    audience: String,
    /// By key id: whose key it is, and the key.
    keys: HashMap<String, (String, PublicKey)>,
    callers: HashMap<String, CallerPolicy>,
}

impl Verifier {
    /// The verifier of the service `settings.name`, trusting `settings.callers`. A bad key or
    /// grant is refused, naming it: a process must not start half-trusting its callers.
    pub fn from_settings(settings: &IdentitySettings) -> Result<Self, IdentityError> {
        let mut keys = HashMap::new();
        let mut callers = HashMap::new();
        for (name, caller) in &settings.callers {
            for (i, raw) in caller.keys.iter().enumerate() {
                let key = PublicKey::parse(raw)
                    .map_err(|e| IdentityError::Config(format!("callers.{name}.keys[{i}]: {e}")))?;
                if let Some((other, _)) = keys.insert(key.kid().to_string(), (name.clone(), key))
                    && &other != name
                {
                    return Err(IdentityError::Config(format!(
                        "callers.{name}.keys[{i}] is also a key of {other}: one key, one principal"
                    )));
                }
            }
            let grants = caller
                .rpcs
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    Grant::parse(g).map_err(|e| {
                        IdentityError::Config(format!("callers.{name}.rpcs[{i}]: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?;
            callers.insert(
                name.clone(),
                CallerPolicy {
                    on_behalf_of_users: caller.on_behalf_of_users,
                    grants,
                },
            );
        }
        Ok(Verifier {
            audience: settings.name.clone(),
            keys,
            callers,
        })
    }

    /// The service whose calls this verifies.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks one call of `rpc` made `now`, from its token and its access context header.
    pub fn verify(
        &self,
        rpc: &str,
        token: Option<&[u8]>,
        access: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Caller, Refusal> {
        let token = token.ok_or(Refusal::Missing)?;
        let token = std::str::from_utf8(token).map_err(|_| Refusal::Malformed("not text"))?;
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed("not header.claims.signature"));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| Refusal::Malformed("not base64url"))
        };
        let header: Header = serde_json::from_slice(&decode(header)?)
            .map_err(|_| Refusal::Malformed("bad header"))?;
        if header.alg != "EdDSA" {
            return Err(Refusal::Malformed("only EdDSA is accepted"));
        }
        let (principal, key) = self.keys.get(&header.kid).ok_or(Refusal::UnknownKey)?;
        let signed = &token[..token.len() - signature.len() - 1];
        if !key.verifies(signed.as_bytes(), &decode(signature)?) {
            return Err(Refusal::BadSignature);
        }
        // Signed by `principal`'s key: from here on the claims are what it said.
        let claims: Claims = serde_json::from_slice(&decode(claims)?)
            .map_err(|_| Refusal::Malformed("bad claims"))?;
        if &claims.iss != principal {
            return Err(Refusal::UnknownKey);
        }
        if claims.aud != self.audience {
            return Err(Refusal::WrongAudience(claims.aud));
        }
        if claims.rpc != rpc {
            return Err(Refusal::WrongMethod);
        }
        let now = seconds(now);
        let leeway = LEEWAY.as_secs();
        if claims.exp + leeway < now {
            return Err(Refusal::Expired);
        }
        if claims.iat > now + leeway
            || claims.exp < claims.iat
            || claims.exp - claims.iat > MAX_LIFETIME.as_secs()
        {
            return Err(Refusal::BadLifetime);
        }
        let policy = self
            .callers
            .get(principal)
            .ok_or_else(|| Refusal::NotGranted(principal.clone()))?;

        match (access, claims.ctx) {
            (Some(header), Some(digest)) => {
                if context_digest(header) != digest {
                    return Err(Refusal::ContextMismatch);
                }
                if !policy.on_behalf_of_users {
                    return Err(Refusal::NotOnBehalf(principal.clone()));
                }
                Ok(Caller {
                    principal: principal.clone(),
                    access: Some(decode_access(header)?),
                })
            }
            // A context the caller did not sign, or a signed one that was left out.
            (Some(_), None) | (None, Some(_)) => Err(Refusal::ContextMismatch),
            (None, None) => {
                if !policy.grants.iter().any(|g| g.allows(rpc)) {
                    return Err(Refusal::NotGranted(principal.clone()));
                }
                Ok(Caller {
                    principal: principal.clone(),
                    access: None,
                })
            }
        }
    }
}

/// The `crm-access-bin` header value decoded into an [`Access`].
fn decode_access(header: &[u8]) -> Result<Access, Refusal> {
    Access::from_header_value(header).map_err(|e| Refusal::BadContext(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_access::{Action, Resource, Scope};
    use crm_settings::CallerSettings;
    use tonic::metadata::MetadataMap;

    const RPC: &str = "/crm.customer.v1.CustomerService/GetAccount";

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    fn verifier() -> Verifier {
        let mut settings = IdentitySettings::named("customer");
        settings.callers.insert(
            "gateway".into(),
            CallerSettings {
                keys: vec![key(1).public_key().encoded(), key(2).public_key().encoded()],
                on_behalf_of_users: true,
                rpcs: vec!["crm.customer.v1.CustomerService/ListAccounts".into()],
            },
        );
        settings.callers.insert(
            "sales".into(),
            CallerSettings {
                keys: vec![key(3).public_key().encoded()],
                on_behalf_of_users: false,
                rpcs: vec!["crm.customer.v1.CustomerService/*".into()],
            },
        );
        Verifier::from_settings(&settings).unwrap()
    }

    fn signer(n: u8, name: &str) -> Signer {
        Signer::new(name, key(n), Duration::from_secs(60))
    }

    fn access_header(user: u128) -> Vec<u8> {
        let access = Access::new(uuid::Uuid::from_u128(user)).with(
            Resource::ACCOUNT,
            Action::Read,
            Scope::everything(),
        );
        let mut metadata = MetadataMap::new();
        access.to_metadata(&mut metadata);
        metadata
            .get_bin(crm_access::METADATA_KEY)
            .unwrap()
            .as_encoded_bytes()
            .to_vec()
    }

    #[test]
    fn a_user_context_signed_by_a_trusted_caller_is_accepted() {
        let now = SystemTime::now();
        let header = access_header(7);
        let token = signer(1, "gateway").token("customer", RPC, Some(&header), now);
        let caller = verifier()
            .verify(RPC, Some(token.as_bytes()), Some(&header), now)
            .unwrap();
        assert_eq!(caller.principal, "gateway");
        assert_eq!(caller.access.unwrap().user_id, uuid::Uuid::from_u128(7));
        // The second key of a rotation works too.
        let token = signer(2, "gateway").token("customer", RPC, Some(&header), now);
        assert!(
            verifier()
                .verify(RPC, Some(token.as_bytes()), Some(&header), now)
                .is_ok()
        );
    }

    #[test]
    fn forged_expired_misdirected_and_swapped_tokens_are_refused() {
        let now = SystemTime::now();
        let v = verifier();
        let header = access_header(7);
        let user = Some(header.as_slice());
        let check = |token: &str, access: Option<&[u8]>| {
            v.verify(RPC, Some(token.as_bytes()), access, now)
                .unwrap_err()
        };
        assert_eq!(
            v.verify(RPC, None, Some(&header), now).unwrap_err(),
            Refusal::Missing
        );
        // Signed by a key nobody trusts, claiming to be the gateway.
        let forged = signer(9, "gateway").token("customer", RPC, user, now);
        assert_eq!(check(&forged, Some(&header)), Refusal::UnknownKey);
        // Sales' own key, claiming to be the gateway.
        let impostor = signer(3, "gateway").token("customer", RPC, user, now);
        assert_eq!(check(&impostor, Some(&header)), Refusal::UnknownKey);
        // Minted for another service, or another method.
        let other = signer(1, "gateway").token("permission", RPC, user, now);
        assert_eq!(
            check(&other, Some(&header)),
            Refusal::WrongAudience("permission".into())
        );
        let other_rpc = signer(1, "gateway").token(
            "customer",
            "/crm.customer.v1.CustomerService/DeleteAccount",
            user,
            now,
        );
        assert_eq!(check(&other_rpc, Some(&header)), Refusal::WrongMethod);
        // Expired, or from the future.
        let old = signer(1, "gateway").token("customer", RPC, user, now - Duration::from_secs(120));
        assert_eq!(check(&old, Some(&header)), Refusal::Expired);
        let future =
            signer(1, "gateway").token("customer", RPC, user, now + Duration::from_secs(60));
        assert_eq!(check(&future, Some(&header)), Refusal::BadLifetime);
        // A valid token with a wider context swapped in, or with its context left out.
        let good = signer(1, "gateway").token("customer", RPC, user, now);
        assert_eq!(
            check(&good, Some(&access_header(8))),
            Refusal::ContextMismatch
        );
        assert_eq!(check(&good, None), Refusal::ContextMismatch);
        // A context the token does not cover.
        let bare = signer(1, "gateway").token("customer", RPC, None, now);
        assert_eq!(check(&bare, Some(&header)), Refusal::ContextMismatch);
        // A tampered claim or signature.
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
                .unwrap()
                .replace("GetAccount", "ListAccounts"),
        );
        assert_eq!(
            check(&parts.join("."), Some(&header)),
            Refusal::BadSignature
        );
        assert_eq!(
            check("a.b", None),
            Refusal::Malformed("not header.claims.signature")
        );
        // A service that may not act for users.
        let sales = signer(3, "sales").token("customer", RPC, user, now);
        assert_eq!(
            check(&sales, Some(&header)),
            Refusal::NotOnBehalf("sales".into())
        );
    }

    #[test]
    fn services_call_as_themselves_only_what_they_were_granted() {
        let now = SystemTime::now();
        let v = verifier();
        let list = "/crm.customer.v1.CustomerService/ListAccounts";
        let gateway = signer(1, "gateway");
        let token = gateway.token("customer", list, None, now);
        let caller = v.verify(list, Some(token.as_bytes()), None, now).unwrap();
        assert_eq!(caller.access, None);
        let token = gateway.token("customer", RPC, None, now);
        assert_eq!(
            v.verify(RPC, Some(token.as_bytes()), None, now)
                .unwrap_err(),
            Refusal::NotGranted("gateway".into())
        );
        // A whole service granted.
        let token = signer(3, "sales").token("customer", RPC, None, now);
        assert!(v.verify(RPC, Some(token.as_bytes()), None, now).is_ok());
    }

    #[test]
    fn settings_with_bad_keys_or_grants_are_refused_by_name() {
        let mut settings = IdentitySettings::named("customer");
        settings.callers.insert(
            "gateway".into(),
            CallerSettings {
                keys: vec!["nope".into()],
                ..Default::default()
            },
        );
        let err = Verifier::from_settings(&settings).unwrap_err().to_string();
        assert!(
            err.starts_with("identity.callers.gateway.keys[0]:"),
            "{err}"
        );

        settings.callers.get_mut("gateway").unwrap().keys = vec![key(1).public_key().encoded()];
        settings.callers.get_mut("gateway").unwrap().rpcs = vec!["Foo*".into()];
        let err = Verifier::from_settings(&settings).unwrap_err().to_string();
        assert!(
            err.starts_with("identity.callers.gateway.rpcs[0]:"),
            "{err}"
        );

        settings.callers.get_mut("gateway").unwrap().rpcs = vec![];
        settings.callers.insert(
            "sales".into(),
            CallerSettings {
                keys: vec![key(1).public_key().encoded()],
                ..Default::default()
            },
        );
        let err = Verifier::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("one key, one principal"), "{err}");

        let mut signing = IdentitySettings::named("gateway");
        assert!(Signer::from_settings(&signing).unwrap().is_none());
        signing.signing_key = Some(key(1).to_pkcs8_pem().into());
        signing.token_ttl_secs = 3600;
        let err = Signer::from_settings(&signing).unwrap_err().to_string();
        assert!(err.contains("identity.token_ttl_secs"), "{err}");
        signing.signing_key = Some("not a key".to_string().into());
        let err = Signer::from_settings(&signing).unwrap_err().to_string();
        assert!(err.contains("identity.signing_key"), "{err}");
    }
}
