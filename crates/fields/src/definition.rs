//! A custom field's definition as a value: its type, labels, rules and options ([`Definition`]),
//! what an administrator sends to define one ([`NewDefinition`]) or change one
//! ([`DefinitionPatch`]), and the checks that keep a definition sound. No I/O.
//!
//! What a change may do is chosen so that **no change ever rewrites or breaks a stored value**:
//! the key and the type are fixed once defined; options are never removed, only deactivated
//! (stored values stay readable, new writes may not choose them); stricter rules (a longer
//! minimum, a narrower range, `required`) apply to later writes of that field only.

use chrono::{DateTime, Utc};
use crm_errors::validation::Violations;
use crm_record::FieldKind;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most custom fields one entity may have: forms past this are unusable anyway, and every
/// read carries every value.
pub const MAX_FIELDS: usize = 300;
/// The most options a select may have.
pub const MAX_OPTIONS: usize = 500;
/// Longest key.
pub const MAX_KEY: usize = 40;
/// Longest label.
pub const MAX_LABEL: usize = 100;
/// Longest help text.
pub const MAX_HELP: usize = 500;
/// Longest option value.
pub const MAX_OPTION: usize = 100;
/// Longest pattern (a regular expression, linear-time: the `regex` crate never backtracks).
pub const MAX_PATTERN: usize = 500;
/// Default and greatest length of a text field's value.
pub const MAX_TEXT: usize = 1000;
/// Default scale (decimal places) of a decimal field.
pub const DEFAULT_SCALE: u32 = 2;
/// Greatest scale of a decimal field.
pub const MAX_SCALE: u32 = 10;

/// What a custom field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    /// Exact, with a fixed scale ([`Rules::scale`]).
    Decimal,
    /// An amount in the definition's currency, exact, with the currency's minor units.
    Currency,
    Date,
    DateTime,
    Boolean,
    Select,
    MultiSelect,
    Email,
    Phone,
    Url,
    /// A user's id.
    User,
    /// A department's id.
    Department,
    /// Another record's id ([`Definition::target`] says of which resource).
    Lookup,
}

impl FieldType {
    pub const ALL: &'static [FieldType] = &[
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Currency,
        FieldType::Date,
        FieldType::DateTime,
        FieldType::Boolean,
        FieldType::Select,
        FieldType::MultiSelect,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::User,
        FieldType::Department,
        FieldType::Lookup,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Currency => "currency",
            FieldType::Date => "date",
            FieldType::DateTime => "date_time",
            FieldType::Boolean => "boolean",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::User => "user",
            FieldType::Department => "department",
            FieldType::Lookup => "lookup",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }

    /// The kind the permission service's registry knows it by: what a field rule may do with it
    /// (only text kinds can be masked).
    pub const fn kind(self) -> FieldKind {
        match self {
            FieldType::Text | FieldType::LongText => FieldKind::Text,
            FieldType::Email => FieldKind::Email,
            FieldType::Phone => FieldKind::Phone,
            FieldType::Url => FieldKind::Url,
            FieldType::Select => FieldKind::Choice,
            FieldType::MultiSelect => FieldKind::TextList,
            FieldType::User | FieldType::Department | FieldType::Lookup => FieldKind::Reference,
            FieldType::Date => FieldKind::Date,
            FieldType::DateTime => FieldKind::Timestamp,
            FieldType::Integer => FieldKind::Integer,
            FieldType::Decimal | FieldType::Currency => FieldKind::Decimal,
            FieldType::Boolean => FieldKind::Boolean,
        }
    }

    /// Whether values compare as numbers (and are indexed as `numeric`).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Decimal | FieldType::Currency
        )
    }

    fn has_options(self) -> bool {
        matches!(self, FieldType::Select | FieldType::MultiSelect)
    }

    fn has_length(self) -> bool {
        matches!(self, FieldType::Text | FieldType::LongText)
    }

    fn has_range(self) -> bool {
        self.is_numeric()
    }

    /// Whether a value can be unique (one value per record: not lists, booleans or long text).
    fn can_be_unique(self) -> bool {
        !matches!(
            self,
            FieldType::MultiSelect | FieldType::Boolean | FieldType::LongText
        )
    }
}

/// A text in Chinese and English. Either may be empty but not both; clients show the caller's
/// language and fall back to the other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default)]
    pub zh: String,
    #[serde(default)]
    pub en: String,
}

