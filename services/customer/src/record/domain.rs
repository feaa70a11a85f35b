//! What every customer record is: its lifecycle status and grade, the built-in fields accounts
//! and contacts have alike, and the names of the fields a write sets. No I/O.

use crm_record::Field;
use serde::{Deserialize, Serialize};

pub use crm_record::event::Changes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    Prospect,
    Active,
    Inactive,
    Churned,
}

impl LifecycleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prospect => "prospect",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Churned => "churned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Prospect, Self::Active, Self::Inactive, Self::Churned]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::A, Self::B, Self::C, Self::D]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Fields accounts and contacts share beyond the system ones (each kind's own list,
/// `account_fields` / `contact_fields`, re-exports them).
pub mod shared_fields {
    use crm_record::field::{Field, FieldKind};

    pub const EMAIL: Field = Field::new("email", FieldKind::Email);
    pub const PHONE: Field = Field::new("phone", FieldKind::Phone);
    pub const TAGS: Field = Field::new("tags", FieldKind::TextList);
    pub const LIFECYCLE_STATUS: Field = Field::choice(
        "lifecycle_status",
        &["prospect", "active", "inactive", "churned"],
    );
    pub const GRADE: Field = Field::choice("grade", &["A", "B", "C", "D"]);
}

/// The names of the fields whose flag is set (what a new record or a patch writes, for the
/// writable checks of field rules).
pub fn names(fields: &[(Field, bool)]) -> Vec<String> {
    fields
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| f.name().to_string())
        .collect()
}

/// Records with custom fields (accounts, contacts): their values, for the schema's view
/// (deactivated fields out of sight). Follow-ups have none.
pub trait Custom {
    fn custom_mut(&mut self) -> Option<&mut crm_fields::Values>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options conditions check values against are exactly the stored forms.
    #[test]
    fn choice_fields_list_every_stored_value() {
        let statuses = shared_fields::LIFECYCLE_STATUS.options();
        assert!(statuses.iter().all(|s| LifecycleStatus::parse(s).is_some()));
        assert_eq!(statuses.len(), 4);
        let grades = shared_fields::GRADE.options();
        assert!(grades.iter().all(|g| Grade::parse(g).is_some()));
        assert_eq!(grades.len(), 4);
        let kinds = crate::follow_ups::domain::follow_up_fields::KIND.options();
        let all: Vec<&str> = crate::follow_ups::domain::FollowUpKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(kinds, all.as_slice());
    }
}
