//! Follow-ups (跟进记录): what someone did with a customer — a call, a meeting, a visit, a note,
//! an e-mail — when it happened, what came of it and when to follow up next. Served by the
//! follow-up RPCs of `crm.customer.v1.CustomerService` (through [`crate::grpc`]); published as
//! `customer.follow_up.*` events, whose `next_follow_up_at` reminders will go by.
//!
//! Every follow-up is about an account the caller may read, and optionally one of that
//! account's contacts the caller may read; both are checked (and share-locked) in the write's
//! transaction through [`crate::accounts::service::require_readable`] and
//! [`crate::contacts::service::require_readable`]. A follow-up stays with its account: it can
//! change contact, not account.
//!
//! Layout: [`domain`], [`store`], [`service`] ([`FollowUps`]), [`grpc`], as for every
//! aggregate; the third resource of this service, added as `docs/adding-a-resource.md` says.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::FollowUps;