impl Labels {
    fn is_empty(&self) -> bool {
        self.zh.is_empty() && self.en.is_empty()
    }

    /// Trimmed, bounded, without control characters.
    fn checked(&self, v: &mut Violations, path: &str, max: usize) -> Labels {
        Labels {
            zh: v
                .text(&format!("{path}.zh"), &self.zh, max)
                .unwrap_or_default(),
            en: v
                .text(&format!("{path}.en"), &self.en, max)
                .unwrap_or_default(),
        }
    }
}

/// One option of a select. Its `value` is what records store and conditions compare; the
/// order of a definition's options is the order clients show them in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub value: String,
    pub label: Labels,
    /// A deactivated option stays readable on the records that hold it; writes may not choose it.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What a value must satisfy beyond its type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Text: fewest characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Text: most characters (at most [`MAX_TEXT`], long text at most `MAX_LONG`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Numbers: the least value (a string, exact).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "decimal_text"
    )]
    pub min: Option<Decimal>,
    /// Numbers: the greatest value (a string, exact).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "decimal_text"
    )]
    pub max: Option<Decimal>,
    /// Text: a regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Decimal: the decimal places (default [`DEFAULT_SCALE`]); currency: the currency's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
}

/// A custom field as defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub id: Uuid,
    /// The resource it belongs to (`account`).
    pub entity: String,
    /// Its key: what records store it under (`custom.<key>` in the record's JSON, in conditions,
    /// field rules and error paths). Fixed once defined.
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Labels,
    #[serde(default)]
    pub help: Labels,
    /// New records must give it a value, and no write may clear it. Records written before it
    /// became required are not broken by it: they are refused only when they clear it.
    pub required: bool,
    /// No two live records of the entity hold the same value.
    pub unique: bool,
    /// Lists filter and sort on it through an index the service builds online.
    pub indexed: bool,
    /// The value a new record gets when it gives none (checked like any value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub rules: Rules,
    /// Selects: the options, in display order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// Lookups: the resource the id points at (`account`, `contact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Currency amounts: the ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Where clients place it among the entity's custom fields (ascending).
    pub position: i32,
    /// A deactivated field is hidden from records, lists and events, and refused on writes; its
    /// values stay stored and come back when it is activated again.
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Definition {
    /// `custom.<key>`: the field's name in records, conditions, field rules and error paths.
    pub fn name(&self) -> String {
        name(&self.key)
    }

    /// The scale values are kept at (decimals and currency amounts).
    pub fn scale(&self) -> u32 {
        match self.field_type {
            FieldType::Currency => self
                .currency
                .as_deref()
                .and_then(|c| crm_money::Currency::from_code(c).ok())
                .map_or(DEFAULT_SCALE, |c| c.exponent()),
            _ => self.rules.scale.unwrap_or(DEFAULT_SCALE),
        }
    }

    /// The option named `value`.
    pub fn option(&self, value: &str) -> Option<&Choice> {
        self.options.iter().find(|o| o.value == value)
    }
}

/// `custom.<key>`.
pub fn name(key: &str) -> String {
    format!("custom.{key}")
}

/// Whether `key` may be a field key: `[a-z][a-z0-9_]*`, at most [`MAX_KEY`] bytes.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_KEY
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A field as an administrator defines it (before it has an id or a version).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDefinition {
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub label: Labels,
    #[serde(default)]
    pub help: Labels,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub indexed: bool,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub rules: Rules,
    #[serde(default)]
    pub options: Vec<Choice>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
}

/// A change to a definition; `None` leaves a part as it is. The key and the type cannot change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionPatch {
    #[serde(default)]
    pub label: Option<Labels>,
    #[serde(default)]
    pub help: Option<Labels>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub unique: Option<bool>,
    #[serde(default)]
    pub indexed: Option<bool>,
    /// `Some(None)`: no default any more.
    #[serde(default, deserialize_with = "nullable")]
    pub default: Option<Option<serde_json::Value>>,
    #[serde(default)]
    pub rules: Option<Rules>,
    /// The whole list, in its new order: every existing option must still be there (deactivate
    /// one with `"active": false` instead of leaving it out).
    #[serde(default)]
    pub options: Option<Vec<Choice>>,
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(default)]
    pub active: Option<bool>,
}

fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Where a lookup may point: the resources whose existence the owning service can check.
pub type Targets<'a> = &'a [&'a str];

impl NewDefinition {
    /// The definition this makes, or every violation at once (paths as in the request body).
    pub fn check(
        self,
        entity: &str,
        targets: Targets<'_>,
        position: i32,
        now: DateTime<Utc>,
    ) -> Result<Definition, Violations> {
        let mut v = Violations::default();
        let key = self.key.trim().to_string();
        if !is_valid_key(&key) {
            v.add(
                "key",
                format!("must be lower-case letters, digits and _, starting with a letter, at most {MAX_KEY} characters"),
            );
        }
        let field_type = FieldType::parse(self.field_type.trim());
        if field_type.is_none() {
            let names: Vec<&str> = FieldType::ALL.iter().map(|t| t.as_str()).collect();
            v.add("type", format!("must be one of {}", names.join(", ")));
        }
        let definition = Definition {
            id: Uuid::now_v7(),
            entity: entity.to_string(),
            key,
            field_type: field_type.unwrap_or(FieldType::Text),
            label: self.label,
            help: self.help,
            required: self.required,
            unique: self.unique,
            indexed: self.indexed,
            default: self.default,
            rules: self.rules,
            options: self.options,
            target: self.target,
            currency: self.currency,
            position: self.position.unwrap_or(position),
            active: true,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let definition = definition.checked(&mut v, targets, None);
        match (v.is_empty(), field_type) {
            (true, Some(_)) => Ok(definition),
            _ => Err(v),
        }
    }
}

impl DefinitionPatch {
    /// `current` changed by the patch, or every violation. What a change may not do (drop an
    /// option, change what a lookup points at) is refused here.
    pub fn apply(
        self,
        current: &Definition,
        targets: Targets<'_>,
        now: DateTime<Utc>,
    ) -> Result<Definition, Violations> {
        let mut v = Violations::default();
        let mut next = current.clone();
        if let Some(label) = self.label {
            next.label = label;
        }
        if let Some(help) = self.help {
            next.help = help;
        }
        if let Some(required) = self.required {
            next.required = required;
        }
        if let Some(unique) = self.unique {
            next.unique = unique;
        }
        if let Some(indexed) = self.indexed {
            next.indexed = indexed;
        }
        if let Some(default) = self.default {
            next.default = default;
        }
        if let Some(rules) = self.rules {
            next.rules = rules;
        }
        if let Some(options) = self.options {
            next.options = options;
        }
        if let Some(position) = self.position {
            next.position = position;
        }
        if let Some(active) = self.active {
            next.active = active;
        }
        let mut next = next.checked(&mut v, targets, Some(current));
        if !v.is_empty() {
            return Err(v);
        }
        next.updated_at = now;
        Ok(next)
    }
}

impl Definition {
    /// Checks (and tidies: trims, normalises the default) a definition; `before` is the
    /// definition it replaces, for what a change may not do.
    fn checked(
        mut self,
        v: &mut Violations,
        targets: Targets<'_>,
        before: Option<&Definition>,
    ) -> Definition {
        let t = self.field_type;
        self.label = self.label.checked(v, "label", MAX_LABEL);
        if self.label.is_empty() {
            v.add(
                "label",
                "give a label in Chinese (zh), English (en) or both",
            );
        }
        self.help = self.help.checked(v, "help", MAX_HELP);
        if self.unique && !t.can_be_unique() {
            v.add("unique", format!("a {} field cannot be unique", t.as_str()));
        }
        // Uniqueness is checked through the index: a unique field is an indexed one.
        self.indexed |= self.unique;

        // Options.
        if t.has_options() {
            self.check_options(v, before);
        } else if !self.options.is_empty() {
            v.add("options", format!("a {} field has no options", t.as_str()));
        }

        // Rules by type.
        let r = &mut self.rules;
        if !t.has_length() {
            for (set, name) in [
                (r.min_length.is_some(), "rules.min_length"),
                (r.max_length.is_some(), "rules.max_length"),
                (r.pattern.is_some(), "rules.pattern"),
            ] {
                if set {
                    v.add(name, format!("a {} field has no such rule", t.as_str()));
                }
            }
        } else {
            let most = match t {
                FieldType::LongText => crm_errors::validation::MAX_LONG,
                _ => MAX_TEXT,
            } as u32;
            if r.max_length.is_some_and(|m| m == 0 || m > most) {
                v.add("rules.max_length", format!("must be between 1 and {most}"));
            }
            if let (Some(lo), Some(hi)) = (r.min_length, r.max_length)
                && lo > hi
            {
                v.add("rules.min_length", "must not exceed max_length");
            }
            if let Some(p) = &r.pattern {
                if p.len() > MAX_PATTERN {
                    v.add(
                        "rules.pattern",
                        format!("must be at most {MAX_PATTERN} characters"),
                    );
                } else if let Err(e) = compile_pattern(p) {
                    v.add("rules.pattern", format!("is not a regular expression: {e}"));
                }
            }
        }
        if !t.has_range() {
            for (set, name) in [
                (r.min.is_some(), "rules.min"),
                (r.max.is_some(), "rules.max"),
            ] {
                if set {
                    v.add(name, format!("a {} field has no such rule", t.as_str()));
                }
            }
        } else if let (Some(lo), Some(hi)) = (r.min, r.max)
            && lo > hi
        {
            v.add("rules.min", "must not exceed max");
        }
        match t {
            FieldType::Decimal if r.scale.is_some_and(|s| s > MAX_SCALE) => {
                v.add("rules.scale", format!("must be at most {MAX_SCALE}"));
            }
            FieldType::Decimal => {}
            _ if r.scale.is_some() => {
                v.add(
                    "rules.scale",
                    format!("a {} field has no such rule", t.as_str()),
                );
            }
            _ => {}
        }

        // Currency and lookup targets.
        match (t, self.currency.as_deref()) {
            (FieldType::Currency, Some(code)) if crm_money::Currency::from_code(code).is_err() => {
                v.add("currency", "must be an ISO 4217 code such as CNY");
            }
            (FieldType::Currency, Some(_)) => {}
            (FieldType::Currency, None) => v.add("currency", "a currency field needs one"),
            (_, Some(_)) => v.add("currency", "only a currency field has one"),
            _ => {}
        }
        match (t, self.target.as_deref()) {
            (FieldType::Lookup, Some(target)) if !targets.contains(&target) => {
                v.add("target", format!("must be one of {}", targets.join(", ")));
            }
            (FieldType::Lookup, Some(_)) => {}
            (FieldType::Lookup, None) => {
                v.add("target", "a lookup needs the resource it points at")
            }
            (_, Some(_)) => v.add("target", "only a lookup has one"),
            _ => {}
        }
        if let Some(before) = before {
            if before.target != self.target {
                v.add("target", "cannot change: stored ids point at the old one");
            }
            if before.currency != self.currency {
                v.add(
                    "currency",
                    "cannot change: stored amounts are in the old one",
                );
            }
            if t == FieldType::Decimal && self.scale() < before.scale() {
                v.add(
                    "rules.scale",
                    "cannot shrink: stored values would lose decimal places",
                );
            }
        }

        // The default, checked like a value (only once the rest is sound).
        if v.is_empty()
            && let Some(default) = self.default.take()
        {
            if default.is_null() {
                self.default = None;
            } else {
                match crate::values::normalise(&self, &default) {
                    Ok(value) => self.default = Some(value),
                    Err(message) => v.add("default", message),
                }
            }
            if self.unique && self.default.is_some() {
                v.add("default", "a unique field cannot have a default");
            }
        }
        self
    }

    fn check_options(&mut self, v: &mut Violations, before: Option<&Definition>) {
        if self.options.is_empty() {
            v.add("options", "a select needs at least one option");
        }
        if self.options.len() > MAX_OPTIONS {
            v.add("options", format!("at most {MAX_OPTIONS} options"));
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, option) in self.options.iter_mut().enumerate() {
            let path = format!("options[{i}]");
            match v.text(&format!("{path}.value"), &option.value, MAX_OPTION) {
                Some(value) if value.is_empty() => {
                    v.add(&format!("{path}.value"), "must not be empty");
                }
                Some(value) => {
                    if !seen.insert(value.clone()) {
                        v.add(&format!("{path}.value"), "appears twice");
                    }
                    option.value = value;
                }
                None => {}
            }
            option.label = option.label.checked(v, &format!("{path}.label"), MAX_LABEL);
        }
        if let Some(before) = before {
            for old in &before.options {
                if !seen.contains(&old.value) {
                    v.add(
                        "options",
                        format!(
                            "option {:?} is missing: options are never removed (records may hold them); set \"active\": false instead",
                            old.value
                        ),
                    );
                }
            }
        }
    }
}

/// Bounds as exact decimal strings (`"0.01"`); a JSON number is read through its text.
mod decimal_text {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let raw = Option::<serde_json::Value>::deserialize(d)?;
        let text = match raw {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "expected a decimal number, got {other}"
                )));
            }
        };
        Decimal::from_str_exact(text.trim())
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a decimal number")))
    }
}

