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
/// gateway's, and the test client trusted to call anything, as itself or for any user.
pub fn trusting_tests(mut identity: IdentitySettings) -> IdentitySettings {
    identity.callers.entry("gateway".into()).or_default().keys =
        vec![gateway_key().public_key().encoded()];
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

/// The same trust as [`service_identity`], as `CRM__IDENTITY__…` variables for a service
/// process started by a test (on top of the grants in its compiled-in defaults).
pub fn service_identity_env() -> Vec<(&'static str, String)> {
    vec![
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
