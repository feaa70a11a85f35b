//! Every API route needs a valid bearer token; docs do not.

use reqwest::{Method, header};
use serde_json::json;

use crate::helpers::{Kind, expired_token, forged_token, problem, spawn_app};

async fn assert_unauthorized(
    response: reqwest::Response,
    invalid_token: bool,
) -> serde_json::Value {
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        challenge.contains(r#"error="invalid_token""#),
        invalid_token,
        "{challenge}"
    );
    let body = problem(response, 401).await;
    assert_eq!(body["code"], "unauthenticated");
    body
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_on_every_route() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/api/v1/accounts".to_string()),
        (Method::POST, "/api/v1/accounts".to_string()),
        (Method::GET, format!("/api/v1/accounts/{id}")),
        (Method::PATCH, format!("/api/v1/accounts/{id}")),
        (Method::DELETE, format!("/api/v1/accounts/{id}")),
        (Method::GET, "/api/v1/contacts".to_string()),
        (Method::POST, "/api/v1/contacts".to_string()),
        (Method::GET, format!("/api/v1/contacts/{id}")),
        (Method::PATCH, format!("/api/v1/contacts/{id}")),
        (Method::DELETE, format!("/api/v1/contacts/{id}")),
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(&path))
            .header(header::IF_MATCH, "\"1\"")
            .json(&json!({"name": "Acme"}))
            .send()
            .await
            .unwrap();
        let body = assert_unauthorized(response, false).await;
        assert!(
            body["detail"].as_str().unwrap().contains("bearer token"),
            "{method} {path}: {body}"
        );
    }
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let token = expired_token();
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(&token)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    let body = assert_unauthorized(response, true).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert!(!body.to_string().contains(&token), "the token was echoed");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let app = spawn_app().await;
    let token = forged_token();
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(&token)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    let body = assert_unauthorized(response, true).await;
    assert!(
        body["detail"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    assert!(!body.to_string().contains(&token), "the token was echoed");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused() {
    let app = spawn_app().await;
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not.a.jwt",
        "Bearer a.b",
    ] {
        let response = app
            .http
            .get(app.url(Kind::Accounts.path()))
            .header(header::AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value}");
        problem(response, 401).await;
    }
}

#[tokio::test]
async fn users_are_told_apart_by_their_token() {
    let app = spawn_app().await;
    let (token, someone_else) = app.admin_token("someone-else").await;
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(token)
        .json(&json!({"name": "Theirs"}))
        .send()
        .await
        .unwrap();
    let theirs: serde_json::Value = response.json().await.unwrap();
    assert_eq!(theirs["owner_id"], someone_else.to_string());
}

#[tokio::test]
async fn docs_need_no_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/api/v1/docs/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The whole negative suite over HTTP, as deployed (tokens verified with the permission
/// service's JWKS): each case is a 401 and writes nothing.
#[tokio::test]
async fn every_kind_of_bad_token_is_a_401() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = crate::helpers::spawn_with(crate::helpers::Options {
        with_permission: true,
        ..Default::default()
    })
    .await;
    // A genuine token of the permission service, to take apart.
    let login: serde_json::Value = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": crate::helpers::SIGN_IN_USER,
                      "password": crate::helpers::SIGN_IN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let genuine = login["access_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = genuine.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let with = |key: &str, value: serde_json::Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let now = jsonwebtoken::get_current_timestamp() as i64;
    // Signed with a key of our own (Ed25519), so everything but the point under test is valid.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ours = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    let sign_ours = |kid: &str, c: &serde_json::Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, c, &ours).unwrap()
    };
    let kid = header["kid"].as_str().unwrap();
    let public_jwks = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
                parts[1]
            ),
        ),
        ("HS256 with the public key as secret", {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(kid.into());
            jsonwebtoken::encode(
                &h,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(public_jwks.as_bytes()),
            )
            .unwrap()
        }),
        (
            "expired beyond the leeway",
            sign_ours(kid, &with("exp", json!(now - 3600))),
        ),
        (
            "nbf in the future",
            sign_ours(kid, &with("nbf", json!(now + 3600))),
        ),
        (
            "wrong iss",
            sign_ours(kid, &with("iss", json!("someone-else"))),
        ),
        (
            "wrong aud",
            sign_ours(kid, &with("aud", json!("another-api"))),
        ),
        ("unknown kid", sign_ours("no-such-kid", &claims)),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with("sub", json!(uuid::Uuid::now_v7().to_string()))),
                parts[2]
            ),
        ),
    ];
    for (case, token) in cases {
        let response = app
            .http
            .post(app.url(Kind::Accounts.path()))
            .bearer_auth(&token)
            .json(&json!({"name": "Acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert_unauthorized(response, true).await;
    }
    // The genuine one works: the cases failed for their flaw alone.
    let fine = app
        .http
        .get(app.url(Kind::Accounts.path()))
        .bearer_auth(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    let page: serde_json::Value = fine.json().await.unwrap();
    assert_eq!(page["items"], json!([]), "a refused token wrote something");
}
