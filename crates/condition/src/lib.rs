//! # crm-condition
//!
//! The condition language of [ADR 0017](../../docs/adr/0017-condition-language.md): "records
//! where …", written once for list filters, saved segments, validation and automation rules and
//! sharing conditions, and run both in SQL and in memory with the same answer.
//!
//! - [`parse`]: text → [`Expr`], or a [`ParseError`] that says where (a byte offset), what was
//!   expected and what was found.
//! - [`check`]: [`Expr`] → [`Condition`], typed against a resource's fields ([`Schema`],
//!   [`FieldType`]) with relative dates resolved in the caller's time zone at the caller's now;
//!   refusals are [`ParseError`]s too, at the field or the value. [`compile`] is both steps.
//! - [`Condition::push_sql`]: a parenthesised boolean expression for a `sqlx` `QueryBuilder`;
//!   column names only from [`Column::Builtin`], everything else bound.
//! - [`Condition::matches`]: the same verdict on one record's JSON.
//! - [`Condition::fields`]: the fields it uses (impact of renaming or removing a field).
//!
//! ```text
//! expr       := term ("or" term)*
//! term       := factor ("and" factor)*
//! factor     := "not" factor | "(" expr ")" | comparison
//! comparison := field ("=" | "!=" | "<" | "<=" | ">" | ">=") value
//!             | field "in" "(" value ("," value)* ")"
//!             | field "contains" string
//!             | field "is" ["not"] "empty"
//!             | field "between" value "and" value
//! value      := string | number | "true" | "false" | relative
//! relative   := "today" [("+" | "-") integer ("d" | "w" | "m")] | "this_week" | "this_month"
//!             | "this_quarter" | "this_year" | "last_week" | "last_month" | "last_quarter"
//!             | "last_year"
//! ```
//!
//! Keywords are case-insensitive; strings are single-quoted with `''` for a quote; numbers are
//! kept as written (exact decimals, typed later); dates and times are strings, typed by the
//! field they are compared with. Why a hand-written parser: errors must carry a byte position and
//! the expected tokens, the grammar is small, and it adds no dependency.
//!
//! The text is bounded ([`MAX_LEN`], [`MAX_DEPTH`], [`MAX_COMPARISONS`]): a filter arrives in a
//! URL from anyone with a token, and must cost little to refuse.
//!
//! ## Typing
//!
//! | kind | operators | values |
//! | --- | --- | --- |
//! | `Text` | `= != < <= > >=`, `in`, `between`, `contains`, `is empty` | strings |
//! | `Integer` | the same but `contains` | whole numbers that fit an `i64` (`3.5`, even `3.0`, refused) |
//! | `Decimal` | the same but `contains` | numbers (up to 28 digits, exact) |
//! | `Date` | the same but `contains` | `'YYYY-MM-DD'` (years 1 to 9999), relative dates |
//! | `DateTime` | the same but `contains` | `'YYYY-MM-DD'`, RFC 3339 instants with an offset (`'2026-03-01T09:30:00+08:00'`, at most 6 fraction digits), relative dates |
//! | `Bool` | `= !=`, `in`, `is empty` | `true`, `false` |
//! | `Choice` | `= !=`, `in`, `is empty` | one of the options, exactly |
//! | `Reference` | `= !=`, `in`, `is empty` | a UUID string |
//! | `TextList`, `MultiChoice` | `contains`, `in`, `is empty` | strings (options for a multi-choice) |
//!
//! Unknown fields (`unknown field custom.foo`) and fields hidden from the caller (`field x
//! cannot be used in a condition`) are refused at the field, an operator the kind lacks at the
//! field, a value of the wrong type (or out of range, or not an option, or containing NUL,
//! which Postgres text cannot hold) at the value.
//!
//! ## Semantics (SQL and memory alike)
//!
//! - **Empty** is an absent or `null` value (for lists also `[]`; for text `''` is *not* empty).
//!   Every comparison with an empty value is false, `!=` included, and `not` of that is true: each
//!   primitive test is `COALESCE(…, false)` in SQL.
//! - **`in`** on a scalar is "equal to any"; on a list "has an element equal to any".
//!   **`contains`** on a list is "has an element equal to" (exact, case-sensitive).
//! - **`between a and b`** is `>= a and <= b`, both ends included (a period as an end: from
//!   the low period's start to the high period's end).
//! - **Text** `=` is exact; `<`, `>` are by code point (`COLLATE "C"`; Rust's `str` order).
//!   **`contains`** is a substring test, case-insensitive for the ASCII letters A–Z only
//!   (`lower(x COLLATE "C") LIKE '%…%'` with `%`, `_` and `\` escaped; `to_ascii_lowercase` in
//!   memory). Why not Unicode: Postgres folds non-ASCII case by the database's locale (libc or
//!   ICU, and its version), which memory cannot reproduce, so `ÉCOLE contains 'école'` could be
//!   true in one and false in the other; under `"C"` Postgres folds exactly ASCII, everywhere.
//! - **Numbers** compare exactly (`numeric` and [`rust_decimal::Decimal`]): `12.5 = 12.50`.
//!   An integer field compared with a fractional literal is refused, not rounded.
//! - **Relative dates** are resolved by [`check`] from `now` in `tz`: `today` is the caller's
//!   local date; `today ± n` moves by days, weeks (7 days) or calendar months (clamped to the
//!   month's end: 31 March − 1m is 28 February); `this_/last_` `week` (Monday first), `month`,
//!   `quarter` (from January, April, July, October), `year` are periods `[first day, first day
//!   of the next)`.
//!   - On a `Date` field, a date and `today ± n` are one date; a period `p` compares as a
//!     whole: `= p` within it, `!= p` outside it, `< p` before its start, `<= p` before its end,
//!     `> p` from its end, `>= p` from its start.
//!   - On a `DateTime` field, a written date, `today ± n` and the periods are all periods from
//!     the local midnight starting the first day (converted to UTC) to the local midnight after
//!     the last, with the rules above: `seen_at >= today` is at or after the caller's midnight,
//!     `seen_at = today` within the caller's day. Where a zone's clocks skip midnight, a day
//!     starts at its first local minute that exists; where midnight happens twice, at the
//!     first. An instant with an offset is one instant.
//! - **Custom fields** compare in their stored JSON form ([`Column::Custom`]): text, choices,
//!   dates, date-times, booleans and references as the text `->>` gives (dates and date-times in
//!   their fixed forms, whose text order is time order; references in canonical lower case);
//!   numbers as `(custom ->> k)::numeric`; lists through `jsonb_typeof(…) = 'array'` and `?` /
//!   `?|`. Stored values are assumed valid (the owning service validates them).

