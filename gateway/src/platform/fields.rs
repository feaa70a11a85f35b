//! Serde helpers for the API's JSON and query strings: telling an absent field from `null` in a
//! merge patch, and reading numbers and booleans from query strings with errors that name the
//! field.

use serde::{Deserialize, Deserializer};

/// For `Option<Option<T>>` fields: absent → `None` (via `#[serde(default)]`), `null` →
/// `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// For `Option<T>` fields that may be absent but not `null`: a plain `Option` would read
/// `null` as "absent" and silently ignore `{"name": null}`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For `Option<T>` fields that must be given but may be `null` (`"manager_id": null` in a PUT
/// that replaces the whole value): without it serde reads an absent field as `null`, and a
/// forgotten field would silently clear the value.
pub fn required<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Query values arrive as strings; numbers are parsed here so the error names the field.
pub fn number_from_str<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("expected a whole number, got {text:?}")))
}

/// `true` / `false` in a query string.
pub fn bool_from_str<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    match text.trim() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(serde::de::Error::custom(format!(
            "expected true or false, got {text:?}"
        ))),
    }
}
