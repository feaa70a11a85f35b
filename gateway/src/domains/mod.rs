//! The API's domains. Each owns its JSON types, conversions, handlers, the grant each route
//! needs and its OpenAPI operations, and contributes them as one
//! [`OpenApiRouter`](utoipa_axum::router::OpenApiRouter) (`routes()`); only [`crate::app`]
//! knows them all. A domain depends on [`crate::platform`], [`crate::security`] and
//! [`crate::upstream`], never on another domain or on the app.
//!
//! - [`customer`]: accounts and contacts (the customer service);
//! - [`customization`]: the data model as configuration — custom fields (served by the owning
//!   service of each entity);
//! - [`identity`]: sign-in, one's profile, administration, the audit trail (the permission
//!   service).

pub mod customer;
pub mod customization;
pub mod identity;
