//! Decisions: who may see and do what, computed from the organisation ([`crate::org`]) and
//! sharing ([`crate::sharing`]). Serves `crm.permission.v1.AccessService` (`Check`,
//! `CompileScope`, `Explain`, `GetPermissionVersion`).
//!
//! # Why union semantics
//!
//! A user holding several roles may do whatever any of them allows: scopes are united and, per
//! field, the most permissive rule of the roles that grant the action wins. It is what people
//! expect ("she is a sales rep and also an auditor"), it makes adding a role never take anything
//! away, and it is well defined where "widest scope wins" is not: `own_and_subordinates` and
//! `department` do not contain each other, and their union is exactly what the
//! [`CompiledScope`](domain::CompiledScope) shape can say. The price: restrictions cannot be
//! expressed by adding a role (there are no deny rules); restrict by taking roles away. Details
//! and the scope table: [`domain`].
//!
//! # How a service applies a compiled scope
//!
//! `CompileScope(user, resource, action)` answers `{all, owner_ids, department_ids}` (subordinates
//! and department subtrees already expanded) plus field rules and the permission version. The
//! owning service stores `owner_id` and `department_id` on each record and filters with
//!
//! ```sql
//! WHERE ($1 OR owner_id = ANY($2) OR department_id = ANY($3))   -- all, owner_ids, department_ids
//! ```
//!
//! binding the three values as parameters (never spliced into the SQL). Not `all` with both lists
//! empty selects nothing, which is right: no grant, no records. A record with a NULL owner or
//! department matches only through the other column or `all`. Then per field: leave out
//! `hidden`, refuse writes to `hidden` and `read_only`, and pass `read_only` values with a mask
//! through `apply_mask`. Fields not listed are editable.
//!
//! Layout: [`domain`] (the decision engine: pure functions over a snapshot, with the semantics
//! and the scope table), [`store`] (the snapshot, one statement), [`service`] ([`Access`]),
//! [`grpc`] (the edge).

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::Access;
