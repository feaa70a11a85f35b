//! Decisions, as pure functions over a [`Snapshot`] of one user's slice of the organisation. No
//! SQL and no I/O: [`super::store::load_snapshot`] fills the snapshot in one statement, and
//! everything here is tested exhaustively without a database.
//!
//! # Semantics
//!
//! **Grants reach a user through roles.** An assigned role contributes its own grants and those
//! of every role it inherits from (parent, grandparent, …). Unknown role ids and inheritance
//! cycles (which the service refuses to create) end a walk instead of looping.
//!
//! **Scopes are sets of records**, relative to the user:
//!
//! | scope | owners | departments |
//! |---|---|---|
//! | `own` | the user | — |
//! | `own_and_subordinates` | the user and everyone below them in the manager tree | — |
//! | `department` | the user | the user's departments (primary and others) |
//! | `department_and_children` | the user | those and every department below them |
//! | `all` | every record | |
//!
//! A record is covered when its `owner_id` is among the owners or its `department_id` among the
//! departments. Every scope includes the user's own records: a user moved to another department
//! keeps seeing what they own.
//!
//! **Several grants are united, never ranked.** `own_and_subordinates` and `department` do not
//! contain each other (a subordinate may sit in another department; a colleague is not a
//! subordinate), so "the widest scope wins" has no answer for them; the union of the sets does,
//! and equals the widest scope whenever one contains the other. Union is also what a user
//! expects from holding two roles: whatever either role lets them do.
//!
//! **Field rules** of a role are its own rules, over those it inherits, field by field (the
//! nearest definition wins: a role refines its parent). Across the user's roles the most
//! permissive rule wins — `editable` > `read_only` > `hidden`, unmasked beats masked — counting
//! only the roles that grant the action on the resource: a role that cannot read tickets must not
//! unmask a ticket's phone number. A field without a rule in such a role is editable and
//! unmasked for it.
//!
//! **Unknown and disabled users get nothing**: every check denies, every scope is empty.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use uuid::Uuid;

use crate::org::domain::{Action, DataScope, MaskKind, Resource, Visibility};

/// The state of the user a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Disabled,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoleNode {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct GrantRow {
    pub role_id: Uuid,
    pub resource: Resource,
    pub action: Action,
    pub scope: DataScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldRuleRow {
    pub role_id: Uuid,
    pub resource: Resource,
    pub field: String,
    pub visibility: Visibility,
    pub mask: Option<MaskKind>,
}

/// A department and its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DepartmentEdge {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
}

/// One record shared with the user, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ShareRow {
    pub record_id: Uuid,
    /// `read` or `edit`.
    pub edit: bool,
}

/// A sharing rule that reaches the user (by a department they belong to, or a role they hold),
/// its source expanded: the departments whose records it shares, or a condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SharingRuleRow {
    pub edit: bool,
    #[serde(default)]
    pub departments: Vec<Uuid>,
    pub field: Option<String>,
    pub equals: Option<String>,
}

/// A user and their manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ReportEdge {
    pub user_id: Uuid,
    pub manager_id: Uuid,
}

/// What a decision about one user needs. The store loads only the user's slice (their roles and
/// the roles those inherit from, the department subtrees under their memberships, the users
/// below them), but everything here works as well on the whole organisation: the walks start
/// at the user and ignore what they cannot reach. That is how the tests feed it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub user_id: Uuid,
    pub state: UserState,
    /// The permission version the snapshot was read at.
    pub permission_version: i64,
    /// Roles the user holds directly.
    pub assigned_role_ids: Vec<Uuid>,
    /// At least the assigned roles and every role they inherit from.
    pub roles: Vec<RoleNode>,
    /// Grants of those roles (for the resource in question, or all).
    pub grants: Vec<GrantRow>,
    pub field_rules: Vec<FieldRuleRow>,
    /// The user's departments, primary and others.
    pub department_ids: Vec<Uuid>,
    /// Where the user's new records go (not part of any predicate).
    pub primary_department_id: Option<Uuid>,
    /// At least every department below the user's departments.
    pub departments: Vec<DepartmentEdge>,
    /// At least every user below the user in the manager tree.
    pub reports: Vec<ReportEdge>,
    /// Records of the resource shared with the user.
    pub shares: Vec<ShareRow>,
    /// Sharing rules for the resource that reach the user.
    pub sharing_rules: Vec<SharingRuleRow>,
}

/// The record a decision is about: its owner and its department, either possibly absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRef {
    pub owner_id: Option<Uuid>,
    pub department_id: Option<Uuid>,
    /// For per-record shares.
    pub id: Option<Uuid>,
    /// Field values, for sharing rules' conditions.
    pub attributes: BTreeMap<String, String>,
}

