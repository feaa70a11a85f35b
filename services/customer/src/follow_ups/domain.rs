//! Follow-ups as values: the record ([`FollowUp`]), a new one ([`NewFollowUp`]) and a change to
//! one ([`FollowUpPatch`]), their kind ([`FollowUpKind`]), their built-in fields
//! ([`follow_up_fields`]) and their rules: what a patch changes, when things may happen, what
//! field rules leave visible, where a follow-up sits in the organisation ([`Record`]). No I/O.

use chrono::{DateTime, Duration, Utc};
use crm_access::{Resource, Scope};
use crm_record::event::record_change;
use crm_record::{Place, Record, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::domain::{Changes, names};
use crate::validation::Violations;

/// What kind of contact with the customer it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    Call,
    Meeting,
    Visit,
    Note,
    Email,
}

impl FollowUpKind {
    pub const ALL: [FollowUpKind; 5] = [
        Self::Call,
        Self::Meeting,
        Self::Visit,
        Self::Note,
        Self::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Meeting => "meeting",
            Self::Visit => "visit",
            Self::Note => "note",
            Self::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub id: Uuid,
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub kind: FollowUpKind,
    pub subject: String,
    pub content: Option<String>,
    pub outcome: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub next_follow_up_at: Option<DateTime<Utc>>,
    pub owner_id: Uuid,
    pub department_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated new follow-up.
#[derive(Debug, Clone)]
pub struct NewFollowUp {
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub kind: FollowUpKind,
    pub subject: String,
    pub content: Option<String>,
    pub outcome: Option<String>,
    /// `None`: when it is recorded.
    pub occurred_at: Option<DateTime<Utc>>,
    pub next_follow_up_at: Option<DateTime<Utc>>,
    pub owner_id: Uuid,
    /// `None`: the caller's primary department when the caller owns the record, else none.
    pub department_id: Option<Uuid>,
}

/// A validated change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct FollowUpPatch {
    pub contact_id: Option<Option<Uuid>>,
    pub kind: Option<FollowUpKind>,
    pub subject: Option<String>,
    pub content: Option<Option<String>>,
    pub outcome: Option<Option<String>>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub next_follow_up_at: Option<Option<DateTime<Utc>>>,
    pub owner_id: Option<Uuid>,
    pub department_id: Option<Option<Uuid>>,
}

/// The built-in fields of follow-ups, by name (see `account_fields`).
pub mod follow_up_fields {
    pub use crm_record::field::system::*;
    use crm_record::field::{Field, FieldKind};

    pub const ACCOUNT_ID: Field = Field::new("account_id", FieldKind::Reference);
    pub const CONTACT_ID: Field = Field::new("contact_id", FieldKind::Reference);
    pub const KIND: Field = Field::choice("kind", &["call", "meeting", "visit", "note", "email"]);
    pub const SUBJECT: Field = Field::new("subject", FieldKind::Text);
    pub const CONTENT: Field = Field::new("content", FieldKind::Text);
    pub const OUTCOME: Field = Field::new("outcome", FieldKind::Text);
    pub const OCCURRED_AT: Field = Field::new("occurred_at", FieldKind::Timestamp);
    pub const NEXT_FOLLOW_UP_AT: Field = Field::new("next_follow_up_at", FieldKind::Timestamp);

    /// In the order of the record's JSON.
    #[rustfmt::skip]
    pub const ALL: &[Field] = &[
        ID, ACCOUNT_ID, CONTACT_ID, KIND, SUBJECT, CONTENT, OUTCOME, OCCURRED_AT,
        NEXT_FOLLOW_UP_AT, OWNER_ID, DEPARTMENT_ID, VERSION, CREATED_AT, UPDATED_AT,
    ];
}

/// How far ahead of the server's clock `occurred_at` may be: devices' clocks drift, but a
/// follow-up that has not happened yet is a plan, which is what `next_follow_up_at` is for.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The time rules of a follow-up, whichever write made it: it did not happen in the future, and
/// its next follow-up comes after it.
pub fn check_times(
    v: &mut Violations,
    occurred_at: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) {
    if occurred_at > now + CLOCK_SKEW {
        v.add("occurred_at", "must not be in the future");
    }
    if next.is_some_and(|n| n <= occurred_at) {
        v.add(
            "next_follow_up_at",
            "must be after occurred_at (when the follow-up happened)",
        );
    }
}

impl FollowUp {
    /// Applies `patch`, returning the fields that really changed.
    pub fn apply(&mut self, patch: FollowUpPatch) -> Changes {
        let mut c = Changes::new();
        macro_rules! set {
            ($name:expr, $field:ident) => {
                if let Some(v) = patch.$field {
                    record_change(&mut c, $name.name(), &self.$field, &v);
                    self.$field = v;
                }
            };
        }
        set!(follow_up_fields::CONTACT_ID, contact_id);
        set!(follow_up_fields::KIND, kind);
        set!(follow_up_fields::SUBJECT, subject);
        set!(follow_up_fields::CONTENT, content);
        set!(follow_up_fields::OUTCOME, outcome);
        set!(follow_up_fields::OCCURRED_AT, occurred_at);
        set!(follow_up_fields::NEXT_FOLLOW_UP_AT, next_follow_up_at);
        set!(follow_up_fields::OWNER_ID, owner_id);
        set!(follow_up_fields::DEPARTMENT_ID, department_id);
        c
    }

