//! What accounts and contacts share as customer records. Not an aggregate: nothing here is
//! stored or changed on its own; it is the half of each aggregate that would otherwise be
//! written twice (or moved by copy-and-paste into the next record type).
//!
//! - [`domain`]: the lifecycle status and grade every customer record has, the fields both
//!   kinds share, and the helper that names the fields a write sets (no I/O);
//! - [`list`]: a validated list request — filters and a keyset cursor bound to them (no I/O);
//! - [`store`]: the SQL both stores share — row locks, stored enums, the list filters, counts;
//! - [`service`]: [`Records`], what every use case over a record shares — the read-through
//!   cache, the events of writes, soft delete with its guard, pages under field rules.
//!
//! Each aggregate's own types, SQL and use cases stay in [`crate::accounts`] and
//! [`crate::contacts`]; the edge helpers both `grpc.rs` files share are in [`crate::wire`].

pub mod domain;
pub mod list;
pub mod service;
pub mod store;

pub use service::Records;