mod eval;
mod lexer;
mod parser;
mod sql;
mod typed;

pub use parser::parse;
pub use typed::{Column, Condition, FieldType, Kind, Lookup, Schema, check, compile};

/// The longest condition accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of `(`, `not`, `and` and `or` accepted.
pub const MAX_DEPTH: usize = 16;
/// The most comparisons one condition may hold.
pub const MAX_COMPARISONS: usize = 64;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Field,
        op: CompareOp,
        value: Literal,
    },
    In {
        field: Field,
        values: Vec<Literal>,
    },
    Contains {
        field: Field,
        text: String,
        /// Where the string was written (its opening quote).
        position: usize,
    },
    IsEmpty {
        field: Field,
        negated: bool,
    },
    Between {
        field: Field,
        low: Literal,
        high: Literal,
    },
}

/// A field as written, with where it was written (for the errors of typing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub position: usize,
}

/// A value as written, with where it was written: typing refuses a value of the wrong type (`amount
/// > 'abc'`) at the value, not at the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: Value,
    /// Byte offset of its first token (the `-` of a negative number, `today` of `today - 3d`).
    pub position: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    /// As written (`-12.50`): exact, typed by the field it is compared with.
    Number(String),
    Bool(bool),
    Relative(Relative),
}

/// A date relative to the caller's today, resolved in their time zone when compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relative {
    /// Today moved by `days` (weeks and months in `unit`).
    Today {
        offset: i64,
        unit: Unit,
    },
    This(Period),
    Last(Period),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    Weeks,
    Months,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Week,
    Month,
    Quarter,
    Year,
}

/// Why a condition does not parse: where (byte offset into the text), what would have been
/// accepted there, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct ParseError {
    pub position: usize,
    pub expected: Vec<&'static str>,
    pub found: String,
    pub message: String,
}

impl ParseError {
    fn new(position: usize, expected: &[&'static str], found: impl Into<String>) -> Self {
        let found = found.into();
        let message = if expected.is_empty() {
            format!("unexpected {found}")
        } else {
            format!("expected {}, found {found}", expected.join(" or "))
        };
        ParseError {
            position,
            expected: expected.to_vec(),
            found,
            message,
        }
    }

    /// A condition that parses but does not type (unknown field, operator or value the field's
    /// kind refuses): same shape, so callers report both alike (`422`, `invalid_filter`).
    fn typing(position: usize, expected: &[&'static str], found: String, message: String) -> Self {
        ParseError {
            position,
            expected: expected.to_vec(),
            found,
            message,
        }
    }

    fn limit(position: usize, message: String) -> Self {
        ParseError {
            position,
            expected: Vec::new(),
            found: String::new(),
            message,
        }
    }
}
