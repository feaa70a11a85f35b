//! The organisation as values: departments, roles with their grants and field rules, a user's
//! place ([`UserOrg`]), the validation of their input — and the vocabulary every decision is
//! written in ([`Resource`] from `crm_access`, [`Action`], [`DataScope`], [`Visibility`], [`MaskKind`]), used by
//! [`crate::access`], [`crate::sharing`] and [`crate::clients`] as well. Nothing here knows about
//! gRPC or SQL. The enums' `as_str` names are what the database stores and events carry (they
//! equal the serde names, which a test keeps true).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validation::Violations;

/// A closed set of names stored as text: `as_str`, `parse` and `ALL` in one place, so the three
/// cannot disagree.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The kinds of records grants are about: names in the registry, declared by the services that
/// own them (one type for every service: `crm_access::Resource`).
pub use crm_access::Resource;

named_enum! {
    Action {
        Read = "read",
        Create = "create",
        Update = "update",
        Delete = "delete",
        Export = "export",
        Assign = "assign",
        Approve = "approve",
    }
}

named_enum! {
    /// Which records a grant covers, relative to the user; see [`crate::access::domain`]. Declared
    /// from narrow to wide, but only partly ordered: `own_and_subordinates` and `department` do
    /// not contain each other, which is why several grants are united, not ranked.
    DataScope {
        Own = "own",
        OwnAndSubordinates = "own_and_subordinates",
        Department = "department",
        DepartmentAndChildren = "department_and_children",
        All = "all",
    }
}

named_enum! {
    /// Declared from least to most permissive: the derived `Ord` is the merge order.
    Visibility {
        Hidden = "hidden",
        ReadOnly = "read_only",
        Editable = "editable",
    }
}

named_enum! {
    /// Applied by owning services: [`crm_access::mask::apply_mask`].
    MaskKind {
        Phone = "phone",
        Email = "email",
        IdNumber = "id_number",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub id: Uuid,
    pub name: String,
    /// `None` for a root.
    pub parent_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub resource: Resource,
    pub action: Action,
    pub scope: DataScope,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FieldRule {
    pub resource: Resource,
    pub field: String,
    pub visibility: Visibility,
    /// Only with [`Visibility::ReadOnly`] (validated here, and a CHECK in the schema).
    pub mask: Option<MaskKind>,
}

/// A role with its own grants and field rules (not the inherited ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub parent_role_id: Option<Uuid>,
    /// Sorted.
    pub grants: Vec<Grant>,
    /// Sorted.
    pub field_rules: Vec<FieldRule>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's place in the organisation. `version` is the user's `org_version`: separate from
/// the account's `version`, so organisation changes never race with sign-in (which compares
/// the account version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserOrg {
    pub user_id: Uuid,
    pub primary_department_id: Option<Uuid>,
    /// Every department, the primary one included; sorted.
    pub department_ids: Vec<Uuid>,
    pub manager_id: Option<Uuid>,
    /// Sorted.
    pub role_ids: Vec<Uuid>,
    pub version: i64,
}

pub const MAX_DEPARTMENT_NAME: usize = 100;
pub const MAX_ROLE_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_FIELD_NAME: usize = 64;
/// A user's departments, the primary one included.
pub const MAX_MEMBERSHIPS: usize = 50;

/// A validated new department.
#[derive(Debug, Clone)]
pub struct NewDepartment {
    pub name: String,
    pub parent_id: Option<Uuid>,
}

/// A validated change; `None` leaves a field as it is. `parent_id: Some(None)` makes it a root.
#[derive(Debug, Clone, Default)]
pub struct DepartmentPatch {
    pub name: Option<String>,
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone)]
pub struct NewRole {
    pub name: String,
    pub description: Option<String>,
    pub parent_role_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub parent_role_id: Option<Option<Uuid>>,
}

/// A user's validated memberships: a primary department whenever there are any, the others
/// without duplicates and without the primary one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub primary: Option<Uuid>,
    pub others: Vec<Uuid>,
}

