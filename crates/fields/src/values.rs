//! A record's custom values ([`Values`]) and the checks of a write against the entity's
//! definitions ([`Schema`]). No I/O.
//!
//! Values are stored in the record's `custom` JSONB column in one normalised form per type, the
//! form the condition language (`crm-condition`) compiles to SQL against, so that filters,
//! sorting and indexes agree with what was written:
//!
//! | type                          | stored as                                                    |
//! |-------------------------------|--------------------------------------------------------------|
//! | text, long text, e-mail, phone, URL, select | a string                                       |
//! | user, department, lookup      | a UUID string                                                |
//! | integer                       | a number (i64)                                               |
//! | decimal, currency             | a string at the field's scale (`"12.50"`): exact, never a float |
//! | date                          | `"YYYY-MM-DD"`                                               |
//! | date-time                     | `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`, UTC, always six fraction digits, so text order is time order |
//! | boolean                       | `true` / `false`                                             |
//! | multi select                  | an array of option values, in the options' order            |
//!
//! An empty value is an absent key: `null`, `""` and `[]` written clear the field.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use crm_errors::validation::Violations;
use crm_record::event::{Changes, record_change};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::definition::{Definition, FieldType, MAX_TEXT, compile_pattern, name};

/// What a write sends: `{"<key>": value | null}`; keys left out are left as they are.
pub type Input = serde_json::Map<String, Value>;

/// A record's custom values, by key, normalised (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Values(pub BTreeMap<String, Value>);

impl Values {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Records `custom.<key>: {old, new}` for every value that differs.
    pub fn changes(before: &Values, after: &Values, changes: &mut Changes) {
        let keys: std::collections::BTreeSet<&String> =
            before.0.keys().chain(after.0.keys()).collect();
        for key in keys {
            record_change(
                changes,
                &name(key),
                &before.0.get(key).cloned().unwrap_or(Value::Null),
                &after.0.get(key).cloned().unwrap_or(Value::Null),
            );
        }
    }

    /// Field rules: hidden values dropped, masked text masked (`crm_access::Scope::show`). Only
    /// text kinds can carry a mask (the registry refuses others), so a string's mask is its
    /// field's.
    pub fn redact(&mut self, scope: &crm_access::Scope) {
        self.0.retain(|key, value| {
            let name = name(key);
            match value {
                Value::String(text) => match scope.show(&name, Some(std::mem::take(text))) {
                    Some(shown) => {
                        *text = shown;
                        true
                    }
                    None => false,
                },
                _ => scope.field(&name).visibility != crm_access::Visibility::Hidden,
            }
        });
    }
}

/// What a write made of its input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// The record's values after the write.
    pub values: Values,
    /// The names (`custom.<key>`) the write sets, for the writable checks of field rules.
    pub set: Vec<String>,
    /// Lookups to check exist and are readable: (path, target resource, id).
    pub lookups: Vec<(String, String, Uuid)>,
    /// Values of unique fields written, to check no other record holds them.
    pub unique: Vec<Claim>,
}

/// A unique field's value a write claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub key: String,
    pub value: Value,
    /// Compared as a number (integers, decimals, amounts), as its index holds it.
    pub numeric: bool,
}

/// The custom fields of one entity, active or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    definitions: Vec<Definition>,
}

impl Schema {
    pub fn new(mut definitions: Vec<Definition>) -> Self {
        definitions.sort_by(|a, b| (a.position, &a.key).cmp(&(b.position, &b.key)));
        Schema { definitions }
    }

    pub fn definitions(&self) -> &[Definition] {
        &self.definitions
    }

