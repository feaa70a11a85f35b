//! Accounts: the companies the organisation does business with — their details, owner and
//! department, tags, lifecycle status and grade. Served by the account RPCs of
//! `crm.customer.v1.CustomerService` (through [`crate::grpc`]); published as
//! `customer.account.*` events.
//!
//! An account cannot be deleted while contacts still point at it ([`crate::contacts`]'s rows,
//! read through its store in the same transaction).
//!
//! Layout: [`domain`] (types and their rules, no I/O), [`store`] (the `accounts` SQL),
//! [`service`] (the use cases, [`Accounts`]), [`grpc`] (the edge). What accounts share with
//! contacts is [`crate::record`]'s.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::Accounts;