/// A set of records as a predicate:
/// `all OR owner_id = ANY(owner_ids) OR department_id = ANY(department_ids)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub all: bool,
    pub owner_ids: BTreeSet<Uuid>,
    pub department_ids: BTreeSet<Uuid>,
    /// Shared one by one.
    pub record_ids: BTreeSet<Uuid>,
    /// `(field, equals)` of sharing rules.
    pub conditions: BTreeSet<(String, String)>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.owner_ids.is_empty()
            && self.department_ids.is_empty()
            && self.record_ids.is_empty()
            && self.conditions.is_empty()
    }

    pub fn covers(&self, record: &RecordRef) -> bool {
        self.all
            || record
                .owner_id
                .is_some_and(|owner| self.owner_ids.contains(&owner))
            || record
                .department_id
                .is_some_and(|department| self.department_ids.contains(&department))
            || record.id.is_some_and(|id| self.record_ids.contains(&id))
            || self
                .conditions
                .iter()
                .any(|(field, equals)| record.attributes.get(field) == Some(equals))
    }

    fn unite(&mut self, other: Scope) {
        self.all |= other.all;
        self.owner_ids.extend(other.owner_ids);
        self.department_ids.extend(other.department_ids);
        self.record_ids.extend(other.record_ids);
        self.conditions.extend(other.conditions);
    }

    /// With `all`, the lists say nothing more: emptied, so the wire shape is canonical.
    fn normalised(mut self) -> Self {
        if self.all {
            self.owner_ids.clear();
            self.department_ids.clear();
            self.record_ids.clear();
            self.conditions.clear();
        }
        self
    }
}

/// How one field may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAccess {
    pub visibility: Visibility,
    pub mask: Option<MaskKind>,
}

impl FieldAccess {
    /// What a field without a rule is.
    pub const UNRESTRICTED: FieldAccess = FieldAccess {
        visibility: Visibility::Editable,
        mask: None,
    };

    /// The more permissive of two rules: the higher visibility; at equal visibility unmasked
    /// beats masked (two different masks: the first in declaration order, so the answer does
    /// not depend on the order roles were loaded in).
    pub fn most_permissive(self, other: FieldAccess) -> FieldAccess {
        match self.visibility.cmp(&other.visibility) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => FieldAccess {
                visibility: self.visibility,
                mask: match (self.mask, other.mask) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                },
            },
        }
    }
}

/// The answer to "which records, which fields".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledScope {
    pub scope: Scope,
    /// The user's primary department: owning services file new records there by default.
    pub primary_department_id: Option<Uuid>,
    /// Only fields that are not [`FieldAccess::UNRESTRICTED`].
    pub fields: BTreeMap<String, FieldAccess>,
    pub permission_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub id: Uuid,
    pub name: String,
}

/// One grant that applies, and the way it reaches the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantMatch {
    pub assigned_role: RoleRef,
    pub granting_role: RoleRef,
    pub scope: DataScope,
    /// With a record: whether this grant's scope covers it; without one: true.
    pub covers_record: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Granted,
    NoGrant,
    OutOfScope,
    UserDisabled,
    UnknownUser,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub allowed: bool,
    pub reason: Reason,
    pub summary: String,
    /// Roles held directly, by name.
    pub roles: Vec<RoleRef>,
    pub grants: Vec<GrantMatch>,
    pub compiled: CompiledScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub permission_version: i64,
}

/// May the user perform `action` on `resource` — on `record` when given, else in any scope?
pub fn check(
    s: &Snapshot,
    resource: Resource,
    action: Action,
    record: Option<&RecordRef>,
) -> Decision {
    let e = explain(s, resource, action, record);
    Decision {
        allowed: e.allowed,
        reason: e.reason,
        permission_version: s.permission_version,
    }
}

/// The records and fields the user may use for `action` on `resource`.
pub fn compile(s: &Snapshot, resource: Resource, action: Action) -> CompiledScope {
    explain(s, resource, action, None).compiled
}

/// Everything about one decision. [`check`] and [`compile`] are views of it, so the three can
/// never disagree.
pub fn explain(
    s: &Snapshot,
    resource: Resource,
    action: Action,
    record: Option<&RecordRef>,
) -> Explanation {
    let roles = s.held_roles();
    let paths = s.grant_paths(resource, action);
    let mut scope = Scope::default();
    let mut grants = Vec::with_capacity(paths.len());
    for path in &paths {
        let part = s.records_of(path.scope);
        let covers_record = record.is_none_or(|r| part.covers(r));
        scope.unite(part);
        grants.push(GrantMatch {
            assigned_role: path.assigned.clone(),
            granting_role: path.granting.clone(),
            scope: path.scope,
            covers_record,
        });
    }
    // Sharing widens the records of an action a grant gives; it never gives one.
    if !paths.is_empty() {
        scope.unite(s.shared(action));
    }
    let active = s.state == UserState::Active;
    let reason = match s.state {
        UserState::Unknown => Reason::UnknownUser,
        UserState::Disabled => Reason::UserDisabled,
        UserState::Active if paths.is_empty() => Reason::NoGrant,
        UserState::Active if record.is_some_and(|r| !scope.covers(r)) => Reason::OutOfScope,
        UserState::Active => Reason::Granted,
    };
    let compiled = if active {
        let contributing: Vec<Uuid> = paths.iter().map(|p| p.assigned.id).collect();
        CompiledScope {
            scope: scope.normalised(),
            primary_department_id: s.primary_department_id,
            fields: s.fields(resource, &contributing),
            permission_version: s.permission_version,
        }
    } else {
        CompiledScope {
            scope: Scope::default(),
            primary_department_id: None,
            fields: BTreeMap::new(),
            permission_version: s.permission_version,
        }
    };
    let summary = summary(reason, resource, action, &roles, &grants);
    Explanation {
        allowed: reason == Reason::Granted,
        reason,
        summary,
        roles,
        grants,
        compiled,
    }
}

