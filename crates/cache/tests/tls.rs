//! The cache (and so every Redis client made by `crm_cache::connect`) against a Redis that
//! speaks only TLS, with a throwaway CA: verified, mutual, and refused.

use std::time::Duration;

use crm_cache::{Cached, VersionedCache};
use crm_settings::{RedisSettings, TlsFiles};
use crm_testkit::tls::{Pki, TlsRedis};

fn settings(url: String, tls: TlsFiles) -> RedisSettings {
    RedisSettings {
        url: url.into(),
        tls,
        ..crm_testkit::redis_settings()
    }
}

/// Stores a value and reads it back: `Present` only if both went over the connection.
async fn round_trip(settings: &RedisSettings) -> Cached<String> {
    let cache = VersionedCache::new(settings, "tls", Duration::from_secs(60)).unwrap();
    cache.put("thing", "1", 1, Some(&"v1".to_string())).await;
    cache.get::<String>("thing", "1").await
}

#[tokio::test]
async fn a_tls_redis_verified_with_a_private_ca() {
    let pki = Pki::new("redis");
    let redis = TlsRedis::start(&pki, false).await;
    assert_eq!(
        round_trip(&settings(redis.url(), pki.tls_files(false))).await,
        Cached::Present("v1".into())
    );
}

#[tokio::test]
async fn a_redis_that_wants_client_certificates() {
    let pki = Pki::new("redis");
    let redis = TlsRedis::start(&pki, true).await;
    assert_eq!(
        round_trip(&settings(redis.url(), pki.tls_files(true))).await,
        Cached::Present("v1".into())
    );
    // Without one the server refuses the handshake: the cache is a miss, never an error.
    assert_eq!(
        round_trip(&settings(redis.url(), pki.tls_files(false))).await,
        Cached::Miss
    );
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("redis");
    let other = Pki::new("other");
    let redis = TlsRedis::start(&pki, false).await;
    assert_eq!(
        round_trip(&settings(redis.url(), other.tls_files(false))).await,
        Cached::Miss
    );
    // Nor does the system's trust store know the private CA.
    assert_eq!(
        round_trip(&settings(redis.url(), TlsFiles::default())).await,
        Cached::Miss
    );
}