/// A validation pattern as the values' check runs it: anchored to the whole value, bounded in
/// size.
pub(crate) fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(key: &str, t: &str) -> NewDefinition {
        NewDefinition {
            key: key.into(),
            field_type: t.into(),
            label: Labels {
                zh: "区域".into(),
                en: "Region".into(),
            },
            ..Default::default()
        }
    }

    fn paths(v: &Violations) -> Vec<&str> {
        v.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn a_definition_names_every_mistake_by_its_path() {
        let mut bad = new("Region", "colour");
        bad.label = Labels::default();
        let err = bad
            .check("account", &["account"], 0, Utc::now())
            .unwrap_err();
        assert_eq!(paths(&err), ["key", "type", "label"]);

        let mut select = new("region", "select");
        select.options = vec![
            Choice {
                value: "east".into(),
                label: Labels::default(),
                active: true,
            },
            Choice {
                value: "east".into(),
                label: Labels::default(),
                active: true,
            },
        ];
        select.rules.min = Some(Decimal::ONE);
        let err = select
            .check("account", &["account"], 0, Utc::now())
            .unwrap_err();
        assert_eq!(paths(&err), ["options[1].value", "rules.min"]);

        let mut lookup = new("partner", "lookup");
        lookup.target = Some("invoice".into());
        let err = lookup
            .check("account", &["account", "contact"], 0, Utc::now())
            .unwrap_err();
        assert_eq!(paths(&err), ["target"]);

        let mut money = new("budget", "currency");
        money.currency = Some("cny".into());
        let err = money.check("account", &[], 0, Utc::now()).unwrap_err();
        assert_eq!(paths(&err), ["currency"]);

        let mut text = new("code", "text");
        text.rules.pattern = Some("(".into());
        let err = text.check("account", &[], 0, Utc::now()).unwrap_err();
        assert_eq!(paths(&err), ["rules.pattern"]);
    }

    #[test]
    fn the_default_is_checked_and_normalised_like_a_value() {
        let mut d = new("budget", "decimal");
        d.default = Some(serde_json::json!("12.5"));
        let def = d.check("account", &[], 0, Utc::now()).unwrap();
        assert_eq!(def.default, Some(serde_json::json!("12.50")));

        let mut d = new("budget", "decimal");
        d.default = Some(serde_json::json!("abc"));
        let err = d.check("account", &[], 0, Utc::now()).unwrap_err();
        assert_eq!(paths(&err), ["default"]);
    }

    #[test]
    fn changes_never_drop_options_nor_change_what_values_mean() {
        let mut select = new("region", "select");
        select.options = ["east", "west"]
            .iter()
            .map(|v| Choice {
                value: (*v).into(),
                label: Labels::default(),
                active: true,
            })
            .collect();
        let def = select.check("account", &[], 0, Utc::now()).unwrap();
        let dropped = DefinitionPatch {
            options: Some(vec![def.options[1].clone()]),
            ..Default::default()
        };
        let err = dropped.apply(&def, &[], Utc::now()).unwrap_err();
        assert!(err[0].message.contains("\"east\""), "{:?}", err.0);

        let mut reordered = vec![def.options[1].clone(), def.options[0].clone()];
        reordered[1].active = false;
        let patch = DefinitionPatch {
            options: Some(reordered),
            ..Default::default()
        };
        let next = patch.apply(&def, &[], Utc::now()).unwrap();
        assert_eq!(next.options[0].value, "west");
        assert!(!next.options[1].active);

        let mut dec = new("rate", "decimal");
        dec.rules.scale = Some(4);
        let def = dec.check("account", &[], 0, Utc::now()).unwrap();
        let shrink = DefinitionPatch {
            rules: Some(Rules {
                scale: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            paths(&shrink.apply(&def, &[], Utc::now()).unwrap_err()),
            ["rules.scale"]
        );
    }

    #[test]
    fn unique_implies_indexed_and_only_for_single_values() {
        let mut d = new("tax_no", "text");
        d.unique = true;
        assert!(d.check("account", &[], 0, Utc::now()).unwrap().indexed);
        let mut d = new("flag", "boolean");
        d.unique = true;
        assert_eq!(
            paths(&d.check("account", &[], 0, Utc::now()).unwrap_err()),
            ["unique"]
        );
    }
}
