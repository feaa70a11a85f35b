//! Kafka client configuration shared by producers, consumers and the admin client.

use std::time::Duration;

use crm_settings::KafkaSettings;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::EventError;

/// Base client configuration: brokers plus any pass-through properties (TLS, SASL).
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", settings.bootstrap_servers());
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
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
