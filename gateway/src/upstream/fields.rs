//! Custom field definitions (`crm.fields.v1.FieldService`): each owning service serves them for
//! its own entities, so [`Fields`] routes a call by entity to the service that owns it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crm_proto::fields::field_service_client::FieldServiceClient;

use super::{Traced, Upstreams, customer, traced};
use crate::platform::error::Error;

/// The generated client over the signed, traced channel.
pub type Client = FieldServiceClient<Traced>;

/// Which service owns each entity's fields. Sales and ticket add theirs when they have
/// entities.
pub const OWNERS: &[(&str, &str)] = &[
    ("account", customer::SERVICE),
    ("contact", customer::SERVICE),
];

/// A client per entity with custom fields; cheap to clone.
#[derive(Clone)]
pub struct Fields(Arc<BTreeMap<&'static str, Client>>);

impl Fields {
    /// A configuration error when an owning service is not in the `services` settings.
    pub fn new(upstreams: &Upstreams) -> Result<Self, Error> {
        let mut clients = BTreeMap::new();
        for (entity, service) in OWNERS {
            clients.insert(
                *entity,
                FieldServiceClient::new(traced(upstreams.channel(service)?)),
            );
        }
        Ok(Self(Arc::new(clients)))
    }

    /// The client of the service that owns `entity`'s fields; 404 for an entity without any.
    pub fn client(&self, entity: &str) -> Result<Client, Error> {
        self.0.get(entity).cloned().ok_or_else(|| {
            crm_errors::ApiError::not_found(&format!(
                "entity {entity:?} with custom fields (one of: {})",
                OWNERS
                    .iter()
                    .map(|(e, _)| *e)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()
        })
    }
}