    /// Field rules (`crm_access::Scope`): the follow-up as the caller may see it.
    pub fn redact(&mut self, scope: &Scope) {
        use follow_up_fields as f;
        f::SUBJECT.show_required(scope, &mut self.subject);
        f::CONTENT.show(scope, &mut self.content);
        f::OUTCOME.show(scope, &mut self.outcome);
        // Not free text: hidden or shown, never masked.
        f::CONTACT_ID.hide(scope, &mut self.contact_id);
        f::NEXT_FOLLOW_UP_AT.hide(scope, &mut self.next_follow_up_at);
    }
}

impl NewFollowUp {
    /// The fields this new record gives a value (account, kind, subject and time always).
    pub fn fields_set(&self) -> Vec<String> {
        use follow_up_fields as f;
        names(&[
            (f::ACCOUNT_ID, true),
            (f::CONTACT_ID, self.contact_id.is_some()),
            (f::KIND, true),
            (f::SUBJECT, true),
            (f::CONTENT, self.content.is_some()),
            (f::OUTCOME, self.outcome.is_some()),
            (f::OCCURRED_AT, true),
            (f::NEXT_FOLLOW_UP_AT, self.next_follow_up_at.is_some()),
        ])
    }
}

impl FollowUpPatch {
    /// The fields this patch writes (ownership is checked apart, as an assignment).
    pub fn fields_set(&self) -> Vec<String> {
        use follow_up_fields as f;
        names(&[
            (f::CONTACT_ID, self.contact_id.is_some()),
            (f::KIND, self.kind.is_some()),
            (f::SUBJECT, self.subject.is_some()),
            (f::CONTENT, self.content.is_some()),
            (f::OUTCOME, self.outcome.is_some()),
            (f::OCCURRED_AT, self.occurred_at.is_some()),
            (f::NEXT_FOLLOW_UP_AT, self.next_follow_up_at.is_some()),
        ])
    }
}

impl crate::record::domain::Custom for FollowUp {
    fn custom_mut(&mut self) -> Option<&mut crm_fields::Values> {
        None
    }
}

impl Record for FollowUp {
    const KIND: &'static str = "follow_up";
    const RESOURCE: Resource = Resource::named("follow_up");
    const TABLE: &'static Table = &super::store::FOLLOW_UP_TABLE;
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn stamp(&mut self, version: i64, at: DateTime<Utc>) {
        self.version = version;
        self.updated_at = at;
    }
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        use follow_up_fields as f;
        match Self::TABLE.field(field)? {
            f::KIND => Some(self.kind.as_str().to_string()),
            f::OUTCOME => self.outcome.clone(),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        FollowUp::redact(self, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow_up() -> FollowUp {
        let now = Utc::now();
        FollowUp {
            id: Uuid::nil(),
            account_id: Uuid::nil(),
            contact_id: None,
            kind: FollowUpKind::Visit,
            subject: "Site visit".into(),
            content: None,
            outcome: None,
            occurred_at: now,
            next_follow_up_at: None,
            owner_id: Uuid::nil(),
            department_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// A struct field renamed without its `Field` constant (or the other way round) fails here.
    #[test]
    fn the_field_constants_name_every_key_of_the_record() {
        crm_record::field::check_fields(
            follow_up_fields::ALL,
            &serde_json::to_value(follow_up()).unwrap(),
        )
        .unwrap();
        for kind in FollowUpKind::ALL {
            assert_eq!(FollowUpKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    }

    #[test]
    fn a_follow_up_happened_already_and_its_next_one_comes_after_it() {
        let now = Utc::now();
        let errors = |occurred: DateTime<Utc>, next: Option<DateTime<Utc>>| {
            let mut v = Violations::default();
            check_times(&mut v, occurred, next, now);
            match v.into_result() {
                Ok(()) => vec![],
                Err(e) => e.violations.into_iter().map(|v| v.field).collect(),
            }
        };
        assert!(errors(now - Duration::days(1), Some(now + Duration::days(7))).is_empty());
        // A clock a minute ahead is not the future.
        assert!(errors(now + Duration::minutes(1), None).is_empty());
        assert_eq!(errors(now + Duration::hours(2), None), ["occurred_at"]);
        assert_eq!(
            errors(now, Some(now - Duration::hours(1))),
            ["next_follow_up_at"]
        );
    }

    #[test]
    fn a_patch_reports_only_what_really_changed() {
        let mut f = follow_up();
        let changes = f.apply(FollowUpPatch {
            subject: Some("Site visit".into()),
            outcome: Some(Some("Signed the NDA".into())),
            ..Default::default()
        });
        assert_eq!(changes.keys().collect::<Vec<_>>(), ["outcome"]);
        assert_eq!(f.outcome.as_deref(), Some("Signed the NDA"));
    }
}
