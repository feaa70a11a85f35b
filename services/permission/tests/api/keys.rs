use std::collections::BTreeSet;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use crm_permission::keys::Kek;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{PASSWORD, TEST_KEK, eventually, spawn_with};

/// kid, public key, nonce, ciphertext.
type StoredKey = (String, Vec<u8>, Vec<u8>, Vec<u8>);

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// With a short rotation a second key appears; both are published, and tokens signed with the
/// old key still verify.
#[tokio::test]
async fn keys_rotate_and_old_tokens_still_verify() {
    let app = spawn_with(|s| s.auth.key_rotation_secs = 2).await;
    app.create_user("nina", PASSWORD).await;
    let old = app.login("nina", PASSWORD).await.unwrap();
    let old_kid = kid_of(&old.access_token);

    eventually(Duration::from_secs(20), "a second signing key", || async {
        app.jwks().await.keys.len() >= 2
    })
    .await;
    let new = app.login("nina", PASSWORD).await.unwrap();
    let new_kid = kid_of(&new.access_token);
    assert_ne!(new_kid, old_kid, "new tokens are signed with the new key");

    let published: BTreeSet<_> = app
        .jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert!(published.contains(&old_kid) && published.contains(&new_kid));
    assert_eq!(
        app.verify(&old.access_token).await.header.kid,
        Some(old_kid)
    );
    assert_eq!(
        app.verify(&new.access_token).await.header.kid,
        Some(new_kid)
    );
    app.shutdown().await;
}

/// Keys leave the JWKS once every token they signed has expired, and lose their private half.
#[tokio::test]
async fn keys_retire_after_their_tokens_expire() {
    let app = spawn_with(|s| {
        s.auth.key_rotation_secs = 1;
        s.auth.access_ttl_secs = 1;
        s.auth.clock_skew_secs = 0;
    })
    .await;
    // Made right after the migrations by the maintenance task.
    eventually(Duration::from_secs(10), "a first signing key", || async {
        app.count("signing_keys").await >= 1
    })
    .await;
    let first: String =
        sqlx::query_scalar("SELECT kid FROM signing_keys ORDER BY created_at LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    // 1 s signing + 1 s token lifetime + 0 s clock skew, checked every second.
    let retired = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT retired_at IS NOT NULL AND private_key_ciphertext IS NULL
               FROM signing_keys WHERE kid = $1",
        )
        .bind(&first)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    eventually(Duration::from_secs(20), "the first key retires", retired).await;
    let published = app.jwks().await;
    assert!(published.find(&first).is_none());
    assert!(
        !published.keys.is_empty(),
        "a current key is always published"
    );
    app.shutdown().await;
}

/// Private keys are stored encrypted: the bytes do not contain the PKCS#8 document, they open
/// only with the right key-encryption key, and what they hold matches the published key.
#[tokio::test]
async fn private_keys_are_encrypted_at_rest() {
    let app = spawn_with(|s| s.auth.key_rotation_secs = 1).await;
    eventually(Duration::from_secs(20), "two signing keys", || async {
        app.count("signing_keys").await >= 2
    })
    .await;
    let rows: Vec<StoredKey> = sqlx::query_as(
        "SELECT kid, public_key, private_key_nonce, private_key_ciphertext
           FROM signing_keys WHERE retired_at IS NULL",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(rows.len() >= 2);
    let kek = Kek::parse(&SecretString::from(TEST_KEK)).unwrap();
    let wrong = Kek::parse(&SecretString::from(
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    ))
    .unwrap();
    for (kid, public_key, nonce, ciphertext) in rows {
        let pkcs8 = kek
            .open(&kid, &nonce, &ciphertext)
            .expect("opens with the KEK");
        let pkcs8 = pkcs8.expose_secret();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).expect("a PKCS#8 Ed25519 key");
        assert_eq!(pair.public_key().as_ref(), public_key.as_slice());
        assert!(
            !ciphertext.windows(pkcs8.len()).any(|w| w == pkcs8),
            "plaintext PKCS#8 stored"
        );
        // Not even the 32-byte seed (bytes 16..48 of the PKCS#8 document) appears.
        let seed = &pkcs8[16..48];
        assert!(!ciphertext.windows(seed.len()).any(|w| w == seed));
        assert!(
            wrong.open(&kid, &nonce, &ciphertext).is_err(),
            "wrong KEK opens it"
        );
    }
    app.shutdown().await;
}

/// Rotating the key-encryption key: start with the new one and the old one listed as previous;
/// every private key is sealed again under the new one, sign-in keeps working throughout, and
/// afterwards the old key is no longer needed.
#[tokio::test]
async fn the_key_encryption_key_rotates_without_losing_signing_keys() {
    const NEW_KEK: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let app = spawn_with(|_| {}).await;
    app.create_user("dora", PASSWORD).await;
    app.login("dora", PASSWORD).await.expect("login");
    let kid: String = sqlx::query_scalar("SELECT kid FROM signing_keys LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();

    let mut rotated = app.settings.clone();
    rotated.auth.key_encryption_key = SecretString::from(NEW_KEK);
    rotated.auth.previous_key_encryption_keys = vec![SecretString::from(TEST_KEK)];
    app.shutdown().await;
    let app = spawn_with(|s| *s = rotated.clone()).await;
    app.login("dora", PASSWORD)
        .await
        .expect("login during the rotation");
    let (nonce, ciphertext): (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT private_key_nonce, private_key_ciphertext FROM signing_keys WHERE kid = $1",
    )
    .bind(&kid)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let new = Kek::parse(&SecretString::from(NEW_KEK)).unwrap();
    let old = Kek::parse(&SecretString::from(TEST_KEK)).unwrap();
    assert!(new.open(&kid, &nonce, &ciphertext).is_ok(), "sealed again");
    assert!(
        old.open(&kid, &nonce, &ciphertext).is_err(),
        "the old key is no longer needed"
    );

    // The rotation done: the new key alone is enough, and the same signing key is used.
    let mut done = rotated;
    done.auth.previous_key_encryption_keys.clear();
    app.shutdown().await;
    let app = spawn_with(|s| *s = done).await;
    let pair = app
        .login("dora", PASSWORD)
        .await
        .expect("login after the rotation");
    let token = app.verify(&pair.access_token).await;
    assert_eq!(token.header.kid.as_deref(), Some(kid.as_str()));
    app.shutdown().await;
}
