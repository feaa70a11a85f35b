//! The fields a condition (`crm-condition`, ADR 0017) may name on a record of an entity: its
//! built-in fields (`crm_record::Table`) and its active custom fields (`custom.<key>`), as the
//! caller may use them. [`compile`] turns a list's `filter=` text into a typed
//! [`Condition`] or a violation of `filter` that says where and what was expected.
//!
//! A field the caller's rules hide **or mask** cannot be used: a filter answers yes or no for
//! every record, so `phone contains '1380'` would reveal a masked number a digit at a time.

use chrono::{DateTime, Utc};
use crm_access::{Scope, Visibility};
use crm_condition::{Column, Condition, FieldType as Typed, Kind, Lookup};
use crm_errors::{ApiError, FieldViolation};
use crm_record::{FieldKind, Table};

use crate::definition::FieldType;
use crate::values::Schema;

/// What conditions see of one entity for one caller.
pub struct RecordFields<'a> {
    pub table: &'static Table,
    pub custom: &'a Schema,
    pub scope: &'a Scope,
}

impl RecordFields<'_> {
    fn concealed(&self, name: &str) -> bool {
        let access = self.scope.field(name);
        access.visibility == Visibility::Hidden || access.mask.is_some()
    }
}

impl crm_condition::Schema for RecordFields<'_> {
    fn field(&self, name: &str) -> Lookup {
        if let Some(key) = name.strip_prefix("custom.") {
            let Some(d) = self.custom.get(key).filter(|d| d.active) else {
                return Lookup::Unknown;
            };
            if self.concealed(name) {
                return Lookup::Hidden;
            }
            let options = || d.options.iter().map(|o| o.value.clone()).collect();
            let kind = match d.field_type {
                FieldType::Text
                | FieldType::LongText
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url => Kind::Text,
                FieldType::Integer => Kind::Integer,
                FieldType::Decimal | FieldType::Currency => Kind::Decimal,
                FieldType::Date => Kind::Date,
                FieldType::DateTime => Kind::DateTime,
                FieldType::Boolean => Kind::Bool,
                // Deactivated options stay on records: filtering on them finds those records.
                FieldType::Select => Kind::Choice(options()),
                FieldType::MultiSelect => Kind::MultiChoice(options()),
                FieldType::User | FieldType::Department | FieldType::Lookup => Kind::Reference,
            };
            return Lookup::Found(Typed {
                kind,
                column: Column::Custom(key.to_string()),
            });
        }
        let Some(f) = self.table.field(name) else {
            return Lookup::Unknown;
        };
        if f.governed() && self.concealed(name) {
            return Lookup::Hidden;
        }
        let kind = match f.kind() {
            FieldKind::Text | FieldKind::Email | FieldKind::Phone | FieldKind::Url => Kind::Text,
            FieldKind::Choice => Kind::Choice(f.options().iter().map(|o| o.to_string()).collect()),
            FieldKind::TextList => Kind::TextList,
            FieldKind::Reference => Kind::Reference,
            FieldKind::Timestamp => Kind::DateTime,
            FieldKind::Integer => Kind::Integer,
            FieldKind::Date => Kind::Date,
            FieldKind::Decimal => Kind::Decimal,
            FieldKind::Boolean => Kind::Bool,
        };
        Lookup::Found(Typed {
            kind,
            column: Column::Builtin(f.name()),
        })
    }
}

/// `text` as a condition over `fields`, its relative dates resolved in `tz` at `now`; a
/// violation of `filter` (position, expected, found) when it does not parse or type.
pub fn compile(
    text: &str,
    fields: &RecordFields<'_>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<Condition, ApiError> {
    crm_condition::compile(text, fields, tz, now)
        .map_err(|e| ApiError::invalid(vec![FieldViolation::new("filter", e.to_string())]))
}

#[cfg(test)]
mod tests {
    use crm_access::FieldAccess;
    use crm_condition::Schema as _;
    use crm_record::Field;
    use crm_record::field::system;

    use super::*;
    use crate::definition::{Choice, Labels, NewDefinition};

    static TABLE: Table = Table {
        name: "things",
        name_column: "name",
        time_column: None,
        search: &["name"],
        condition_columns: &[],
        fields: &[
            system::ID,
            Field::new("name", FieldKind::Text),
            Field::new("phone", FieldKind::Phone),
            Field::choice("grade", &["A", "B"]),
            system::CREATED_AT,
        ],
    };

    #[test]
    fn hidden_and_masked_fields_cannot_be_filtered_on() {
        let region = NewDefinition {
            key: "region".into(),
            field_type: "select".into(),
            label: Labels {
                zh: "区域".into(),
                en: "Region".into(),
            },
            options: vec![Choice {
                value: "east".into(),
                label: Labels::default(),
                active: true,
            }],
            ..Default::default()
        }
        .check("thing", &[], 0, Utc::now())
        .unwrap();
        let mut old = region.clone();
        old.key = "old".into();
        old.active = false;
        let custom = Schema::new(vec![region, old]);
        let mut scope = Scope::everything();
        scope.fields.insert(
            "phone".into(),
            FieldAccess {
                visibility: Visibility::ReadOnly,
                mask: Some(crm_access::MaskKind::Phone),
            },
        );
        scope.fields.insert(
            "custom.region".into(),
            FieldAccess {
                visibility: Visibility::Hidden,
                mask: None,
            },
        );
        let fields = RecordFields {
            table: &TABLE,
            custom: &custom,
            scope: &scope,
        };
        assert!(matches!(fields.field("phone"), Lookup::Hidden));
        assert!(matches!(fields.field("custom.region"), Lookup::Hidden));
        assert!(
            matches!(fields.field("custom.old"), Lookup::Unknown),
            "deactivated"
        );
        assert!(matches!(fields.field("custom.nope"), Lookup::Unknown));
        assert!(matches!(
            fields.field("grade"),
            Lookup::Found(Typed { kind: Kind::Choice(ref o), .. }) if o == &["A", "B"]
        ));
        scope.fields.clear();
        let fields = RecordFields {
            table: &TABLE,
            custom: &custom,
            scope: &scope,
        };
        assert!(matches!(
            fields.field("custom.region"),
            Lookup::Found(Typed { kind: Kind::Choice(_), column: Column::Custom(ref k) }) if k == "region"
        ));
        // System fields are never concealed.
        assert!(matches!(fields.field("created_at"), Lookup::Found(_)));

        let mut scope = Scope::everything();
        scope.fields.insert(
            "phone".into(),
            FieldAccess {
                visibility: Visibility::ReadOnly,
                mask: Some(crm_access::MaskKind::Phone),
            },
        );
        let fields = RecordFields {
            table: &TABLE,
            custom: &custom,
            scope: &scope,
        };
        let err = compile(
            "grade = 'A' and phone contains '138'",
            &fields,
            chrono_tz::Asia::Shanghai,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(err.violations[0].field, "filter");
        assert!(
            err.violations[0].message.contains("position 16"),
            "{}",
            err.violations[0].message
        );
        assert!(
            compile("grade = 'Z'", &fields, chrono_tz::UTC, Utc::now()).is_err(),
            "not an option"
        );
        assert!(compile("grade in ('A', 'B')", &fields, chrono_tz::UTC, Utc::now()).is_ok());
    }
}
