//! Kafka client configuration shared by producers, consumers and the admin client.

use std::time::Duration;

use crm_settings::KafkaSettings;
use crm_settings::secrecy::ExposeSecret;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::EventError;

/// Base client configuration: brokers, TLS and SASL (`kafka.security`), then the pass-through
/// properties. librdkafka reads the certificate files when a client is created, so a missing or
/// unreadable file fails the service's start with librdkafka's message.
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", settings.bootstrap_servers());
    let security = &settings.security;
    config.set("security.protocol", security.protocol.as_str());
    if security.protocol.uses_tls() {
        match &security.tls.ca_file {
            Some(ca) => config.set("ssl.ca.location", ca.to_string_lossy()),
            // OpenSSL's compiled-in default path is not where every image keeps its roots.
            None => config.set("ssl.ca.location", "probe"),
        };
        if let Some(client) = &security.tls.client_cert {
            config
                .set(
                    "ssl.certificate.location",
                    client.cert_file.to_string_lossy(),
                )
                .set("ssl.key.location", client.key_file.to_string_lossy());
        }
    }
    if let Some(sasl) = &security.sasl {
        config
            .set("sasl.mechanisms", sasl.mechanism.as_str())
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose_secret());
    }
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
}

/// Makes (and drops) a client from `settings`, so that what librdkafka refuses — an unreadable
/// certificate or key, an unknown property — stops the start with its message, instead of a
/// running process whose relay or consumer never started. Waits for no broker.
pub fn check_config(settings: &KafkaSettings) -> Result<(), EventError> {
    producer_config(settings).create::<rdkafka::producer::BaseProducer>()?;
    Ok(())
}

/// Producer configuration: idempotent, acknowledged by all in-sync replicas, and bounded in time
/// so a broker outage surfaces as a failure the relay can back off from.
pub fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = client_config(settings);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        );
    config
}

/// Creates each topic that does not exist yet (when `kafka.create_topics` is on).
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), EventError> {
    if !settings.create_topics {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(settings).create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(EventError::Kafka(rdkafka::error::KafkaError::AdminOp(code)))
                    .inspect_err(|_| tracing::error!(%topic, ?code, "topic creation failed"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_settings::{KafkaProtocol, KafkaSecurity, Sasl, SaslMechanism, TlsFiles};

    fn settings(security: KafkaSecurity) -> KafkaSettings {
        KafkaSettings {
            brokers: vec!["b1:9096".into(), "b2:9096".into()],
            create_topics: false,
            partitions: 1,
            replication_factor: 1,
            message_timeout_ms: 1_000,
            session_timeout_ms: 10_000,
            security,
            properties: Default::default(),
        }
    }

    #[test]
    fn sasl_scram_over_tls_maps_onto_librdkafka() {
        let mut s = settings(KafkaSecurity {
            protocol: KafkaProtocol::SaslSsl,
            tls: TlsFiles::default(),
            sasl: Some(Sasl {
                mechanism: SaslMechanism::ScramSha512,
                username: "crm".into(),
                password: "s3cret".to_string().into(),
            }),
        });
        s.properties.insert(
            "ssl.endpoint.identification.algorithm".into(),
            "none".into(),
        );
        let config = client_config(&s);
        assert_eq!(config.get("bootstrap.servers"), Some("b1:9096,b2:9096"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("crm"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("ssl.ca.location"), Some("probe"));
        assert_eq!(config.get("ssl.certificate.location"), None);
        // The pass-through comes last.
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
    }

    #[test]
    fn plaintext_sets_no_tls_or_sasl_property() {
        let config = client_config(&settings(KafkaSecurity::default()));
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        assert_eq!(config.get("ssl.ca.location"), None);
        assert_eq!(config.get("sasl.mechanisms"), None);
    }
}