impl Memberships {
    /// Every department, sorted (as [`UserOrg::department_ids`]).
    pub fn all(&self) -> Vec<Uuid> {
        let set: BTreeSet<Uuid> = self.primary.iter().chain(&self.others).copied().collect();
        set.into_iter().collect()
    }
}

/// Field changes of an update, `{field: {old, new}}`, as carried by `…updated` events.
pub type Changes = serde_json::Map<String, serde_json::Value>;

fn record_change<T: Serialize + PartialEq>(changes: &mut Changes, field: &str, old: &T, new: &T) {
    if old != new {
        changes.insert(
            field.to_string(),
            serde_json::json!({ "old": old, "new": new }),
        );
    }
}

impl Department {
    /// Applies `patch`, returning the fields that really changed.
    pub fn apply(&mut self, patch: DepartmentPatch) -> Changes {
        let mut c = Changes::new();
        if let Some(name) = patch.name {
            record_change(&mut c, "name", &self.name, &name);
            self.name = name;
        }
        if let Some(parent_id) = patch.parent_id {
            record_change(&mut c, "parent_id", &self.parent_id, &parent_id);
            self.parent_id = parent_id;
        }
        c
    }
}

impl Role {
    pub fn apply(&mut self, patch: RolePatch) -> Changes {
        let mut c = Changes::new();
        if let Some(name) = patch.name {
            record_change(&mut c, "name", &self.name, &name);
            self.name = name;
        }
        if let Some(description) = patch.description {
            record_change(&mut c, "description", &self.description, &description);
            self.description = description;
        }
        if let Some(parent) = patch.parent_role_id {
            record_change(&mut c, "parent_role_id", &self.parent_role_id, &parent);
            self.parent_role_id = parent;
        }
        c
    }
}

/// A role key: lower-cased, 2 to 64 of `a-z 0-9 _`, starting with a letter.
pub fn role_name(v: &mut Violations, field: &str, value: &str) -> String {
    let name = value.trim().to_lowercase();
    if !is_key(&name, 2, MAX_ROLE_NAME) {
        v.add(
            field,
            format!("must be 2 to {MAX_ROLE_NAME} of a-z, 0-9 and _, starting with a letter"),
        );
    }
    name
}

/// A field name as the owning service spells it: 1 to 64 of `a-z 0-9 _`, starting with a
/// letter; a custom field is `custom.<such a name>` (crm-fields). Checked against the
/// resource's fields by the registry, not here.
pub fn field_name(v: &mut Violations, field: &str, value: &str) -> String {
    let name = value.trim().to_string();
    let key = name.strip_prefix("custom.").unwrap_or(&name);
    if !is_key(key, 1, MAX_FIELD_NAME) {
        v.add(
            field,
            format!("must be 1 to {MAX_FIELD_NAME} of a-z, 0-9 and _, starting with a letter (custom fields: custom.<key>)"),
        );
    }
    name
}

/// A rule's visibility and mask together: a mask only makes sense on a field that is shown
/// but cannot be changed (an editable masked field would be overwritten blind).
pub fn field_rule(
    v: &mut Violations,
    path: &str,
    resource: Resource,
    field: &str,
    visibility: Option<Visibility>,
    mask: Option<MaskKind>,
) -> FieldRule {
    let field = field_name(v, &format!("{path}field"), field);
    if mask.is_some() && visibility.is_some_and(|x| x != Visibility::ReadOnly) {
        v.add(
            &format!("{path}mask"),
            "is only allowed with FIELD_VISIBILITY_READ_ONLY",
        );
    }
    FieldRule {
        resource,
        field,
        visibility: visibility.unwrap_or(Visibility::Hidden),
        mask,
    }
}

