//! What the registry holds and what a registered field allows. No I/O.

use chrono::{DateTime, Utc};
use crm_record::FieldKind;

use crate::org::domain::MaskKind;

/// A field as registered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegisteredField {
    pub name: String,
    pub kind: String,
    pub governed: bool,
    pub condition: bool,
    pub built_in: bool,
    pub active: bool,
}

/// A resource with its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredResource {
    pub name: String,
    pub owner: String,
    pub declared_at: Option<DateTime<Utc>>,
    pub fields: Vec<RegisteredField>,
}

/// Why a field rule may not name a field (`None`: it may). `field` is `None` when the resource
/// has no such field.
pub fn rule_refusal(
    resource: &str,
    name: &str,
    field: Option<&RegisteredField>,
    mask: Option<MaskKind>,
) -> Option<String> {
    let Some(field) = field else {
        return Some(format!("{resource} has no field {name:?}"));
    };
    if !field.active {
        return Some(format!(
            "{resource}.{name} is no longer declared by its service"
        ));
    }
    if !field.governed {
        return Some(format!(
            "{resource}.{name} is not governed by field rules (ids, versions, owner, department and timestamps never are)"
        ));
    }
    let maskable = FieldKind::parse(&field.kind).is_some_and(FieldKind::maskable);
    if mask.is_some() && !maskable {
        return Some(format!(
            "{resource}.{name} holds {} values, which cannot be masked",
            field.kind
        ));
    }
    None
}

/// Why a sharing rule's condition may not test a field (`None`: it may).
pub fn condition_refusal(
    resource: &str,
    name: &str,
    field: Option<&RegisteredField>,
) -> Option<String> {
    match field {
        None => Some(format!("{resource} has no field {name:?}")),
        Some(f) if !f.active => Some(format!(
            "{resource}.{name} is no longer declared by its service"
        )),
        Some(f) if !f.condition => Some(format!(
            "{resource}.{name} cannot be tested by a sharing rule"
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: &str, governed: bool, condition: bool, active: bool) -> RegisteredField {
        RegisteredField {
            name: "f".into(),
            kind: kind.into(),
            governed,
            condition,
            built_in: true,
            active,
        }
    }

    #[test]
    fn rules_name_active_governed_fields_and_mask_only_text() {
        let phone = field("phone", true, false, true);
        assert_eq!(
            rule_refusal("account", "phone", Some(&phone), Some(MaskKind::Phone)),
            None
        );
        assert!(
            rule_refusal("account", "nope", None, None)
                .unwrap()
                .contains("no field")
        );
        let id = field("reference", false, false, true);
        assert!(
            rule_refusal("account", "id", Some(&id), None)
                .unwrap()
                .contains("not governed")
        );
        let grade = field("choice", true, true, true);
        assert_eq!(rule_refusal("account", "grade", Some(&grade), None), None);
        assert!(
            rule_refusal("account", "grade", Some(&grade), Some(MaskKind::Phone))
                .unwrap()
                .contains("cannot be masked")
        );
        let gone = field("text", true, true, false);
        assert!(
            rule_refusal("account", "old", Some(&gone), None)
                .unwrap()
                .contains("no longer")
        );
    }

    #[test]
    fn conditions_test_fields_declared_for_them() {
        let grade = field("choice", true, true, true);
        assert_eq!(condition_refusal("account", "grade", Some(&grade)), None);
        let phone = field("phone", true, false, true);
        assert!(condition_refusal("account", "phone", Some(&phone)).is_some());
        assert!(condition_refusal("account", "x", None).is_some());
    }
}