/// A grant reaching the user: held by `granting`, which is `assigned` or a role it inherits from.
struct GrantPath {
    assigned: RoleRef,
    granting: RoleRef,
    scope: DataScope,
}

impl Snapshot {
    fn role(&self, id: Uuid) -> Option<&RoleNode> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// The roles held directly that the snapshot knows, sorted by name (then id).
    fn held_roles(&self) -> Vec<RoleRef> {
        let mut held: Vec<RoleRef> = self
            .assigned_role_ids
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|id| self.role(*id))
            .map(|r| RoleRef {
                id: r.id,
                name: r.name.clone(),
            })
            .collect();
        held.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        held
    }

    /// `id`, its parent, its parent's parent … — ending at an unknown id or a repeat.
    fn lineage(&self, id: Uuid) -> Vec<&RoleNode> {
        let mut out: Vec<&RoleNode> = Vec::new();
        let mut next = Some(id);
        while let Some(id) = next {
            match self.role(id) {
                Some(role) if !out.iter().any(|r| r.id == id) => {
                    out.push(role);
                    next = role.parent_id;
                }
                _ => break,
            }
        }
        out
    }

    /// Every grant for (`resource`, `action`) reaching the user, by held role (name order) and
    /// then nearest ancestor first.
    fn grant_paths(&self, resource: Resource, action: Action) -> Vec<GrantPath> {
        let mut paths = Vec::new();
        for held in self.held_roles() {
            for role in self.lineage(held.id) {
                for grant in self.grants.iter().filter(|g| {
                    g.role_id == role.id && g.resource == resource && g.action == action
                }) {
                    paths.push(GrantPath {
                        assigned: held.clone(),
                        granting: RoleRef {
                            id: role.id,
                            name: role.name.clone(),
                        },
                        scope: grant.scope,
                    });
                }
            }
        }
        paths
    }

    /// What sharing adds for `action`: READ and EXPORT reach what is shared with read or edit
    /// access, UPDATE what is shared with edit access, other actions nothing.
    fn shared(&self, action: Action) -> Scope {
        let reaches = |edit: bool| match action {
            Action::Read | Action::Export => true,
            Action::Update => edit,
            _ => false,
        };
        let mut scope = Scope::default();
        for share in self.shares.iter().filter(|s| reaches(s.edit)) {
            scope.record_ids.insert(share.record_id);
        }
        for rule in self.sharing_rules.iter().filter(|r| reaches(r.edit)) {
            scope
                .department_ids
                .extend(rule.departments.iter().copied());
            if let (Some(field), Some(equals)) = (&rule.field, &rule.equals) {
                scope.conditions.insert((field.clone(), equals.clone()));
            }
        }
        scope
    }

    /// The records one scope covers for this user.
    fn records_of(&self, scope: DataScope) -> Scope {
        let me = BTreeSet::from([self.user_id]);
        match scope {
            DataScope::Own => Scope {
                owner_ids: me,
                ..Scope::default()
            },
            DataScope::OwnAndSubordinates => {
                let mut owners = self.subordinates();
                owners.insert(self.user_id);
                Scope {
                    owner_ids: owners,
                    ..Scope::default()
                }
            }
            DataScope::Department => Scope {
                owner_ids: me,
                department_ids: self.department_ids.iter().copied().collect(),
                ..Scope::default()
            },
            DataScope::DepartmentAndChildren => Scope {
                owner_ids: me,
                department_ids: self.department_subtrees(),
                ..Scope::default()
            },
            DataScope::All => Scope {
                all: true,
                ..Scope::default()
            },
        }
    }

    /// Everyone below the user in the manager tree (not the user, even if the data has a cycle).
    pub fn subordinates(&self) -> BTreeSet<Uuid> {
        let mut reports: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for edge in &self.reports {
            reports
                .entry(edge.manager_id)
                .or_default()
                .push(edge.user_id);
        }
        let mut seen = HashSet::from([self.user_id]);
        let mut out = BTreeSet::new();
        let mut stack = vec![self.user_id];
        while let Some(manager) = stack.pop() {
            for &report in reports.get(&manager).into_iter().flatten() {
                if seen.insert(report) {
                    out.insert(report);
                    stack.push(report);
                }
            }
        }
        out
    }

    /// The user's departments and every department below them.
    pub fn department_subtrees(&self) -> BTreeSet<Uuid> {
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for edge in &self.departments {
            if let Some(parent) = edge.parent_id {
                children.entry(parent).or_default().push(edge.id);
            }
        }
        let mut out: BTreeSet<Uuid> = self.department_ids.iter().copied().collect();
        let mut stack: Vec<Uuid> = out.iter().copied().collect();
        while let Some(department) = stack.pop() {
            for &child in children.get(&department).into_iter().flatten() {
                if out.insert(child) {
                    stack.push(child);
                }
            }
        }
        out
    }

    /// The field rules for `resource`, merged across the `contributing` held roles.
    fn fields(&self, resource: Resource, contributing: &[Uuid]) -> BTreeMap<String, FieldAccess> {
        let contributing: BTreeSet<Uuid> = contributing.iter().copied().collect();
        let per_role: Vec<BTreeMap<&str, FieldAccess>> = contributing
            .iter()
            .map(|id| self.own_and_inherited_rules(*id, resource))
            .collect();
        let names: BTreeSet<&str> = per_role.iter().flat_map(|m| m.keys().copied()).collect();
        names
            .into_iter()
            .filter_map(|name| {
                let merged = per_role
                    .iter()
                    .map(|rules| {
                        rules
                            .get(name)
                            .copied()
                            .unwrap_or(FieldAccess::UNRESTRICTED)
                    })
                    .reduce(FieldAccess::most_permissive)?;
                (merged != FieldAccess::UNRESTRICTED).then(|| (name.to_string(), merged))
            })
            .collect()
    }

    /// One held role's rules for `resource`: its own, over its parent's, over …
    fn own_and_inherited_rules(
        &self,
        role_id: Uuid,
        resource: Resource,
    ) -> BTreeMap<&str, FieldAccess> {
        let mut rules = BTreeMap::new();
        for role in self.lineage(role_id) {
            for rule in self
                .field_rules
                .iter()
                .filter(|r| r.role_id == role.id && r.resource == resource)
            {
                // Nearest first: a rule already set by a descendant stays.
                rules.entry(rule.field.as_str()).or_insert(FieldAccess {
                    visibility: rule.visibility,
                    mask: rule.mask,
                });
            }
        }
        rules
    }
}

