//! Authorisation: who may see and do what. Serves `crm.permission.v1.OrgService` (administering
//! the organisation) and `AccessService` (decisions).
//!
//! # The model
//!
//! - **Departments** form a tree (`parent_id`). A user belongs to exactly one *primary*
//!   department and optionally to more; the primary one is what services stamp on the records a
//!   user creates. Moving a department under itself or a descendant is refused, and so is
//!   deleting one that still has children or members.
//! - **Managers**: a user may have a manager (`users.manager_id`). A manager oversees their
//!   subordinates transitively. Cycles are refused.
//! - **Roles** form a hierarchy: a role inherits every grant of its parent (and further up); its
//!   own field rules override inherited ones, field by field. Users hold any number of roles.
//! - A **grant** gives a role one action on one resource within a **data scope** — `own`,
//!   `own_and_subordinates`, `department`, `department_and_children` or `all` — each including
//!   the user's own records.
//! - A **field rule** limits one field of a resource for a role: `hidden`, `read_only`
//!   (optionally masked: [`crm_access::mask::apply_mask`]) or `editable`; fields without rules are editable.
//!
//! # Why union semantics
//!
//! A user holding several roles may do whatever any of them allows: scopes are united and, per
//! field, the most permissive rule of the roles that grant the action wins. It is what people
//! expect ("she is a sales rep and also an auditor"), it makes adding a role never take anything
//! away, and it is well defined where "widest scope wins" is not: `own_and_subordinates` and
//! `department` do not contain each other, and their union is exactly what the
//! [`CompiledScope`](decision::CompiledScope) shape can say. The price: restrictions cannot be
//! expressed by adding a role (there are no deny rules); restrict by taking roles away. Details
//! and the scope table: [`decision`].
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
//! # The permission version
//!
//! One counter (table `permission_version`) increases with every change to anything a decision
//! depends on — departments, memberships, managers, roles, grants, field rules, assignments and
//! users' status — in the same transaction as the change, with its row locked first. Each
//! decision is computed from one snapshot and returns the version of that snapshot, so a
//! decision cached under (user, version N) is valid exactly while the version is N;
//! `GetPermissionVersion` is the cheap way to check. Every change also publishes one event
//! (`permission.department.created`, `permission.grant.set`, `permission.assignment.added`, …)
//! carrying the new `permission_version`, for consumers that prefer to be told.
//!
//! # Trust
//!
//! Neither service authenticates its callers or checks who may administer: like the rest of the
//! internal gRPC surface they are reached through the gateway, which decides that (with
//! `Check`). What they do check is input and structure: every violation with its field path,
//! cycles, dependents, stale versions.
//!
//! Layout: [`model`] (types, validation), [`mask`], [`decision`] (pure), [`store`] (SQL),
//! [`service`] (transactions, events), [`grpc`] (the edge), [`seed`] (the demo organisation).

pub mod decision;
pub mod grpc;
pub mod model;
pub mod seed;
pub mod service;
pub mod sharing;
pub mod store;
