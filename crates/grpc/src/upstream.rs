//! The services a process calls: one signed, balanced channel per entry of its `services`
//! settings map (name → endpoints), built once here for the gateway and for every service that
//! calls another (a scope fetched from the permission service, sales calling customer).
//!
//! Each [`Channel`] spreads calls over every SERVING replica ([`BalancedChannel`]) and
//! connects lazily, so a process starts while the services it calls are still down; calls made
//! while no replica answers fail as `UNAVAILABLE`. Each call is signed for the one service it
//! goes to ([`SignCalls`], ADR 0012): with the access context it carries bound to the
//! signature when it acts for a user, else as the calling process itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use crm_identity::{SignCalls, Signer};
use tonic::service::interceptor::InterceptedService;

use crate::TracePropagation;
use crate::balance::{BalanceOptions, BalancedChannel};

/// A channel whose calls are signed for one service.
pub type Channel = SignCalls<BalancedChannel>;
/// A signed channel whose calls carry the trace context: what generated clients wrap.
pub type Traced = InterceptedService<Channel, TracePropagation>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("services.{name}: {reason}")]
    Endpoints { name: String, reason: String },
    #[error("services.{0} is not set: this process calls the {0} service")]
    Missing(String),
}

/// One signed, balanced channel per configured service. Cheap to clone.
#[derive(Clone)]
pub struct Upstreams {
    channels: BTreeMap<String, Channel>,
}

impl Upstreams {
    /// A lazy channel for every entry of `services` (name → endpoints), each signing its calls
    /// for that name as the audience.
    pub fn new(
        services: &BTreeMap<String, String>,
        options: &BalanceOptions,
        signer: Arc<Signer>,
    ) -> Result<Self, UpstreamError> {
        let channels = services
            .iter()
            .map(|(name, endpoints)| {
                let channel = BalancedChannel::new(endpoints, options.clone()).map_err(|e| {
                    UpstreamError::Endpoints {
                        name: name.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok((name.clone(), SignCalls::new(channel, signer.clone(), name)))
            })
            .collect::<Result<_, UpstreamError>>()?;
        Ok(Self { channels })
    }

    /// The channel to `service`; [`UpstreamError::Missing`] when `services.<service>` is not
    /// set.
    pub fn channel(&self, service: &str) -> Result<Channel, UpstreamError> {
        self.channels
            .get(service)
            .cloned()
            .ok_or_else(|| UpstreamError::Missing(service.to_string()))
    }

    /// The configured service names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }
}

/// `channel` with the trace context added to every call.
pub fn traced(channel: Channel) -> Traced {
    InterceptedService::new(channel, TracePropagation)
}
