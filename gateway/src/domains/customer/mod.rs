//! The customer domain: accounts, contacts and follow-ups, served by the customer service.
//!
//! - [`model`]: the JSON types; [`convert`]: them ↔ the generated proto types;
//! - [`accounts`], [`contacts`], [`follow_ups`]: each resource's names, scopes, export columns
//!   and gRPC calls; the routes themselves are the shared record routes
//!   ([`crate::platform::records`]).

pub mod accounts;
pub mod contacts;
pub mod convert;
pub mod follow_ups;
pub mod model;

use axum::extract::FromRef;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::platform::records;
use crate::security::Security;
use crate::upstream::customer;

#[derive(OpenApi)]
#[openapi(tags(
    (name = "accounts", description = "Companies we sell to."),
    (name = "contacts", description = "People, usually working at an account."),
    (name = "follow-ups", description = "Follow-ups (跟进记录): calls, meetings, visits, notes \
        and e-mails with an account or one of its contacts — when, with what outcome, and when \
        to follow up next. Resource `follow_up`: recording one needs `read` on its account."),
))]
struct Tags;

/// The domain's routes and their OpenAPI operations.
pub fn routes<S>(security: &Security) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    customer::Client: FromRef<S>,
{
    OpenApiRouter::with_openapi(Tags::openapi())
        .merge(records::routes::<accounts::Accounts, S>(security))
        .merge(records::routes::<contacts::Contacts, S>(security))
        .merge(records::routes::<follow_ups::FollowUps, S>(security))
}
