//! [`Condition`] against one record's JSON, test for test what [`Condition::push_sql`] asks of
//! Postgres (the property test `tests/agree.rs` holds the two to that).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::DateTime;
use rust_decimal::Decimal;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::typed::{Condition, Node, Scalar, Target, Test, parse_date};
use crate::{Column, CompareOp};

impl Condition {
    /// Whether `record` satisfies the condition. The record is the resource's JSON: built-in
    /// column `N` at `record[N]` (timestamps as RFC 3339 strings, decimals as strings or
    /// numbers, UUIDs as strings, lists as arrays), custom key `K` at `record["custom"][K]` in
    /// the forms [`Column::Custom`] lists. Absent and `null` are empty.
    pub fn matches(&self, record: &Json) -> bool {
        self.eval(&self.root, record)
    }

    fn eval(&self, node: &Node, record: &Json) -> bool {
        match node {
            Node::And(parts) => parts.iter().all(|p| self.eval(p, record)),
            Node::Or(parts) => parts.iter().any(|p| self.eval(p, record)),
            Node::Not(inner) => !self.eval(inner, record),
            Node::Test { target, test } => {
                let target = &self.targets[*target];
                let value = read(target, record);
                if target.is_list() {
                    list_test(value, test)
                } else {
                    scalar_test(value, test)
                }
            }
        }
    }
}

/// The stored value; `None` when absent or null.
fn read<'r>(target: &Target, record: &'r Json) -> Option<&'r Json> {
    let value = match &target.field.column {
        Column::Builtin(name) => record.get(*name),
        Column::Custom(key) => record.get("custom").and_then(|c| c.get(key)),
    };
    value.filter(|v| !v.is_null())
}

fn scalar_test(value: Option<&Json>, test: &Test) -> bool {
    match test {
        Test::Empty => value.is_none(),
        Test::Contains(needle) => value
            .and_then(text)
            .is_some_and(|hay| hay.to_ascii_lowercase().contains(needle.as_str())),
        Test::Compare(op, operand) => value
            .and_then(|v| order(v, operand))
            .is_some_and(|ord| holds(*op, ord)),
        Test::Has(_) | Test::HasAny(_) => false,
    }
}

fn list_test(value: Option<&Json>, test: &Test) -> bool {
    let elements = value.and_then(Json::as_array);
    let has = |x: &str| elements.is_some_and(|a| a.iter().any(|e| e.as_str() == Some(x)));
    match test {
        Test::Has(x) => has(x),
        Test::HasAny(xs) => xs.iter().any(|x| has(x)),
        Test::Empty => elements.is_none_or(|a| a.is_empty()),
        Test::Compare(..) | Test::Contains(_) => false,
    }
}

fn holds(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord.is_eq(),
        CompareOp::Ne => ord.is_ne(),
        CompareOp::Lt => ord.is_lt(),
        CompareOp::Le => ord.is_le(),
        CompareOp::Gt => ord.is_gt(),
        CompareOp::Ge => ord.is_ge(),
    }
}

/// The stored value against the operand, read as the operand's type; `None` (so: false) when it
/// cannot be read that way.
fn order(value: &Json, operand: &Scalar) -> Option<Ordering> {
    Some(match operand {
        // `str` orders by bytes, which for UTF-8 is code point order, as `COLLATE "C"`.
        Scalar::Text(s) => text(value)?.as_ref().cmp(s.as_str()),
        Scalar::Integer(i) => number(value)?.cmp(&Decimal::from(*i)),
        Scalar::Decimal(d) => number(value)?.cmp(d),
        Scalar::Bool(b) => value.as_bool()?.cmp(b),
        Scalar::Date(d) => parse_date(value.as_str()?)?.cmp(d),
        Scalar::Time(at) => DateTime::parse_from_rfc3339(value.as_str()?)
            .ok()?
            .to_utc()
            .cmp(at),
        Scalar::Uuid(u) => Uuid::parse_str(value.as_str()?).ok()?.cmp(u),
    })
}

/// A scalar as text, as Postgres's `->>` gives it: a string itself, a boolean or number as
/// written.
fn text(value: &Json) -> Option<Cow<'_, str>> {
    match value {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Bool(b) => Some(Cow::Owned(b.to_string())),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// A number from a JSON number or a decimal string, exactly (as `::numeric` would).
fn number(value: &Json) -> Option<Decimal> {
    let written = match value {
        Json::Number(n) => Cow::Owned(n.to_string()),
        Json::String(s) => Cow::Borrowed(s.as_str()),
        _ => return None,
    };
    Decimal::from_str_exact(&written)
        .or_else(|_| Decimal::from_scientific(&written))
        .ok()
}