fn summary(
    reason: Reason,
    resource: Resource,
    action: Action,
    roles: &[RoleRef],
    grants: &[GrantMatch],
) -> String {
    let via = |g: &GrantMatch| {
        if g.granting_role.id == g.assigned_role.id {
            format!("role {} grants {}", g.assigned_role.name, g.scope)
        } else {
            format!(
                "role {} (inheriting from {}) grants {}",
                g.assigned_role.name, g.granting_role.name, g.scope
            )
        }
    };
    let list = |items: Vec<String>| items.join("; ");
    match reason {
        Reason::UnknownUser => "denied: no such user".into(),
        Reason::UserDisabled => "denied: the user is disabled".into(),
        Reason::NoGrant if roles.is_empty() => {
            format!("denied: the user holds no roles, so nothing grants {action} on {resource}")
        }
        Reason::NoGrant => format!(
            "denied: none of the user's roles ({}) grants {action} on {resource}",
            roles
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Reason::OutOfScope => format!(
            "denied: the record is outside every scope granted for {action} on {resource}: {}",
            list(grants.iter().map(via).collect())
        ),
        Reason::Granted => format!(
            "allowed: {}",
            list(grants.iter().filter(|g| g.covers_record).map(via).collect())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use DataScope::*;

    // Short names for the resources these tests draw.
    #[allow(non_upper_case_globals)]
    const Lead: Resource = Resource::LEAD;
    #[allow(non_upper_case_globals)]
    const Contact: Resource = Resource::CONTACT;
    #[allow(non_upper_case_globals)]
    const Ticket: Resource = Resource::TICKET;
    #[allow(non_upper_case_globals)]
    const Opportunity: Resource = Resource::OPPORTUNITY;

    /// A small organisation, drawn:
    ///
    /// ```text
    /// departments:  HQ ─┬─ Sales ─┬─ East
    ///                   │         └─ North
    ///                   └─ Service
    /// managers:     boss ─ mia ─┬─ rep1 ─ intern
    ///                           └─ rep2
    /// roles:        rep ◄─ manager (inherits rep)      agent      auditor
    /// ```
    struct Org {
        hq: Uuid,
        sales: Uuid,
        east: Uuid,
        north: Uuid,
        service: Uuid,
        boss: Uuid,
        mia: Uuid,
        rep1: Uuid,
        rep2: Uuid,
        intern: Uuid,
        rep: Uuid,
        manager: Uuid,
        agent: Uuid,
        auditor: Uuid,
        departments: Vec<DepartmentEdge>,
        reports: Vec<ReportEdge>,
        roles: Vec<RoleNode>,
        grants: Vec<GrantRow>,
        field_rules: Vec<FieldRuleRow>,
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn org() -> Org {
        let (hq, sales, east, north, service) = (id(1), id(2), id(3), id(4), id(5));
        let (boss, mia, rep1, rep2, intern) = (id(10), id(11), id(12), id(13), id(14));
        let (rep, manager, agent, auditor) = (id(20), id(21), id(22), id(23));
        let dept = |id, parent_id| DepartmentEdge { id, parent_id };
        let report = |user_id, manager_id| ReportEdge {
            user_id,
            manager_id,
        };
        let role = |id, name: &str, parent_id| RoleNode {
            id,
            name: name.into(),
            parent_id,
        };
        let grant = |role_id, resource, action, scope| GrantRow {
            role_id,
            resource,
            action,
            scope,
        };
        let rule = |role_id, resource, field: &str, visibility, mask| FieldRuleRow {
            role_id,
            resource,
            field: field.into(),
            visibility,
            mask,
        };
        Org {
            departments: vec![
                dept(hq, None),
                dept(sales, Some(hq)),
                dept(east, Some(sales)),
                dept(north, Some(sales)),
                dept(service, Some(hq)),
            ],
            reports: vec![
                report(mia, boss),
                report(rep1, mia),
                report(rep2, mia),
                report(intern, rep1),
            ],
            roles: vec![
                role(rep, "rep", None),
                role(manager, "manager", Some(rep)),
                role(agent, "agent", None),
                role(auditor, "auditor", None),
            ],
            grants: vec![
                grant(rep, Lead, Read, Own),
                grant(rep, Lead, Create, Own),
                grant(rep, Contact, Read, Own),
                grant(manager, Lead, Read, DepartmentAndChildren),
                grant(manager, Lead, Export, OwnAndSubordinates),
                grant(agent, Ticket, Read, Department),
                grant(agent, Contact, Read, All),
                grant(auditor, Lead, Read, All),
                grant(auditor, Contact, Read, All),
            ],
            field_rules: vec![
                rule(rep, Contact, "phone", Visibility::ReadOnly, None),
                rule(rep, Contact, "ssn", Visibility::Hidden, None),
                rule(
                    manager,
                    Contact,
                    "ssn",
                    Visibility::ReadOnly,
                    Some(MaskKind::IdNumber),
                ),
                rule(
                    agent,
                    Contact,
                    "phone",
                    Visibility::ReadOnly,
                    Some(MaskKind::Phone),
                ),
                rule(agent, Contact, "notes", Visibility::Hidden, None),
                rule(
                    agent,
                    Ticket,
                    "phone",
                    Visibility::ReadOnly,
                    Some(MaskKind::Phone),
                ),
                rule(
                    auditor,
                    Contact,
                    "phone",
                    Visibility::ReadOnly,
                    Some(MaskKind::Phone),
                ),
                rule(
                    auditor,
                    Contact,
                    "email",
                    Visibility::ReadOnly,
                    Some(MaskKind::Email),
                ),
            ],
            hq,
            sales,
            east,
            north,
            service,
            boss,
            mia,
            rep1,
            rep2,
            intern,
            rep,
            manager,
            agent,
            auditor,
        }
    }

    impl Org {
        /// The whole organisation as seen by `user`, holding `roles`, member of `departments`.
        fn snapshot(&self, user: Uuid, roles: &[Uuid], departments: &[Uuid]) -> Snapshot {
            Snapshot {
                user_id: user,
                state: UserState::Active,
                permission_version: 42,
                assigned_role_ids: roles.to_vec(),
                roles: self.roles.clone(),
                grants: self.grants.clone(),
                field_rules: self.field_rules.clone(),
                department_ids: departments.to_vec(),
                primary_department_id: departments.first().copied(),
                departments: self.departments.clone(),
                reports: self.reports.clone(),
                shares: Vec::new(),
                sharing_rules: Vec::new(),
            }
        }
    }

    fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
        ids.iter().copied().collect()
    }

    fn record(owner: Uuid, department: Uuid) -> RecordRef {
        RecordRef {
            owner_id: Some(owner),
            department_id: Some(department),
            ..RecordRef::default()
        }
    }

    #[test]
    fn subordinates_are_transitive_and_exclude_the_user() {
        let o = org();
        let s = o.snapshot(o.boss, &[], &[]);
        assert_eq!(s.subordinates(), set(&[o.mia, o.rep1, o.rep2, o.intern]));
        assert_eq!(
            o.snapshot(o.mia, &[], &[]).subordinates(),
            set(&[o.rep1, o.rep2, o.intern])
        );
        assert_eq!(
            o.snapshot(o.rep1, &[], &[]).subordinates(),
            set(&[o.intern])
        );
        assert!(o.snapshot(o.intern, &[], &[]).subordinates().is_empty());
    }

    #[test]
    fn walks_survive_cycles_in_the_data() {
        let o = org();
        let mut s = o.snapshot(o.mia, &[o.manager], &[o.sales]);
        s.reports.push(ReportEdge {
            user_id: o.mia,
            manager_id: o.intern,
        });
        s.departments.push(DepartmentEdge {
            id: o.hq,
            parent_id: Some(o.east),
        });
        s.roles[0].parent_id = Some(o.manager); // rep ⇄ manager
        assert_eq!(
            s.subordinates(),
            set(&[o.rep1, o.rep2, o.intern]),
            "never mia herself"
        );
        assert!(
            s.department_subtrees().contains(&o.service),
            "through the cycle, finitely"
        );
        let c = compile(&s, Lead, Read);
        assert!(!c.scope.is_empty());
    }

    #[test]
    fn department_and_children_covers_the_subtree() {
        let o = org();
        let s = o.snapshot(o.mia, &[o.manager], &[o.sales]);
        assert_eq!(s.department_subtrees(), set(&[o.sales, o.east, o.north]));
        let c = compile(&s, Lead, Read);
        assert!(!c.scope.all);
        assert_eq!(c.scope.department_ids, set(&[o.sales, o.east, o.north]));
        assert_eq!(c.scope.owner_ids, set(&[o.mia]));
        // Two memberships: both subtrees.
        let s = o.snapshot(o.mia, &[o.manager], &[o.east, o.service]);
        assert_eq!(
            compile(&s, Lead, Read).scope.department_ids,
            set(&[o.east, o.service])
        );
        let s = o.snapshot(o.mia, &[o.manager], &[o.hq]);
        assert_eq!(s.department_subtrees().len(), 5);
    }

    #[test]
    fn a_role_inherits_its_parents_grants() {
        let o = org();
        let s = o.snapshot(o.mia, &[o.manager], &[o.sales]);
        // `create` is granted to rep only: manager has it through inheritance.
        let e = explain(&s, Lead, Create, None);
        assert!(e.allowed);
        assert_eq!(e.grants.len(), 1);
        assert_eq!(e.grants[0].assigned_role.name, "manager");
        assert_eq!(e.grants[0].granting_role.name, "rep");
        assert_eq!(
            e.summary,
            "allowed: role manager (inheriting from rep) grants own"
        );
        // The parent does not inherit from the child.
        let s = o.snapshot(o.rep1, &[o.rep], &[o.east]);
        assert!(!check(&s, Lead, Export, None).allowed);
    }

    #[test]
    fn scopes_of_several_grants_and_roles_are_united() {
        let o = org();
        // manager: own (inherited from rep) ∪ department_and_children on lead/read.
        let s = o.snapshot(o.mia, &[o.manager], &[o.east]);
        let c = compile(&s, Lead, Read);
        assert_eq!(c.scope.owner_ids, set(&[o.mia]));
        assert_eq!(c.scope.department_ids, set(&[o.east]));
        // Export is own_and_subordinates only: the subordinates, transitively, and no department.
        let e = explain(&s, Lead, Export, None);
        assert_eq!(
            e.compiled.scope.owner_ids,
            set(&[o.mia, o.rep1, o.rep2, o.intern])
        );
        // A second role with `all` swallows everything, and the lists are emptied.
        let s = o.snapshot(o.mia, &[o.manager, o.auditor], &[o.east]);
        let c = compile(&s, Lead, Read);
        assert!(c.scope.all);
        assert!(c.scope.owner_ids.is_empty() && c.scope.department_ids.is_empty());
        // Union of a department scope (agent) and own (rep), different roles.
        let s = o.snapshot(o.rep2, &[o.rep, o.agent], &[o.service]);
        assert!(compile(&s, Contact, Read).scope.all);
        let c = compile(&s, Ticket, Read);
        assert_eq!(
            (c.scope.owner_ids, c.scope.department_ids),
            (set(&[o.rep2]), set(&[o.service]))
        );
    }

    #[test]
    fn every_scope_includes_own_records() {
        let o = org();
        for (roles, resource) in [
            (vec![o.rep], Lead),
            (vec![o.manager], Lead),
            (vec![o.agent], Ticket),
        ] {
            let s = o.snapshot(o.rep1, &roles, &[o.service]);
            let d = check(&s, resource, Read, Some(&record(o.rep1, o.north)));
            assert!(d.allowed, "{roles:?} {resource}");
        }
    }

    /// The matrix: who may read which lead. Rows computed by hand from the drawing above.
    #[test]
    fn sharing_widens_the_records_of_granted_actions_only() {
        let o = org();
        let mut rep1 = o.snapshot(o.rep1, &[o.rep], &[o.east]);
        let shared = Uuid::from_u128(0x5a);
        rep1.shares = vec![ShareRow {
            record_id: shared,
            edit: false,
        }];
        rep1.sharing_rules = vec![SharingRuleRow {
            edit: true,
            departments: vec![o.north],
            field: None,
            equals: None,
        }];
        let their_lead = RecordRef {
            id: Some(shared),
            ..record(o.intern, o.service)
        };
        let north_lead = record(o.intern, o.north);
        assert!(
            check(&rep1, Lead, Read, Some(&their_lead)).allowed,
            "shared for reading"
        );
        assert!(
            check(&rep1, Lead, Read, Some(&north_lead)).allowed,
            "a department rule (edit reaches reading too)"
        );
        assert!(
            !check(&rep1, Lead, Update, Some(&north_lead)).allowed,
            "reps have no update grant on leads: an edit rule gives none"
        );
        assert!(
            !check(&rep1, Lead, Delete, Some(&north_lead)).allowed,
            "no delete grant"
        );
        let compiled = compile(&rep1, Lead, Read);
        assert!(compiled.scope.record_ids.contains(&shared));
        assert!(compiled.scope.department_ids.contains(&o.north));

        // Without any grant for the action, sharing gives nothing.
        let mut intern = o.snapshot(o.intern, &[], &[o.east]);
        intern.shares = rep1.shares.clone();
        intern.sharing_rules = rep1.sharing_rules.clone();
        assert_eq!(
            check(&intern, Lead, Read, Some(&their_lead)).reason,
            Reason::NoGrant
        );
        assert!(compile(&intern, Lead, Read).scope.is_empty());

        // A condition matches by attribute.
        let mut by_grade = o.snapshot(o.rep1, &[o.rep], &[o.east]);
        by_grade.sharing_rules = vec![SharingRuleRow {
            edit: false,
            departments: vec![],
            field: Some("grade".into()),
            equals: Some("A".into()),
        }];
        let mut graded = record(o.intern, o.service);
        graded.attributes.insert("grade".into(), "A".into());
        assert!(check(&by_grade, Lead, Read, Some(&graded)).allowed);
        graded.attributes.insert("grade".into(), "B".into());
        assert!(!check(&by_grade, Lead, Read, Some(&graded)).allowed);
    }

    #[test]
    fn lead_read_matrix() {
        let o = org();
        let users = [
            (
                "mia: manager in Sales",
                o.snapshot(o.mia, &[o.manager], &[o.sales]),
            ),
            ("rep1: rep in East", o.snapshot(o.rep1, &[o.rep], &[o.east])),
            (
                "boss: auditor in HQ",
                o.snapshot(o.boss, &[o.auditor], &[o.hq]),
            ),
            (
                "rep2: agent in Service",
                o.snapshot(o.rep2, &[o.agent], &[o.service]),
            ),
            ("intern: no roles", o.snapshot(o.intern, &[], &[o.east])),
        ];
        let leads = [
            ("mia's, Sales", record(o.mia, o.sales)),
            ("rep1's, East", record(o.rep1, o.east)),
            ("intern's, North", record(o.intern, o.north)),
            ("boss's, HQ", record(o.boss, o.hq)),
            ("rep2's, Service", record(o.rep2, o.service)),
            ("nobody's, nowhere", RecordRef::default()),
        ];
        use Reason::*;
        #[rustfmt::skip]
        let expected = [
            //  mia's       rep1's      intern's    boss's      rep2's      nobody's
            [Granted,    Granted,    Granted,    OutOfScope, OutOfScope, OutOfScope], // mia
            [OutOfScope, Granted,    OutOfScope, OutOfScope, OutOfScope, OutOfScope], // rep1
            [Granted,    Granted,    Granted,    Granted,    Granted,    Granted   ], // boss
            [NoGrant,    NoGrant,    NoGrant,    NoGrant,    NoGrant,    NoGrant   ], // rep2
            [NoGrant,    NoGrant,    NoGrant,    NoGrant,    NoGrant,    NoGrant   ], // intern
        ];
        for ((who, s), row) in users.iter().zip(expected) {
            let compiled = compile(s, Lead, Read);
            for ((what, lead), want) in leads.iter().zip(row) {
                let got = check(s, Lead, Read, Some(lead));
                assert_eq!(got.reason, want, "{who} reading {what}");
                assert_eq!(got.allowed, want == Granted, "{who} reading {what}");
                // Check and CompileScope agree on every cell.
                assert_eq!(compiled.scope.covers(lead), got.allowed, "{who} / {what}");
                let e = explain(s, Lead, Read, Some(lead));
                assert_eq!((e.allowed, e.reason), (got.allowed, got.reason));
                assert_eq!(e.compiled, compiled);
            }
        }
    }

    #[test]
    fn explain_names_the_grants_and_the_reason() {
        let o = org();
        let s = o.snapshot(o.rep1, &[o.rep], &[o.east]);
        let e = explain(&s, Lead, Read, Some(&record(o.rep2, o.east)));
        assert_eq!(e.reason, Reason::OutOfScope);
        assert_eq!(
            e.roles,
            [RoleRef {
                id: o.rep,
                name: "rep".into()
            }]
        );
        assert_eq!(e.grants.len(), 1);
        assert!(!e.grants[0].covers_record);
        assert_eq!(
            e.summary,
            "denied: the record is outside every scope granted for read on lead: role rep grants own"
        );
        let e = explain(&s, Ticket, Read, None);
        assert_eq!(e.reason, Reason::NoGrant);
        assert_eq!(
            e.summary,
            "denied: none of the user's roles (rep) grants read on ticket"
        );
        let e = explain(&o.snapshot(o.rep1, &[], &[]), Ticket, Read, None);
        assert_eq!(
            e.summary,
            "denied: the user holds no roles, so nothing grants read on ticket"
        );
        // Granted by two roles: both named, only those that cover the record.
        let s = o.snapshot(o.mia, &[o.manager, o.auditor], &[o.sales]);
        let e = explain(&s, Lead, Read, Some(&record(o.boss, o.hq)));
        assert!(e.allowed);
        assert_eq!(e.summary, "allowed: role auditor grants all");
        assert_eq!(
            e.grants.len(),
            3,
            "auditor all, manager dept+children, rep own"
        );
        let covering: Vec<_> = e.grants.iter().filter(|g| g.covers_record).collect();
        assert_eq!(covering.len(), 1);
    }

    #[test]
    fn disabled_and_unknown_users_get_nothing() {
        let o = org();
        for (state, reason, summary) in [
            (
                UserState::Disabled,
                Reason::UserDisabled,
                "denied: the user is disabled",
            ),
            (
                UserState::Unknown,
                Reason::UnknownUser,
                "denied: no such user",
            ),
        ] {
            let mut s = o.snapshot(o.boss, &[o.auditor, o.manager], &[o.hq]);
            s.state = state;
            for resource in Resource::WELL_KNOWN {
                for action in Action::ALL {
                    let d = check(&s, *resource, *action, None);
                    assert_eq!((d.allowed, d.reason), (false, reason));
                    let c = compile(&s, *resource, *action);
                    assert!(c.scope.is_empty() && c.fields.is_empty());
                    assert_eq!(c.permission_version, 42);
                }
            }
            let e = explain(&s, Lead, Read, Some(&record(o.boss, o.hq)));
            assert_eq!(e.summary, summary);
            assert!(
                !e.grants.is_empty(),
                "what would have applied is still shown"
            );
        }
    }

    #[test]
    fn no_roles_means_no_access_anywhere() {
        let o = org();
        let s = o.snapshot(o.boss, &[], &[o.hq]);
        for resource in Resource::WELL_KNOWN {
            for action in Action::ALL {
                assert_eq!(check(&s, *resource, *action, None).reason, Reason::NoGrant);
                assert!(compile(&s, *resource, *action).scope.is_empty());
            }
        }
    }

    #[test]
    fn field_rules_merge_most_permissive_across_granting_roles() {
        let o = org();
        let access = |visibility, mask| FieldAccess { visibility, mask };
        // rep alone: phone read-only, ssn hidden.
        let s = o.snapshot(o.rep1, &[o.rep], &[o.east]);
        let f = compile(&s, Contact, Read).fields;
        assert_eq!(f["phone"], access(Visibility::ReadOnly, None));
        assert_eq!(f["ssn"], access(Visibility::Hidden, None));
        // manager overrides the inherited ssn rule (nearest wins), keeps phone from rep.
        let s = o.snapshot(o.mia, &[o.manager], &[o.sales]);
        let f = compile(&s, Contact, Read).fields;
        assert_eq!(
            f["ssn"],
            access(Visibility::ReadOnly, Some(MaskKind::IdNumber))
        );
        assert_eq!(f["phone"], access(Visibility::ReadOnly, None));
        // agent + auditor: phone masked by both → masked; email masked by auditor, unrestricted
        // for agent → unrestricted (not listed); notes hidden by agent only → editable.
        let s = o.snapshot(o.rep2, &[o.agent, o.auditor], &[o.service]);
        let f = compile(&s, Contact, Read).fields;
        assert_eq!(
            f.into_iter().collect::<Vec<_>>(),
            [(
                "phone".to_string(),
                access(Visibility::ReadOnly, Some(MaskKind::Phone))
            )]
        );
        // rep + agent: rep's unmasked read-only beats agent's masked one.
        let s = o.snapshot(o.rep2, &[o.rep, o.agent], &[o.service]);
        let f = compile(&s, Contact, Read).fields;
        assert_eq!(f["phone"], access(Visibility::ReadOnly, None));
        // rep hides ssn, agent has no rule for it: unrestricted for agent, so unrestricted.
        assert!(!f.contains_key("ssn") && !f.contains_key("notes"));
    }

    #[test]
    fn field_rules_only_count_roles_that_grant_the_action() {
        let o = org();
        // rep2 holds agent (ticket read, phone masked) and rep (no ticket grant, no ticket
        // rules): rep must not unmask the ticket's phone.
        let s = o.snapshot(o.rep2, &[o.rep, o.agent], &[o.service]);
        let f = compile(&s, Ticket, Read).fields;
        assert_eq!(
            f["phone"],
            FieldAccess {
                visibility: Visibility::ReadOnly,
                mask: Some(MaskKind::Phone)
            }
        );
    }

    #[test]
    fn most_permissive_is_a_lattice_join() {
        let all: Vec<FieldAccess> = [
            (Visibility::Hidden, None),
            (Visibility::ReadOnly, Some(MaskKind::Phone)),
            (Visibility::ReadOnly, Some(MaskKind::Email)),
            (Visibility::ReadOnly, None),
            (Visibility::Editable, None),
        ]
        .into_iter()
        .map(|(visibility, mask)| FieldAccess { visibility, mask })
        .collect();
        for &a in &all {
            assert_eq!(a.most_permissive(a), a, "idempotent");
            for &b in &all {
                assert_eq!(a.most_permissive(b), b.most_permissive(a), "commutative");
                for &c in &all {
                    assert_eq!(
                        a.most_permissive(b).most_permissive(c),
                        a.most_permissive(b.most_permissive(c)),
                        "associative"
                    );
                }
            }
            assert_eq!(
                a.most_permissive(FieldAccess::UNRESTRICTED),
                FieldAccess::UNRESTRICTED
            );
        }
    }

    /// Exhaustive over single grants: for every scope, the compiled scope covers exactly the
    /// records the table in the module docs says.
    #[test]
    fn each_scope_covers_what_the_docs_say() {
        let o = org();
        let people = [o.boss, o.mia, o.rep1, o.rep2, o.intern];
        let places = [o.hq, o.sales, o.east, o.north, o.service];
        for scope in DataScope::ALL {
            let mut s = o.snapshot(o.mia, &[o.agent], &[o.sales]);
            s.grants = vec![GrantRow {
                role_id: o.agent,
                resource: Opportunity,
                action: Approve,
                scope: *scope,
            }];
            let c = compile(&s, Opportunity, Approve);
            for owner in people {
                for department in places {
                    let r = record(owner, department);
                    let want = match scope {
                        Own => owner == o.mia,
                        OwnAndSubordinates => [o.mia, o.rep1, o.rep2, o.intern].contains(&owner),
                        Department => owner == o.mia || department == o.sales,
                        DepartmentAndChildren => {
                            owner == o.mia || [o.sales, o.east, o.north].contains(&department)
                        }
                        All => true,
                    };
                    assert_eq!(c.scope.covers(&r), want, "{scope}: {owner} in {department}");
                    assert_eq!(check(&s, Opportunity, Approve, Some(&r)).allowed, want);
                }
            }
            // A record with neither owner nor department: only `all`.
            assert_eq!(c.scope.covers(&RecordRef::default()), *scope == All);
        }
    }

    #[test]
    fn unknown_assigned_roles_are_ignored() {
        let o = org();
        let s = o.snapshot(o.rep1, &[id(999), o.rep], &[o.east]);
        assert_eq!(s.held_roles().len(), 1);
        assert!(check(&s, Lead, Read, None).allowed);
    }
}
