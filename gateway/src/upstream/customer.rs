//! The customer service: accounts and contacts.

use crm_proto::customer::customer_service_client::CustomerServiceClient;

use super::{Traced, Upstreams, traced};
use crate::platform::error::Error;

/// The service's name: its key in `services` and the audience of the gateway's call tokens.
pub const SERVICE: &str = "customer";

/// The generated client over the signed, traced channel (clones share the channel).
pub type Client = CustomerServiceClient<Traced>;

/// A client of the customer service; a configuration error when `services.customer` is unset.
pub fn client(upstreams: &Upstreams) -> Result<Client, Error> {
    Ok(CustomerServiceClient::new(traced(
        upstreams.channel(SERVICE)?,
    )))
}
