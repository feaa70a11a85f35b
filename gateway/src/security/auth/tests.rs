//! Token validation cases, against the test-only key pairs in `tests/keys/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const RSA_PRIVATE: &str = include_str!("../../../tests/keys/test-only-rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../../tests/keys/test-only-rsa-public.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("../../../tests/keys/test-only-other-rsa-private.pem");
const EC_PRIVATE: &str = include_str!("../../../tests/keys/test-only-ec-private.pem");
const EC_PUBLIC: &str = include_str!("../../../tests/keys/test-only-ec-public.pem");
const ED_PRIVATE: &str = include_str!("../../../tests/keys/test-only-ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("../../../tests/keys/test-only-ed25519-public.pem");

const ISSUER: &str = "crm-test";
const AUDIENCE: &str = "crm-api";

fn settings() -> AuthSettings {
    AuthSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
        public_key_pem: Some(RSA_PUBLIC.into()),
        public_key_file: None,
        jwks_url: None,
        leeway_secs: 30,
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims() -> Value {
    let now = now();
    json!({
        "sub": "alice", "name": "Alice", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn sign_with(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign_with(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        None,
        claims,
    )
}

async fn verify(settings: AuthSettings, token: &str) -> Result<AuthUser, AuthError> {
    Authenticator::new(&settings).unwrap().verify(token).await
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let user = verify(settings(), &rs256(&claims())).await.unwrap();
    assert_eq!(user.subject, "alice");
    assert_eq!(user.user_id, crate::security::token::user_id_for("alice"));
    assert_eq!(user.name.as_deref(), Some("Alice"));

    let id = Uuid::new_v4();
    let user = verify(
        settings(),
        &rs256(&with(claims(), "sub", json!(id.to_string()))),
    )
    .await
    .unwrap();
    assert_eq!(user.user_id, id);
}

#[tokio::test]
async fn a_minted_dev_token_is_accepted() {
    let token = crate::security::token::mint(
        RSA_PRIVATE.as_bytes(),
        &crate::security::token::TokenRequest {
            user: "admin",
            issuer: ISSUER,
            audience: AUDIENCE,
            ttl_secs: 60,
            kid: Some("dev"),
        },
    )
    .unwrap();
    let user = verify(settings(), &token).await.unwrap();
    assert_eq!(user.user_id, crate::security::token::user_id_for("admin"));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(verify(settings(), &token).await, Err(AuthError::Malformed));
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    // The classic algorithm-confusion forgery: HMAC keyed with the (public) verification key.
    let forged = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        None,
        &claims(),
    );
    assert_eq!(
        verify(settings(), &forged).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn an_algorithm_outside_the_allowlist_is_refused() {
    let mut only_es = settings();
    only_es.algorithms = vec!["RS384".into()];
    assert_eq!(
        verify(only_es, &rs256(&claims())).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn expiry_is_checked_with_leeway() {
    let expired = with(claims(), "exp", json!(now() - 31 - 10));
    assert_eq!(
        verify(settings(), &rs256(&expired)).await,
        Err(AuthError::Expired)
    );
    let within_leeway = with(claims(), "exp", json!(now() - 5));
    assert!(verify(settings(), &rs256(&within_leeway)).await.is_ok());
}

#[tokio::test]
async fn a_token_from_the_future_is_refused() {
    let early = with(claims(), "nbf", json!(now() + 120));
    assert_eq!(
        verify(settings(), &rs256(&early)).await,
        Err(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let wrong_iss = with(claims(), "iss", json!("someone-else"));
    assert_eq!(
        verify(settings(), &rs256(&wrong_iss)).await,
        Err(AuthError::WrongIssuer)
    );
    let wrong_aud = with(claims(), "aud", json!("another-api"));
    assert_eq!(
        verify(settings(), &rs256(&wrong_aud)).await,
        Err(AuthError::WrongAudience)
    );
    let many_aud = with(claims(), "aud", json!(["another-api", AUDIENCE]));
    assert!(verify(settings(), &rs256(&many_aud)).await.is_ok());
}

#[tokio::test]
async fn required_claims_must_be_present() {
    assert_eq!(
        verify(settings(), &rs256(&without(claims(), "exp"))).await,
        Err(AuthError::MissingClaim("exp".into()))
    );
    assert_eq!(
        verify(settings(), &rs256(&without(claims(), "sub"))).await,
        Err(AuthError::MissingClaim("sub".into()))
    );
    assert!(
        verify(settings(), &rs256(&without(claims(), "iss")))
            .await
            .is_err()
    );
    assert!(
        verify(settings(), &rs256(&without(claims(), "aud")))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let token = rs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let admin = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("admin")).to_string());
    let tampered = format!("{}.{}.{}", parts[0], admin, parts[2]);
    assert_eq!(
        verify(settings(), &tampered).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let other = EncodingKey::from_rsa_pem(OTHER_RSA_PRIVATE.as_bytes()).unwrap();
    let forged = sign_with(Algorithm::RS256, &other, Some("dev"), &claims());
    assert_eq!(
        verify(settings(), &forged).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn ec_and_ed25519_keys_verify_their_own_algorithms() {
    let mut ec = settings();
    ec.public_key_pem = Some(EC_PUBLIC.into());
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    assert!(
        verify(
            ec.clone(),
            &sign_with(Algorithm::ES256, &key, None, &claims())
        )
        .await
        .is_ok()
    );
    // An RS256 token cannot be checked with an EC key.
    assert_eq!(verify(ec, &rs256(&claims())).await, Err(AuthError::NoKey));

    let mut ed = settings();
    ed.public_key_pem = Some(ED_PUBLIC.into());
    let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    assert!(
        verify(ed, &sign_with(Algorithm::EdDSA, &key, None, &claims()))
            .await
            .is_ok()
    );
}

#[test]
fn unsafe_configurations_are_refused_at_start_up() {
    for algorithms in [
        vec!["HS256"],
        vec!["RS256", "HS512"],
        vec!["none"],
        vec!["RS257"],
        vec![],
    ] {
        let mut s = settings();
        s.algorithms = algorithms.iter().map(|a| a.to_string()).collect();
        let err = Authenticator::new(&s).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{algorithms:?}: {err}");
    }
    let mut no_key = settings();
    no_key.public_key_pem = None;
    assert!(matches!(Authenticator::new(&no_key), Err(Error::Config(_))));

    let mut useless_key = settings();
    useless_key.algorithms = vec!["ES256".into()];
    assert!(matches!(
        Authenticator::new(&useless_key),
        Err(Error::Config(_))
    ));

    let mut garbage = settings();
    garbage.public_key_pem =
        Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into());
    assert!(matches!(
        Authenticator::new(&garbage),
        Err(Error::Config(_))
    ));

    let mut missing_file = settings();
    missing_file.public_key_pem = None;
    missing_file.public_key_file = Some("/nonexistent/key.pem".into());
    assert!(matches!(
        Authenticator::new(&missing_file),
        Err(Error::Config(_))
    ));
}

#[test]
fn a_public_key_file_is_read() {
    let mut s = settings();
    s.public_key_pem = None;
    s.public_key_file = Some(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/test-only-rsa-public.pem"
        )
        .into(),
    );
    assert!(Authenticator::new(&s).is_ok());
}

#[test]
fn bearer_header_parsing() {
    let mut headers = HeaderMap::new();
    assert_eq!(Authenticator::bearer(&headers), Err(AuthError::Missing));
    headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
    assert_eq!(Authenticator::bearer(&headers), Err(AuthError::NotBearer));
    headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
    assert!(Authenticator::bearer(&headers).is_err());
    headers.insert(header::AUTHORIZATION, "bearer abc.def.ghi".parse().unwrap());
    assert_eq!(Authenticator::bearer(&headers), Ok("abc.def.ghi"));
}

#[test]
fn refusals_do_not_echo_the_token() {
    let token = rs256(&claims());
    for err in [
        AuthError::Malformed,
        AuthError::BadSignature,
        AuthError::UnknownKey,
        AuthError::Expired,
    ] {
        assert!(!err.to_string().contains(&token));
        assert!(!err.to_string().contains("alice"));
    }
}

/// A JWKS endpoint on a free port that counts its fetches.
async fn jwks_server(set: JwkSet) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let body = serde_json::to_string(&set).unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fetches)
}

fn jwk(private_pem: &str, kid: &str) -> Jwk {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

fn jwks_settings(url: String) -> AuthSettings {
    AuthSettings {
        public_key_pem: None,
        jwks_url: Some(url),
        ..settings()
    }
}

#[tokio::test]
async fn jwks_keys_are_found_by_kid_and_unknown_kids_are_refused() {
    let (url, fetches) = jwks_server(JwkSet {
        keys: vec![jwk(RSA_PRIVATE, "k1")],
    })
    .await;
    let auth = Authenticator::new(&jwks_settings(url)).unwrap();
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();

    let user = auth
        .verify(&sign_with(Algorithm::RS256, &key, Some("k1"), &claims()))
        .await;
    assert_eq!(user.unwrap().subject, "alice");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Known kid again: served from the cache.
    assert!(
        auth.verify(&sign_with(Algorithm::RS256, &key, Some("k1"), &claims()))
            .await
            .is_ok()
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Unknown kids: refused, and they do not make the gateway refetch within 30 s.
    for kid in ["k2", "k3", "k4"] {
        let token = sign_with(Algorithm::RS256, &key, Some(kid), &claims());
        assert_eq!(auth.verify(&token).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // The right kid with the wrong key is still a forgery.
    let other = EncodingKey::from_rsa_pem(OTHER_RSA_PRIVATE.as_bytes()).unwrap();
    let forged = sign_with(Algorithm::RS256, &other, Some("k1"), &claims());
    assert_eq!(auth.verify(&forged).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn an_unknown_kid_triggers_a_refetch_when_one_is_due() {
    // The first token names a key the (not yet loaded) cache lacks: one fetch finds it.
    let (url, fetches) = jwks_server(JwkSet {
        keys: vec![jwk(RSA_PRIVATE, "old"), jwk(OTHER_RSA_PRIVATE, "new")],
    })
    .await;
    let auth = Authenticator::new(&jwks_settings(url)).unwrap();
    let new_key = EncodingKey::from_rsa_pem(OTHER_RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign_with(Algorithm::RS256, &new_key, Some("new"), &claims());
    assert!(auth.verify(&token).await.is_ok());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_is_unavailable_not_unauthorised() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let auth = Authenticator::new(&jwks_settings(format!("http://127.0.0.1:{port}/jwks"))).unwrap();
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign_with(Algorithm::RS256, &key, Some("k1"), &claims());
    assert_eq!(auth.verify(&token).await, Err(AuthError::KeysUnavailable));
    let err: Error = AuthError::KeysUnavailable.into();
    assert_eq!(
        err.status_and_code().0,
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    );
}
