//! Built-in fields, named by typed constants.
//!
//! A record type declares one [`Field`] constant per built-in field and lists them in its
//! [`crate::Table`]. Field rules, masks, writable checks and sharing conditions name fields
//! through these constants, so a field renamed in one place and not the other fails to compile;
//! [`check_fields`] (called from each record type's tests) fails when a constant names no key of
//! the record's JSON, so a renamed struct field is caught too.

use crm_access::Scope;

/// What kind of value a field holds: what a rule may do with it (only text can be masked) and
/// what a condition may compare it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Email,
    Phone,
    Url,
    /// One of a fixed set of values (a status, a grade).
    Choice,
    /// A list of text values (tags).
    TextList,
    /// A reference to another record or a user or department.
    Reference,
    Timestamp,
    Integer,
    /// A calendar date.
    Date,
    /// An exact decimal (an amount).
    Decimal,
    Boolean,
}

impl FieldKind {
    pub const ALL: &'static [FieldKind] = &[
        FieldKind::Text,
        FieldKind::Email,
        FieldKind::Phone,
        FieldKind::Url,
        FieldKind::Choice,
        FieldKind::TextList,
        FieldKind::Reference,
        FieldKind::Timestamp,
        FieldKind::Integer,
        FieldKind::Date,
        FieldKind::Decimal,
        FieldKind::Boolean,
    ];

    /// Its name in the registry and in declarations (`text`, `text_list`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Email => "email",
            FieldKind::Phone => "phone",
            FieldKind::Url => "url",
            FieldKind::Choice => "choice",
            FieldKind::TextList => "text_list",
            FieldKind::Reference => "reference",
            FieldKind::Timestamp => "timestamp",
            FieldKind::Integer => "integer",
            FieldKind::Date => "date",
            FieldKind::Decimal => "decimal",
            FieldKind::Boolean => "boolean",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// Whether a mask can apply (masks rewrite text).
    pub fn maskable(self) -> bool {
        matches!(
            self,
            FieldKind::Text | FieldKind::Email | FieldKind::Phone | FieldKind::Url
        )
    }
}

/// A built-in field: its name (the JSON key, the column and the name rules use) and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    name: &'static str,
    kind: FieldKind,
    /// Whether field rules may hide or mask it (ids, versions and timestamps they may not).
    governed: bool,
    /// A choice's values, as stored (what a condition may compare it with).
    options: &'static [&'static str],
}

impl Field {
    /// A field field rules apply to.
    pub const fn new(name: &'static str, kind: FieldKind) -> Self {
        Field {
            name,
            kind,
            governed: true,
            options: &[],
        }
    }

    /// A choice among `options` (their stored values) that field rules apply to.
    pub const fn choice(name: &'static str, options: &'static [&'static str]) -> Self {
        Field {
            name,
            kind: FieldKind::Choice,
            governed: true,
            options,
        }
    }

    /// A field no rule may hide (the id, the version, timestamps, owner and department, which
    /// scopes themselves go by).
    pub const fn system(name: &'static str, kind: FieldKind) -> Self {
        Field {
            name,
            kind,
            governed: false,
            options: &[],
        }
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    pub const fn kind(self) -> FieldKind {
        self.kind
    }

    pub const fn governed(self) -> bool {
        self.governed
    }

    /// A choice's stored values (empty for other kinds).
    pub const fn options(self) -> &'static [&'static str] {
        self.options
    }

    /// Whether the caller's rules hide it.
    pub fn hidden(self, scope: &Scope) -> bool {
        self.governed && scope.field(self.name).visibility == crm_access::Visibility::Hidden
    }

    /// An optional text value as the caller may see it.
    pub fn show(self, scope: &Scope, value: &mut Option<String>) {
        if self.governed {
            *value = scope.show(self.name, value.take());
        }
    }

    /// A required text value as the caller may see it (hidden: empty).
    pub fn show_required(self, scope: &Scope, value: &mut String) {
        if self.governed {
            *value = scope
                .show(self.name, Some(std::mem::take(value)))
                .unwrap_or_default();
        }
    }

    /// Empties `value` when the caller's rules hide the field (values that cannot be masked).
    pub fn hide<T: Default>(self, scope: &Scope, value: &mut T) {
        if self.hidden(scope) {
            *value = T::default();
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The fields every record has: no rule may hide them (scopes go by owner and department;
/// clients need the id, the version for `If-Match`, and the timestamps).
pub mod system {
    use super::{Field, FieldKind};

    pub const ID: Field = Field::system("id", FieldKind::Reference);
    pub const OWNER_ID: Field = Field::system("owner_id", FieldKind::Reference);
    pub const DEPARTMENT_ID: Field = Field::system("department_id", FieldKind::Reference);
    pub const VERSION: Field = Field::system("version", FieldKind::Integer);
    pub const CREATED_AT: Field = Field::system("created_at", FieldKind::Timestamp);
    pub const UPDATED_AT: Field = Field::system("updated_at", FieldKind::Timestamp);
}

/// Checks a record type's field list against one of its records: every field names a key of
/// its JSON, none twice, and every key of the JSON is a field (so neither side can be renamed
/// alone). For the record type's tests.
pub fn check_fields(fields: &[Field], record: &serde_json::Value) -> Result<(), String> {
    let object = record
        .as_object()
        .ok_or_else(|| "a record serialises to a JSON object".to_string())?;
    let mut seen = std::collections::BTreeSet::new();
    for field in fields {
        if !seen.insert(field.name) {
            return Err(format!("field {} is listed twice", field.name));
        }
        if !object.contains_key(field.name) {
            return Err(format!("field {} is not a key of the record", field.name));
        }
    }
    // `custom` holds the custom fields' values: each is declared on its own (crm-fields).
    let unlisted: Vec<&String> = object
        .keys()
        .filter(|k| !seen.contains(k.as_str()) && k.as_str() != "custom")
        .collect();
    if !unlisted.is_empty() {
        return Err(format!("keys without a Field: {unlisted:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: Field = Field::new("name", FieldKind::Text);
    const ID: Field = Field::system("id", FieldKind::Reference);

    #[test]
    fn fields_and_records_must_agree() {
        let record = serde_json::json!({ "id": "x", "name": "Acme" });
        assert!(check_fields(&[ID, NAME], &record).is_ok());
        let err = check_fields(&[ID], &record).unwrap_err();
        assert!(err.contains("name"), "{err}");
        let err =
            check_fields(&[ID, NAME, Field::new("nmae", FieldKind::Text)], &record).unwrap_err();
        assert!(err.contains("nmae"), "{err}");
        assert!(check_fields(&[ID, ID, NAME], &record).is_err());
    }

    #[test]
    fn system_fields_are_never_hidden_or_masked() {
        let mut scope = Scope::everything();
        for name in ["id", "name"] {
            scope.fields.insert(
                name.into(),
                crm_access::FieldAccess {
                    visibility: crm_access::Visibility::Hidden,
                    mask: None,
                },
            );
        }
        assert!(!ID.hidden(&scope));
        assert!(NAME.hidden(&scope));
        let mut value = "Acme".to_string();
        NAME.show_required(&scope, &mut value);
        assert_eq!(value, "");
        assert!(FieldKind::Phone.maskable() && !FieldKind::Choice.maskable());
    }
}
