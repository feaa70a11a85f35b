//! TLS and SASL settings for the connections to infrastructure that an enterprise runs itself
//! (a managed Kafka with SASL/SCRAM over TLS, a Redis that only speaks TLS).
//!
//! Combinations that cannot work, or that would silently leave a connection in clear text (a CA
//! file with `protocol: plaintext`), are refused when the settings are loaded, naming the key, so
//! a mistake stops the rollout instead of surfacing as connection errors later.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// PEM files for a TLS connection. All optional: without `ca_file` the system's roots verify the
/// server; `cert_file` and `key_file` (both or neither) are the client's own certificate for
/// mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTlsFiles")]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<ClientCert>,
}

/// A client certificate (PEM, may hold the chain) and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// Nothing set: the defaults (system roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsFiles {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

impl TryFrom<RawTlsFiles> for TlsFiles {
    type Error = String;

    fn try_from(raw: RawTlsFiles) -> Result<Self, String> {
        let client_cert = match (raw.cert_file, raw.key_file) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => Some(ClientCert {
                cert_file,
                key_file,
            }),
            (Some(_), None) => return Err("tls.cert_file is set without tls.key_file".into()),
            (None, Some(_)) => return Err("tls.key_file is set without tls.cert_file".into()),
        };
        Ok(Self {
            ca_file: raw.ca_file,
            client_cert,
        })
    }
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl KafkaProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanisms that need nothing beyond TLS (no Kerberos libraries in the images).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials; the password comes from a Secret (`CRM__KAFKA__SECURITY__SASL__PASSWORD`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: SecretString,
}

/// How a process authenticates to the brokers and encrypts the traffic (`kafka.security`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "RawKafkaSecurity")]
pub struct KafkaSecurity {
    pub protocol: KafkaProtocol,
    pub tls: TlsFiles,
    pub sasl: Option<Sasl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaSecurity {
    #[serde(default)]
    protocol: KafkaProtocol,
    #[serde(default)]
    tls: TlsFiles,
    sasl: Option<Sasl>,
}

impl TryFrom<RawKafkaSecurity> for KafkaSecurity {
    type Error = String;

    fn try_from(raw: RawKafkaSecurity) -> Result<Self, String> {
        let protocol = raw.protocol.as_str();
        if !raw.protocol.uses_tls() && !raw.tls.is_empty() {
            return Err(format!(
                "kafka.security.tls is set but kafka.security.protocol is {protocol}: \
                 use ssl or sasl_ssl, or the files are never used"
            ));
        }
        match (raw.protocol.uses_sasl(), raw.sasl.is_some()) {
            (true, false) => {
                return Err(format!(
                    "kafka.security.protocol {protocol} needs kafka.security.sasl \
                     (mechanism, username, password)"
                ));
            }
            (false, true) => {
                return Err(format!(
                    "kafka.security.sasl is set but kafka.security.protocol is {protocol}: \
                     use sasl_ssl (or sasl_plaintext)"
                ));
            }
            _ => {}
        }
        Ok(Self {
            protocol: raw.protocol,
            tls: raw.tls,
            sasl: raw.sasl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn kafka(yaml: &str) -> Result<KafkaSecurity, String> {
        config::Config::builder()
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .build()
            .and_then(|c| c.try_deserialize::<KafkaSecurity>())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sasl_over_tls_with_a_private_ca_and_a_client_certificate() {
        let s = kafka(
            "protocol: sasl_ssl\n\
             tls: { ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem }\n\
             sasl: { mechanism: SCRAM-SHA-512, username: crm, password: s3cret }",
        )
        .unwrap();
        assert_eq!(s.protocol, KafkaProtocol::SaslSsl);
        assert_eq!(s.tls.ca_file.as_deref(), Some("/ca.pem".as_ref()));
        let client = s.tls.client_cert.unwrap();
        assert_eq!(client.key_file, PathBuf::from("/k.pem"));
        let sasl = s.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.password.expose_secret(), "s3cret");
        assert!(!format!("{sasl:?}").contains("s3cret"), "password in Debug");
    }

    #[test]
    fn plaintext_is_the_default() {
        let s = kafka("{}").unwrap();
        assert_eq!(s.protocol, KafkaProtocol::Plaintext);
        assert!(s.tls.is_empty() && s.sasl.is_none());
    }

    #[test]
    fn combinations_that_cannot_work_are_refused_with_the_key() {
        for (yaml, expected) in [
            ("tls: { ca_file: /ca.pem }", "kafka.security.tls is set"),
            (
                "protocol: sasl_plaintext\ntls: { ca_file: /ca.pem }",
                "kafka.security.tls is set",
            ),
            ("protocol: sasl_ssl", "needs kafka.security.sasl"),
            (
                "protocol: ssl\nsasl: { mechanism: PLAIN, username: u, password: p }",
                "kafka.security.sasl is set",
            ),
            (
                "protocol: ssl\ntls: { cert_file: /c.pem }",
                "without tls.key_file",
            ),
            (
                "protocol: ssl\ntls: { key_file: /k.pem }",
                "without tls.cert_file",
            ),
            ("protocol: tls", "does not have variant"),
            (
                "protocol: sasl_ssl\nsasl: { mechanism: GSSAPI, username: u, password: p }",
                "does not have variant",
            ),
            (
                "protocol: sasl_ssl\nsasl: { mechanism: PLAIN, username: u }",
                "password",
            ),
            ("protocol: ssl\ntls: { ca: /ca.pem }", "unknown field"),
        ] {
            let err = kafka(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml:?}: {err}");
        }
    }
}
