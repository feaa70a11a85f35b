//! The one error type of this crate.

use crate::{Currency, MAX_MINOR_UNITS};

/// Why a currency, an amount or a money operation was refused.
///
/// Messages name the offending input (shortened to 40 characters) and are safe to show a client,
/// e.g. as the description of a `FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Not three upper-case ASCII letters: `"cny"`, `"CN"`, `""`.
    #[error("currency code {0:?} is not three upper-case letters (ISO 4217, e.g. \"CNY\")")]
    MalformedCurrencyCode(String),

    /// Well-formed, but not a currency of the table.
    #[error("unknown currency code {0:?} (not an ISO 4217 currency in circulation)")]
    UnknownCurrency(String),

    /// The amount text is not a plain decimal (`-?[0-9]+(\.[0-9]+)?`).
    #[error("amount {input:?} is not a plain decimal: {reason}")]
    InvalidAmount { input: String, reason: &'static str },

    /// More decimal places than the currency's minor unit: `"1.005"` CNY, `"100.5"` JPY.
    #[error("amount {input:?}: {currency} allows at most {allowed} decimal places, found {found}")]
    TooManyDecimals {
        input: String,
        currency: Currency,
        found: u32,
        allowed: u32,
    },

    /// The amount (given, or the result of an operation) is beyond [`MAX_MINOR_UNITS`].
    #[error(
        "{currency} amount out of range: more than {max} minor units in magnitude",
        max = MAX_MINOR_UNITS
    )]
    OutOfRange { currency: Currency },

    /// Two amounts in different currencies were combined or compared.
    #[error("currency mismatch: {left} and {right} amounts cannot be combined")]
    CurrencyMismatch { left: Currency, right: Currency },

    /// An allocation that has no answer: zero parts, no ratios, negative or all-zero ratios.
    #[error("cannot allocate: {0}")]
    InvalidAllocation(&'static str),
}

/// At most 40 characters of `input`, for error messages.
pub(crate) fn excerpt(input: &str) -> String {
    const MAX: usize = 40;
    match input.char_indices().nth(MAX) {
        None => input.to_owned(),
        Some((end, _)) => format!("{}…", &input[..end]),
    }
}
