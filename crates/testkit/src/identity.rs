//! Call identities for tests (ADR 0012): fixed Ed25519 keys for the test client and for a
//! gateway started by a test, the `identity` settings of a service that trusts them, and a
//! client channel that signs its calls like the gateway does.
//!
//! The keys are made from fixed seeds: they are public knowledge, which is fine for tests and
//! only for tests (a deployment's keys come from its own Secrets).

use std::sync::Arc;
use std::time::Duration;

use crm_identity::{SignCalls, Signer, SigningKey};
use crm_settings::{CallerSettings, IdentitySettings};

/// The principal test clients sign as.
pub const TEST_PRINCIPAL: &str = "test";

/// The test client's key.
pub fn test_key() -> SigningKey {
    SigningKey::from_seed(b"crm test client key, never used!")
}

/// The key of a gateway started by a test.
pub fn gateway_key() -> SigningKey {
    SigningKey::from_seed(b"crm test gateway key, never used")
}

/// The key a service named `name` signs its own calls with in tests (a service calling
/// another: the customer service fetching a scope from the permission service).
pub fn service_key(name: &str) -> SigningKey {
    let mut seed = *b"crm test service key, never used";
    for (slot, byte) in seed.iter_mut().zip(name.bytes()) {
        *slot ^= byte;
    }
    SigningKey::from_seed(&seed)
}

/// A signer for the test client.
pub fn test_signer() -> Arc<Signer> {
    Arc::new(Signer::new(
        TEST_PRINCIPAL,
        test_key(),
        Duration::from_secs(60),
    ))
}

/// `channel` with every call signed by the test client for the service `audience`.
pub fn signed<S>(channel: S, audience: &str) -> SignCalls<S> {
    SignCalls::new(channel, test_signer(), audience)
}

/// `identity` (a service's own defaults, with its grants) with the test gateway's key as the
/// gateway's, every other service its defaults name as a caller trusted with that service's
/// [`service_key`] (under the grants the defaults give it), the test client trusted to call
/// anything, as itself or for any user, and the service's own [`service_key`] to sign with.
pub fn trusting_tests(mut identity: IdentitySettings) -> IdentitySettings {
    for (name, caller) in identity.callers.iter_mut() {
        if caller.keys.is_empty() && name != "gateway" {
            caller.keys = vec![service_key(name).public_key().encoded()];
        }
    }
    identity.callers.entry("gateway".into()).or_default().keys =
        vec![gateway_key().public_key().encoded()];
    if identity.signing_key.is_none() {
        identity.signing_key = Some(service_key(&identity.name).to_pkcs8_pem().into());
    }
    identity.callers.insert(
        TEST_PRINCIPAL.into(),
        CallerSettings {
            keys: vec![test_key().public_key().encoded()],
            on_behalf_of_users: true,
            rpcs: vec!["*".into()],
        },
    );
    identity
}

/// The `identity` settings of a service named `name` that trusts the test client (and the test
/// gateway for users only).
pub fn service_identity(name: &str) -> IdentitySettings {
    let mut identity = trusting_tests(IdentitySettings::named(name));
    identity
        .callers
        .get_mut("gateway")
        .expect("added above")
        .on_behalf_of_users = true;
    identity
}

/// The `identity` settings of a gateway started by a test.
pub fn gateway_identity() -> IdentitySettings {
    let mut identity = IdentitySettings::named("gateway");
    identity.signing_key = Some(gateway_key().to_pkcs8_pem().into());
    identity
}

/// No permission service to ask (a service tested alone): a `services` map whose permission
/// entry answers nothing, so a scope sent by reference is refused as `UNAVAILABLE`.
pub fn unreachable_permission() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([("permission".into(), "http://127.0.0.1:1".into())])
}

/// The same trust as [`service_identity`], as `CRM__IDENTITY__…` variables for a service
/// process named `name` started by a test (on top of the grants in its compiled-in defaults),
/// with its own [`service_key`] to sign with.
pub fn service_identity_env(name: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "CRM__IDENTITY__SIGNING_KEY",
            service_key(name).to_pkcs8_pem(),
        ),
        (
            "CRM__IDENTITY__CALLERS__GATEWAY__KEYS",
            gateway_key().public_key().encoded(),
        ),
        (
            "CRM__IDENTITY__CALLERS__TEST__KEYS",
            test_key().public_key().encoded(),
        ),
        (
            "CRM__IDENTITY__CALLERS__TEST__ON_BEHALF_OF_USERS",
            "true".into(),
        ),
        ("CRM__IDENTITY__CALLERS__TEST__RPCS", "*".into()),
    ]
}
