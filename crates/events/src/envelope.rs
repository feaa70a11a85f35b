//! The CloudEvents 1.0 envelope every CRM event travels in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventError;

/// Content type of a record value: one JSON CloudEvent (structured mode).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// A domain event. Event types are past tense (`customer.account.created`); `subject` is the id
/// of the record the event is about and the Kafka key, so a record's events stay in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    pub id: Uuid,
    /// The producing service, e.g. `crm/customer`.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub subject: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
}

impl Envelope {
    pub fn new(
        id: Uuid,
        source: impl Into<String>,
        event_type: impl Into<String>,
        subject: impl Into<String>,
        time: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            specversion: "1.0".into(),
            id,
            source: source.into(),
            event_type: event_type.into(),
            time,
            subject: subject.into(),
            datacontenttype: "application/json".into(),
            data,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, EventError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses a record value; anything that is not a CloudEvents 1.0 JSON event is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EventError> {
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        if envelope.specversion != "1.0" {
            return Err(EventError::Malformed(format!(
                "unsupported specversion {:?}",
                envelope.specversion
            )));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_uses_cloudevents_names() {
        let e = Envelope::new(
            Uuid::now_v7(),
            "crm/customer",
            "customer.account.created",
            "abc",
            Utc::now(),
            serde_json::json!({"name": "Acme"}),
        );
        let bytes = e.to_bytes().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["type"], "customer.account.created");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(Envelope::from_bytes(&bytes).unwrap(), e);
        assert!(Envelope::from_bytes(b"{\"id\":1}").is_err());
    }
}