    pub fn get(&self, key: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.key == key)
    }

    /// The active definitions, in position order.
    pub fn active(&self) -> impl Iterator<Item = &Definition> {
        self.definitions.iter().filter(|d| d.active)
    }

    /// The values a new record gets: the input checked, defaults filled in, required fields
    /// demanded. Every violation is reported, each at `custom.<key>`.
    pub fn create(&self, input: &Input) -> Result<Written, Violations> {
        let mut written = self.write(&Values::default(), input)?;
        let mut v = Violations::default();
        for d in self.active() {
            if written.values.0.contains_key(&d.key) {
                continue;
            }
            match &d.default {
                Some(default) => {
                    written.values.0.insert(d.key.clone(), default.clone());
                }
                None if d.required => v.add(&d.name(), "is required"),
                None => {}
            }
        }
        v.into_result().map_err(into_violations)?;
        Ok(written)
    }

    /// The values after a merge patch of `current`: keys given are set (`null` clears), the rest
    /// kept. A field that became required after the record was written is demanded only when
    /// the write clears it, so old records stay writable.
    pub fn update(&self, current: &Values, input: &Input) -> Result<Written, Violations> {
        self.write(current, input)
    }

    fn write(&self, current: &Values, input: &Input) -> Result<Written, Violations> {
        let mut v = Violations::default();
        let mut written = Written {
            values: current.clone(),
            ..Default::default()
        };
        for (key, raw) in input {
            let path = name(key);
            let Some(d) = self.get(key) else {
                v.add(&path, "no such custom field");
                continue;
            };
            if !d.active {
                v.add(&path, "the field is deactivated");
                continue;
            }
            written.set.push(path.clone());
            if is_empty(raw) {
                if d.required {
                    v.add(&path, "is required");
                }
                written.values.0.remove(key);
                continue;
            }
            match normalise(d, raw) {
                Ok(value) => {
                    if d.field_type == FieldType::Lookup
                        && let (Some(target), Some(id)) = (&d.target, value.as_str())
                        && let Ok(id) = Uuid::parse_str(id)
                    {
                        written.lookups.push((path.clone(), target.clone(), id));
                    }
                    if d.unique && current.get(key) != Some(&value) {
                        written.unique.push(Claim {
                            key: key.clone(),
                            value: value.clone(),
                            numeric: d.field_type.is_numeric(),
                        });
                    }
                    written.values.0.insert(key.clone(), value);
                }
                Err(message) => v.add(&path, message),
            }
        }
        v.into_result().map_err(into_violations)?;
        Ok(written)
    }

    /// The values as records show them: those of active fields only (a deactivated field's
    /// values stay stored, out of sight).
    pub fn visible(&self, values: &mut Values) {
        values
            .0
            .retain(|key, _| self.get(key).is_some_and(|d| d.active));
    }
}

fn into_violations(e: crm_errors::ApiError) -> Violations {
    Violations(e.violations)
}

fn is_empty(raw: &Value) -> bool {
    match raw {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `raw` as `d` stores it, or why not (a deactivated option is refused: writes and defaults
/// may not choose one).
pub fn normalise(d: &Definition, raw: &Value) -> Result<Value, String> {
    let t = d.field_type;
    match t {
        FieldType::Text | FieldType::LongText => {
            let text = string(raw, "text")?;
            let text = text.trim();
            let long = t == FieldType::LongText;
            let most = d.rules.max_length.map_or(
                if long {
                    crm_errors::validation::MAX_LONG
                } else {
                    MAX_TEXT
                },
                |m| m as usize,
            );
            let count = text.chars().count();
            if count > most {
                return Err(format!("must be at most {most} characters"));
            }
            if let Some(least) = d.rules.min_length
                && count < least as usize
            {
                return Err(format!("must be at least {least} characters"));
            }
            if text
                .chars()
                .any(|c| c.is_control() && !(long && matches!(c, '\n' | '\r' | '\t')))
            {
                return Err("must not contain control characters".into());
            }
            if let Some(pattern) = &d.rules.pattern {
                let re = compile_pattern(pattern).map_err(|_| "the field's pattern is broken")?;
                if !re.is_match(text) {
                    return Err(format!("must match the pattern {pattern}"));
                }
            }
            Ok(Value::String(text.to_string()))
        }
        FieldType::Email | FieldType::Phone | FieldType::Url => {
            let text = string(raw, "text")?;
            let mut v = Violations::default();
            let checked = match t {
                FieldType::Email => v.email("", text),
                FieldType::Phone => v.phone("", text),
                _ => v.website("", text),
            };
            match checked {
                Some(s) if v.is_empty() => Ok(Value::String(s)),
                _ => Err(v
                    .first()
                    .map_or("is not valid".to_string(), |f| f.message.clone())),
            }
        }
        FieldType::Integer => {
            let n = match raw {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or("must be a whole number (at most 19 digits)")?;
            range(d, Decimal::from(n))?;
            Ok(Value::from(n))
        }
        FieldType::Decimal | FieldType::Currency => {
            let text = match raw {
                // Exactness: a JSON number reaches us as a binary float. One with at most 15
                // significant digits prints back exactly; longer ones must come as strings.
                Value::Number(n) => {
                    let s = n.to_string();
                    let digits = s.chars().filter(char::is_ascii_digit).count();
                    if digits > 15 || s.contains(['e', 'E']) {
                        return Err(
                            "send numbers with more than 15 digits as strings (\"123.45\") so they stay exact".into(),
                        );
                    }
                    s
                }
                Value::String(s) => s.trim().to_string(),
                _ => return Err("must be a decimal number such as \"12.50\"".into()),
            };
            let number = Decimal::from_str_exact(&text)
                .map_err(|_| "must be a decimal number such as \"12.50\"".to_string())?;
            let scale = d.scale();
            if number.normalize().scale() > scale {
                return Err(format!("must have at most {scale} decimal places"));
            }
            range(d, number)?;
            let mut kept = number;
            kept.rescale(scale);
            Ok(Value::String(kept.to_string()))
        }
        FieldType::Date => {
            let text = string(raw, "date")?;
            let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| "must be a date like 2026-12-31".to_string())?;
            Ok(Value::String(date.format("%Y-%m-%d").to_string()))
        }
        FieldType::DateTime => {
            let text = string(raw, "date-time")?;
            let at = DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| "must be a date-time like 2026-12-31T09:30:00+08:00".to_string())?;
            Ok(Value::String(date_time(at.with_timezone(&Utc))))
        }
        FieldType::Boolean => match raw {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            _ => Err("must be true or false".into()),
        },
        FieldType::Select => {
            let value = string(raw, "option")?.trim();
            option(d, value)?;
            Ok(Value::String(value.to_string()))
        }
        FieldType::MultiSelect => {
            let items = raw
                .as_array()
                .ok_or("must be a list of options, like [\"a\", \"b\"]")?;
            let mut chosen = std::collections::BTreeSet::new();
            for item in items {
                let value = item
                    .as_str()
                    .ok_or("must be a list of option values")?
                    .trim();
                option(d, value)?;
                chosen.insert(value.to_string());
            }
            // In the options' order, once each: equal sets store equal values.
            Ok(Value::Array(
                d.options
                    .iter()
                    .filter(|o| chosen.contains(&o.value))
                    .map(|o| Value::String(o.value.clone()))
                    .collect(),
            ))
        }
        FieldType::User | FieldType::Department | FieldType::Lookup => {
            let text = string(raw, "id")?;
            let id = Uuid::parse_str(text.trim()).map_err(|_| "must be a UUID".to_string())?;
            Ok(Value::String(id.to_string()))
        }
    }
}

/// The stored form of an instant: UTC, six fraction digits, `Z`.
pub fn date_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn string<'a>(raw: &'a Value, what: &str) -> Result<&'a str, String> {
    raw.as_str()
        .ok_or_else(|| format!("must be a {what} string"))
}

