//! Single sign-on end to end against an OpenID Connect provider this test starts itself
//! ([`TestIdp`]: discovery, an authorization endpoint that signs its `login_hint` user in at once,
//! a token endpoint checking the client and PKCE, EdDSA ID tokens, a JWKS): a first sign-in
//! creates the user with the roles and department of the claim rules, the next finds them again,
//! and a replayed state, a wrong nonce, a wrong audience or an unknown provider are refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_permission::settings::{ClaimRule, OidcProvider};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Options, TestApp, spawn_with};

const CLIENT_ID: &str = "crm-test";
const CLIENT_SECRET: &str = "idp-client-secret";
const REDIRECT_URI: &str = "http://crm.test/api/v1/auth/oidc/corp/callback";

/// The people the provider knows: `login_hint` → claims.
fn people() -> HashMap<&'static str, Value> {
    HashMap::from([
        (
            "zhang",
            json!({"sub": "idp-user-1", "preferred_username": "Zhang.San",
                   "email": "zhang@corp.example", "name": "Zhang San",
                   "groups": ["sales-east", "staff"]}),
        ),
        (
            "guest",
            json!({"sub": "idp-user-2", "preferred_username": "guest", "groups": []}),
        ),
    ])
}

struct Pending {
    claims: Value,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Clone)]
struct TestIdp {
    issuer: String,
    pkcs8: Arc<Vec<u8>>,
    public: Arc<Vec<u8>>,
    codes: Arc<Mutex<HashMap<String, Pending>>>,
    /// Misbehaviours, to check the relying party notices.
    wrong_nonce: Arc<AtomicBool>,
    wrong_audience: Arc<AtomicBool>,
}

impl TestIdp {
    async fn start() -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let idp = TestIdp {
            issuer,
            pkcs8: Arc::new(pkcs8.as_ref().to_vec()),
            public: Arc::new(public),
            codes: Arc::default(),
            wrong_nonce: Arc::default(),
            wrong_audience: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    fn provider(&self) -> OidcProvider {
        OidcProvider {
            name: "corp".into(),
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: secrecy::SecretString::from(CLIENT_SECRET),
            redirect_uri: REDIRECT_URI.into(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            username_claim: "preferred_username".into(),
            create_users: true,
            claim_rules: vec![ClaimRule {
                claim: "groups".into(),
                equals: "sales-east".into(),
                roles: vec!["sales_rep".into()],
                department: Some("East Sales".into()),
            }],
        }
    }
}

async fn discovery(State(idp): State<TestIdp>) -> Json<Value> {
    Json(json!({
        "issuer": idp.issuer,
        "authorization_endpoint": format!("{}/authorize", idp.issuer),
        "token_endpoint": format!("{}/token", idp.issuer),
        "jwks_uri": format!("{}/jwks", idp.issuer),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<TestIdp>) -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "idp-1",
        "x": URL_SAFE_NO_PAD.encode(idp.public.as_slice()),
    }]}))
}

