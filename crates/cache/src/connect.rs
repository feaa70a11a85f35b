//! The one place a Redis client is made from [`RedisSettings`], so the cache, the gateway's
//! idempotency records and its rate limits all connect the same way — TLS included.

use crm_settings::RedisSettings;

/// Why no client could be made: a configuration mistake, reported at start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("redis.url: {0}")]
    Url(redis::RedisError),
    #[error("redis.tls is set but redis.url is not rediss://: the connection would not use TLS")]
    TlsWithoutRediss,
    #[error("{key}: cannot read {path}: {source}")]
    File {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A client for `redis.url`. `rediss://` connects with TLS (rustls), verifying the server with
/// `redis.tls.ca_file` or else the system's roots, and presenting the client certificate when
/// one is set. The files are read here, once: a rotated certificate takes a restart (a rolling
/// one in Kubernetes), as for the other processes' keys.
pub fn client(settings: &RedisSettings) -> Result<redis::Client, ConnectError> {
    let url = settings.url();
    let tls = &settings.tls;
    if tls.is_empty() {
        return redis::Client::open(url).map_err(ConnectError::Url);
    }
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    if !matches!(scheme, "rediss" | "valkeys") {
        return Err(ConnectError::TlsWithoutRediss);
    }
    let root_cert = tls
        .ca_file
        .as_ref()
        .map(|path| read("redis.tls.ca_file", path))
        .transpose()?;
    let client_tls = tls
        .client_cert
        .as_ref()
        .map(|c| {
            Ok::<_, ConnectError>(redis::ClientTlsConfig {
                client_cert: read("redis.tls.cert_file", &c.cert_file)?,
                client_key: read("redis.tls.key_file", &c.key_file)?,
            })
        })
        .transpose()?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(ConnectError::Url)
}

fn read(key: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::File {
        key,
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_settings::TlsFiles;

    fn settings(url: &str, tls: TlsFiles) -> RedisSettings {
        RedisSettings {
            url: url.to_string().into(),
            timeout_ms: 100,
            key_prefix: "t".into(),
            tls,
        }
    }

    #[test]
    fn tls_files_need_a_rediss_url() {
        let tls = TlsFiles {
            ca_file: Some("/dev/null".into()),
            client_cert: None,
        };
        assert!(matches!(
            client(&settings("redis://127.0.0.1:6379", tls.clone())),
            Err(ConnectError::TlsWithoutRediss)
        ));
        assert!(client(&settings("rediss://127.0.0.1:6379", tls)).is_ok());
    }

    #[test]
    fn an_unreadable_file_names_its_key() {
        let tls = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            client_cert: None,
        };
        let err = client(&settings("rediss://127.0.0.1:6379", tls))
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis.tls.ca_file"), "{err}");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(matches!(
            client(&settings("not a url", TlsFiles::default())),
            Err(ConnectError::Url(_))
        ));
    }
}
