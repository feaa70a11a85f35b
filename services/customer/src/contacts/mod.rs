//! Contacts: the people at an account — name, email, phone, title, owner and department, tags,
//! lifecycle status and grade. Served by the contact RPCs of `crm.customer.v1.CustomerService`
//! (through [`crate::grpc`]); published as `customer.contact.*` events.
//!
//! Every contact belongs to an account the caller may read; it is checked (and the account
//! share-locked) through [`crate::accounts`]'s store when a contact is created or moved.
//!
//! Layout: [`domain`] (types and their rules, no I/O), [`store`] (the `contacts` SQL),
//! [`service`] (the use cases, [`Contacts`]), [`grpc`] (the edge). What contacts share with
//! accounts is [`crate::record`]'s.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::Contacts;
