//! The `identity` block: who this process is in the gRPC calls it makes, and who may call it
//! (ADR 0012). The keys are turned into signers and verifiers by `crm-identity`; this module
//! only holds the configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// Who this process is and who may call it.
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    /// This process's principal: the `iss` of the calls it makes and the only `aud` it accepts
    /// (`gateway`, `customer`, `permission`, …).
    pub name: String,
    /// Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it)
    /// that signs this process's outgoing calls. A process that calls no service needs none.
    #[serde(default)]
    pub signing_key: Option<SecretString>,
    /// The same key from a file (a mounted Secret); used when `signing_key` is not set.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// How long a call's token is valid after it was signed. Tokens are minted per call, so
    /// this only has to cover clock skew and the time a call waits in queues.
    #[serde(default = "default_token_ttl_secs")]
    pub token_ttl_secs: u64,
    /// Who may call this process: principal name → keys and grants. Nobody else may.
    #[serde(default)]
    pub callers: BTreeMap<String, CallerSettings>,
}

fn default_token_ttl_secs() -> u64 {
    60
}

impl IdentitySettings {
    /// A process named `name` that trusts nobody and signs nothing (refuses every call).
    pub fn named(name: impl Into<String>) -> Self {
        IdentitySettings {
            name: name.into(),
            signing_key: None,
            signing_key_file: None,
            token_ttl_secs: default_token_ttl_secs(),
            callers: BTreeMap::new(),
        }
    }
}

/// One principal allowed to call this process.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallerSettings {
    /// Its Ed25519 public keys: base64url of the 32 raw bytes (a JWK's `x`) or SPKI PEM.
    /// Several during a key rotation. A list, or one comma-separated string (for
    /// `CRM__IDENTITY__CALLERS__<NAME>__KEYS`).
    #[serde(default, deserialize_with = "list_or_csv")]
    pub keys: Vec<String>,
    /// It may pass on a user's access context (`crm-access-bin`): the gateway, or a service
    /// passing on the context of the user it acts for.
    #[serde(default)]
    pub on_behalf_of_users: bool,
    /// Methods it may call as itself, without a user: `package.Service/Method`,
    /// `package.Service/*`, or `*` (tests only). A list or a comma-separated string.
    #[serde(default, deserialize_with = "list_or_csv")]
    pub rpcs: Vec<String>,
}

fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    let items = match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(items) => items,
        ListOrCsv::Csv(csv) => csv.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}