fn range(d: &Definition, n: Decimal) -> Result<(), String> {
    if let Some(min) = d.rules.min
        && n < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = d.rules.max
        && n > max
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(())
}

fn option(d: &Definition, value: &str) -> Result<(), String> {
    match d.option(value) {
        Some(o) if o.active => Ok(()),
        Some(_) => Err(format!("option {value:?} is deactivated")),
        None => {
            let active: Vec<&str> = d
                .options
                .iter()
                .filter(|o| o.active)
                .map(|o| o.value.as_str())
                .collect();
            Err(format!(
                "{value:?} is not an option; choose one of {}",
                active.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::definition::{Choice, Labels, NewDefinition};

    fn def(key: &str, t: &str, f: impl FnOnce(&mut NewDefinition)) -> Definition {
        let mut n = NewDefinition {
            key: key.into(),
            field_type: t.into(),
            label: Labels {
                zh: key.into(),
                en: key.into(),
            },
            ..Default::default()
        };
        f(&mut n);
        n.check("account", &["account", "contact"], 0, Utc::now())
            .unwrap()
    }

    fn opts(values: &[&str]) -> Vec<Choice> {
        values
            .iter()
            .map(|v| Choice {
                value: (*v).into(),
                label: Labels::default(),
                active: true,
            })
            .collect()
    }

    fn schema() -> Schema {
        Schema::new(vec![
            def("region", "select", |n| {
                n.options = opts(&["east", "west", "north"]);
                n.required = true;
            }),
            def("budget", "currency", |n| {
                n.currency = Some("CNY".into());
                n.rules.min = Some(Decimal::ZERO);
            }),
            def("visits", "integer", |n| n.default = Some(json!(0))),
            def("since", "date", |_| {}),
            def("met_at", "date_time", |_| {}),
            def("channels", "multi_select", |n| {
                n.options = opts(&["wechat", "phone", "mail"])
            }),
            def("tax_no", "text", |n| {
                n.unique = true;
                n.rules.pattern = Some("[0-9A-Z]{18}".into());
            }),
            def("partner", "lookup", |n| n.target = Some("account".into())),
            def("vip", "boolean", |_| {}),
        ])
    }

    fn input(v: Value) -> Input {
        v.as_object().unwrap().clone()
    }

    fn paths(v: &Violations) -> Vec<&str> {
        v.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn values_are_stored_in_one_form_per_type() {
        let partner = Uuid::now_v7();
        let w = schema()
            .create(&input(json!({
                "region": "east",
                "budget": 1200.5,
                "since": "2026-01-31",
                "met_at": "2026-12-03T09:30:00+08:00",
                "channels": ["mail", "wechat", "mail"],
                "tax_no": "91110000MA01ABCD2X",
                "partner": partner.to_string().to_uppercase(),
                "vip": true,
            })))
            .unwrap();
        let v = &w.values.0;
        assert_eq!(v["budget"], json!("1200.50"));
        assert_eq!(v["visits"], json!(0), "the default filled in");
        assert_eq!(v["met_at"], json!("2026-12-03T01:30:00.000000Z"));
        assert_eq!(v["channels"], json!(["wechat", "mail"]));
        assert_eq!(v["partner"], json!(partner.to_string()));
        assert_eq!(
            w.lookups,
            [("custom.partner".into(), "account".into(), partner)]
        );
        assert_eq!(
            w.unique,
            [Claim {
                key: "tax_no".into(),
                value: json!("91110000MA01ABCD2X"),
                numeric: false
            }]
        );
        assert!(w.set.contains(&"custom.region".to_string()));
    }

    #[test]
    fn every_bad_value_is_named_by_its_path() {
        let err = schema()
            .create(&input(json!({
                "nope": 1,
                "budget": "-1",
                "since": "2026-02-30",
                "met_at": "yesterday",
                "channels": ["fax"],
                "tax_no": "abc",
                "partner": "x",
                "vip": "yes",
                "visits": 1.5,
            })))
            .unwrap_err();
        assert_eq!(
            paths(&err),
            [
                "custom.budget",
                "custom.channels",
                "custom.met_at",
                "custom.nope",
                "custom.partner",
                "custom.since",
                "custom.tax_no",
                "custom.vip",
                "custom.visits",
            ]
        );
        // The required field is demanded once the values themselves are sound.
        let err = schema().create(&input(json!({}))).unwrap_err();
        assert_eq!(paths(&err), ["custom.region"]);
    }

    #[test]
    fn exactness_of_decimals() {
        let s = schema();
        let d = s.get("budget").unwrap();
        assert_eq!(
            normalise(d, &json!("12345678901234567.89")).unwrap(),
            json!("12345678901234567.89")
        );
        assert!(normalise(d, &json!(1.005)).is_err(), "3 places in CNY");
        assert!(
            normalise(d, &json!(12345678901234567.0))
                .unwrap_err()
                .contains("as strings")
        );
    }

    #[test]
    fn a_patch_merges_and_old_records_stay_writable_when_rules_tighten() {
        let s = schema();
        // A record written before `region` became required, without it.
        let current = Values(BTreeMap::from([("visits".to_string(), json!(3))]));
        let w = s.update(&current, &input(json!({"vip": false}))).unwrap();
        assert_eq!(w.values.0["visits"], json!(3));
        assert_eq!(w.values.0["vip"], json!(false));
        assert_eq!(w.set, ["custom.vip"]);
        // Clearing a required field is refused; clearing another removes its key.
        let err = s
            .update(&current, &input(json!({"region": null})))
            .unwrap_err();
        assert_eq!(paths(&err), ["custom.region"]);
        let w = s.update(&current, &input(json!({"visits": null}))).unwrap();
        assert!(w.values.is_empty());
        let mut changes = Changes::new();
        Values::changes(&current, &w.values, &mut changes);
        assert_eq!(changes["custom.visits"], json!({"old": 3, "new": null}));
    }

    #[test]
    fn deactivated_fields_and_options() {
        let mut defs = schema().definitions().to_vec();
        for d in &mut defs {
            if d.key == "vip" {
                d.active = false;
            }
            if d.key == "region" {
                d.options[0].active = false;
            }
        }
        let s = Schema::new(defs);
        let err = s
            .update(
                &Values::default(),
                &input(json!({"vip": true, "region": "east"})),
            )
            .unwrap_err();
        assert_eq!(paths(&err), ["custom.region", "custom.vip"]);
        let mut stored = Values(BTreeMap::from([
            ("vip".to_string(), json!(true)),
            ("region".to_string(), json!("east")),
        ]));
        s.visible(&mut stored);
        assert_eq!(stored.0.keys().collect::<Vec<_>>(), ["region"]);
    }

    #[test]
    fn field_rules_hide_and_mask_custom_values() {
        let mut scope = crm_access::Scope::everything();
        scope.fields.insert(
            "custom.tax_no".into(),
            crm_access::FieldAccess {
                visibility: crm_access::Visibility::Hidden,
                mask: None,
            },
        );
        scope.fields.insert(
            "custom.vip".into(),
            crm_access::FieldAccess {
                visibility: crm_access::Visibility::Hidden,
                mask: None,
            },
        );
        let mut v = Values(BTreeMap::from([
            ("tax_no".to_string(), json!("X")),
            ("vip".to_string(), json!(true)),
            ("visits".to_string(), json!(1)),
        ]));
        v.redact(&scope);
        assert_eq!(v.0.keys().collect::<Vec<_>>(), ["visits"]);
    }
}
