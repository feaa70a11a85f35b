//! The organisation: departments, managers, roles with grants and field rules, and each user's
//! place in it — what every decision ([`crate::access`]) is computed from. Serves
//! `crm.permission.v1.OrgService`.
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
//! Every call is verified before a handler runs (`crm_identity`, ADR 0012). `OrgService` does
//! not take the gateway's word for who may administer: a call made for a user (with their access
//! context) needs that user's `organisation` grant for the action — READ to list or read, CREATE,
//! UPDATE or DELETE to change (a single read also accepts UPDATE or DELETE: the gateway reads
//! before it changes, with the change's context) — and every event it writes names that user as
//! its actor ([`crate::actor`]). A service calling as itself passed its grants already; its
//! events name it. `AccessService` answers decisions to services and checks no grant. Both also
//! check input and structure: every violation with its field path, cycles, dependents, stale
//! versions.
//!
//! Layout: [`domain`] (types, validation and the access vocabulary; no I/O), [`store`] (SQL,
//! the permission version included), [`service`] ([`Org`] and [`OrgTx`], the transaction every
//! organisation write — sharing's too — goes through), [`grpc`] (the edge). The demo
//! organisation is seeded by [`crate::seed`].

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::{Org, OrgTx};