/// Signs the hinted user in at once (no login page) and sends the browser back with a code.
async fn authorize(
    State(idp): State<TestIdp>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("scope")
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let claims = people()[q["login_hint"].as_str()].clone();
    let code = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    idp.codes.lock().await.insert(
        code.clone(),
        Pending {
            claims,
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: q["redirect_uri"].clone(),
        },
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .into_response()
}

/// Checks the client, the code (once), the redirect URI and the PKCE verifier.
async fn token(
    State(idp): State<TestIdp>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let refuse = |why: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response();
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return refuse("invalid_client");
    }
    let Some(pending) = form
        .get("code")
        .and_then(|c| idp.codes.try_lock().ok()?.remove(c))
    else {
        return refuse("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    if challenge != pending.challenge || form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return refuse("invalid_grant");
    }
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = pending.claims;
    claims["iss"] = json!(idp.issuer);
    claims["aud"] = json!(if idp.wrong_audience.load(Ordering::SeqCst) {
        "someone-else"
    } else {
        CLIENT_ID
    });
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    claims["nonce"] = json!(if idp.wrong_nonce.load(Ordering::SeqCst) {
        "not-the-nonce".to_string()
    } else {
        pending.nonce
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("idp-1".into());
    let key = jsonwebtoken::EncodingKey::from_ed_der(&idp.pkcs8);
    let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

/// Walks the browser's part: start at the gateway, through the provider, back to the gateway's
/// callback. Returns the callback's response.
async fn sign_in(app: &TestApp, who: &str) -> reqwest::Response {
    let started = app
        .http
        .get(app.url("/api/v1/auth/oidc/corp/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::FOUND);
    let authorize = started.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&authorize).unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert!(!query["state"].is_empty() && !query["nonce"].is_empty());
    let back = app
        .http
        .get(format!("{authorize}&login_hint={who}"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let location = back.headers()["location"].to_str().unwrap();
    // The browser would go to REDIRECT_URI, which is the gateway's callback.
    let callback = location.replace("http://crm.test", &app.address);
    app.http.get(callback).send().await.unwrap()
}

async fn app_with(idp: &TestIdp) -> TestApp {
    spawn_with(Options {
        with_permission: true,
        oidc: vec![idp.provider()],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_first_sso_sign_in_creates_the_user_with_the_claim_rules_and_the_next_finds_them() {
    let idp = TestIdp::start().await;
    let app = app_with(&idp).await;
    let response = sign_in(&app, "zhang").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    let user_id = tokens["user_id"].as_str().unwrap().to_string();
    let access = tokens["access_token"].as_str().unwrap().to_string();

    // A sales rep of East Sales, by the claim rule: may create, and the record lands there.
    let created = app
        .http
        .post(app.url("/api/v1/accounts"))
        .bearer_auth(&access)
        .json(&json!({"name": "Via SSO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let account: Value = created.json().await.unwrap();
    assert_eq!(account["owner_id"], user_id);
    assert_eq!(
        account["department_id"],
        json!(app.org.department("East Sales").await)
    );
    // … but not delete (sales reps may not).
    let id = account["id"].as_str().unwrap();
    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/accounts/{id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::FORBIDDEN);
    let user = app
        .org
        .users
        .clone()
        .get_user(crm_proto::permission::GetUserRequest {
            id: user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.username, "zhang.san");
    assert_eq!(user.email, "zhang@corp.example");

    // The refresh token works like any other.
    let refreshed = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);

    // Signing in again finds the same user.
    let again: Value = sign_in(&app, "zhang").await.json().await.unwrap();
    assert_eq!(again["user_id"], user_id);

    // Someone matching no rule gets an account but no roles: signed in, allowed nothing.
    let guest: Value = sign_in(&app, "guest").await.json().await.unwrap();
    let listed = app
        .http
        .get(app.url("/api/v1/accounts"))
        .bearer_auth(guest["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn replayed_states_wrong_nonces_and_audiences_and_unknown_providers_are_refused() {
    let idp = TestIdp::start().await;
    let app = app_with(&idp).await;

    // Replaying a callback: the state was used up by the first one.
    let first = sign_in(&app, "zhang").await;
    let callback = first.url().clone();
    assert_eq!(first.status(), StatusCode::OK);
    let replay = app.http.get(callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // A state nobody issued.
    let forged = app
        .http
        .get(app.url("/api/v1/auth/oidc/corp/callback?code=x&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    idp.wrong_nonce.store(true, Ordering::SeqCst);
    assert_eq!(
        sign_in(&app, "zhang").await.status(),
        StatusCode::UNAUTHORIZED
    );
    idp.wrong_nonce.store(false, Ordering::SeqCst);

    idp.wrong_audience.store(true, Ordering::SeqCst);
    assert_eq!(
        sign_in(&app, "zhang").await.status(),
        StatusCode::UNAUTHORIZED
    );
    idp.wrong_audience.store(false, Ordering::SeqCst);

    // The provider refused (e.g. the user cancelled).
    let cancelled = app
        .http
        .get(app.url("/api/v1/auth/oidc/corp/callback?error=access_denied"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::UNAUTHORIZED);

    let unknown = app
        .http
        .get(app.url("/api/v1/auth/oidc/nobody/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // And after all that, a proper sign-in still works.
    assert_eq!(sign_in(&app, "zhang").await.status(), StatusCode::OK);
}