/// Memberships from the wire: `primary` may be empty only when `others` is.
pub fn memberships(v: &mut Violations, primary: &str, others: &[String]) -> Memberships {
    let primary_id = v.optional_uuid("primary_department_id", primary);
    if primary.trim().is_empty() && !others.is_empty() {
        v.add(
            "primary_department_id",
            "is required when the user is in other departments",
        );
    }
    if others.len() + 1 > MAX_MEMBERSHIPS {
        v.add(
            "other_department_ids",
            format!("at most {} departments", MAX_MEMBERSHIPS - 1),
        );
        return Memberships {
            primary: primary_id,
            others: Vec::new(),
        };
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(others.len());
    for (i, raw) in others.iter().enumerate() {
        if let Some(id) = v.uuid(&format!("other_department_ids[{i}]"), raw)
            && Some(id) != primary_id
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out.sort();
    Memberships {
        primary: primary_id,
        others: out,
    }
}

/// `min..=max` characters of `a-z 0-9 _`, starting with a letter.
fn is_key(v: &str, min: usize, max: usize) -> bool {
    let len = v.chars().count();
    (min..=max).contains(&len)
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_equal_serde_names() {
        fn check<T: Serialize + Copy>(all: &[T], name: impl Fn(T) -> &'static str) {
            for v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(*v));
            }
        }
        check(Action::ALL, Action::as_str);
        check(DataScope::ALL, DataScope::as_str);
        check(Visibility::ALL, Visibility::as_str);
        check(MaskKind::ALL, MaskKind::as_str);
        assert_eq!(
            DataScope::parse("own_and_subordinates"),
            Some(DataScope::OwnAndSubordinates)
        );
        assert_eq!(Action::parse("fly"), None);
    }

    #[test]
    fn visibility_orders_from_least_to_most_permissive() {
        assert!(Visibility::Hidden < Visibility::ReadOnly);
        assert!(Visibility::ReadOnly < Visibility::Editable);
    }

    #[test]
    fn role_and_field_names() {
        let mut v = Violations::default();
        assert_eq!(role_name(&mut v, "name", " Sales_Rep "), "sales_rep");
        assert_eq!(field_name(&mut v, "field", "id_number"), "id_number");
        assert!(v.0.is_empty());
        for bad in [
            "",
            "a",
            "1abc",
            "has space",
            "dash-ed",
            "ümlaut",
            &"a".repeat(65),
        ] {
            let mut v = Violations::default();
            role_name(&mut v, "name", bad);
            assert_eq!(v.0.len(), 1, "{bad:?}");
        }
        for bad in ["", "Phone", "_x", "a.b"] {
            let mut v = Violations::default();
            field_name(&mut v, "field", bad);
            assert_eq!(v.0.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn masks_need_read_only() {
        let mut v = Violations::default();
        field_rule(
            &mut v,
            "rule.",
            Resource::CONTACT,
            "phone",
            Some(Visibility::ReadOnly),
            Some(MaskKind::Phone),
        );
        assert!(v.0.is_empty());
        for visibility in [Visibility::Hidden, Visibility::Editable] {
            let mut v = Violations::default();
            field_rule(
                &mut v,
                "rule.",
                Resource::CONTACT,
                "phone",
                Some(visibility),
                Some(MaskKind::Phone),
            );
            assert_eq!(v.0[0].field, "rule.mask");
        }
    }

    #[test]
    fn memberships_need_a_primary_and_drop_duplicates() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let mut v = Violations::default();
        let m = memberships(
            &mut v,
            &a.to_string(),
            &[b.to_string(), a.to_string(), b.to_string()],
        );
        assert!(v.0.is_empty());
        assert_eq!(m.primary, Some(a));
        assert_eq!(m.others, [b]);
        assert_eq!(m.all(), [a, b]);

        let mut v = Violations::default();
        assert_eq!(memberships(&mut v, "", &[]), Memberships::default());
        assert!(v.0.is_empty(), "no departments at all is fine");

        let mut v = Violations::default();
        memberships(&mut v, "", &[a.to_string(), "nope".into()]);
        let fields: Vec<_> = v.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["primary_department_id", "other_department_ids[1]"]);
    }

    #[test]
    fn patches_report_only_real_changes() {
        let now = Utc::now();
        let mut d = Department {
            id: Uuid::nil(),
            name: "Sales".into(),
            parent_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let parent = Uuid::from_u128(7);
        let c = d.apply(DepartmentPatch {
            name: Some("Sales".into()),
            parent_id: Some(Some(parent)),
        });
        assert_eq!(c.keys().collect::<Vec<_>>(), ["parent_id"]);
        assert_eq!(d.parent_id, Some(parent));
    }
}
