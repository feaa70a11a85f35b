//! # crm-condition
//!
//! The condition language of [ADR 0017](../../docs/adr/0017-condition-language.md): "records
//! where …", written once for list filters, saved segments, validation and automation rules and
//! sharing conditions. This first part is the syntax: [`parse`] turns text into an [`Expr`] or a
//! [`ParseError`] that says where, what was expected and what was found. Typing against a
//! resource's fields, SQL and in-memory evaluation build on the tree.
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

mod lexer;
mod parser;

pub use parser::parse;

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
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
    },
    Contains {
        field: Field,
        text: String,
    },
    IsEmpty {
        field: Field,
        negated: bool,
    },
    Between {
        field: Field,
        low: Value,
        high: Value,
    },
}

/// A field as written, with where it was written (for the errors of typing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
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

    fn limit(position: usize, message: String) -> Self {
        ParseError {
            position,
            expected: Vec::new(),
            found: String::new(),
            message,
        }
    }
}
