//! Sharing beyond the roles' data scopes (`crm.permission.v1.SharingService`): one record with
//! one user, or a rule giving a department's members or a role's holders the records of another
//! department, or the records matching a condition.
//!
//! Sharing widens the records of actions a grant already gives (see [`crate::access::domain`]):
//! it never grants an action. Every change goes through an [`crate::org::OrgTx`], so it moves
//! the permission version and is evented like any organisation change — gateways see it within
//! a second.
//!
//! Layout: [`domain`] (shares and rules; no I/O), [`store`] (their SQL), [`service`]
//! ([`Sharing`]), [`grpc`] (the edge).

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::Sharing;
