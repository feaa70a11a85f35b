//! [`Condition`] → a Postgres boolean expression, appended to a [`QueryBuilder`].
//!
//! Only two kinds of text ever reach the SQL: this file's constants and the `&'static str` of a
//! [`Column::Builtin`] and custom keys that are identifiers (`push_key`: so indexes on them
//! match); every value, and any other key, is a bound parameter.
//!
//! Under a `NOT`, every primitive test is closed with `COALESCE(…, false)`, so an empty (NULL)
//! value makes it false rather than unknown, and `NOT`, `AND`, `OR` then behave as two-valued
//! logic, as they do in [`Condition::matches`]. Outside any `NOT` a comparison is left bare
//! (`(custom ->> 'region') COLLATE "C" = $1`): built of `AND` and `OR` alone, an expression is
//! TRUE for exactly the rows where it would be TRUE with the `COALESCE`s (a NULL there is not
//! TRUE either way), and a bare comparison is one an index can answer.

use sqlx::{Postgres, QueryBuilder};

use crate::Column;
use crate::CompareOp;
use crate::typed::{Condition, Node, Scalar, Target, Test};

impl Condition {
    /// Appends one parenthesised boolean expression; the caller writes `AND ` before it. The
    /// table's columns are referred to unqualified (built-in names as given, custom fields in
    /// `custom`).
    pub fn push_sql(&self, b: &mut QueryBuilder<Postgres>) {
        b.push("(");
        self.push_node(&self.root, true, b);
        b.push(")");
    }

    /// `positive`: no `NOT` above `node` (see the module docs).
    fn push_node(&self, node: &Node, positive: bool, b: &mut QueryBuilder<Postgres>) {
        match node {
            Node::And(parts) | Node::Or(parts) => {
                let join = if matches!(node, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                b.push("(");
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        b.push(join);
                    }
                    self.push_node(part, positive, b);
                }
                b.push(")");
            }
            Node::Not(inner) => {
                b.push("(NOT ");
                self.push_node(inner, false, b);
                b.push(")");
            }
            Node::Test { target, test } => {
                let target = &self.targets[*target];
                if target.is_list() {
                    push_list_test(target, test, b);
                } else {
                    push_scalar_test(target, test, positive, b);
                }
            }
        }
    }
}

fn push_scalar_test(target: &Target, test: &Test, positive: bool, b: &mut QueryBuilder<Postgres>) {
    match test {
        Test::Compare(op, operand) => {
            b.push(if positive { "(" } else { "COALESCE(" });
            push_value(target, operand, b);
            b.push(match op {
                CompareOp::Eq => " = ",
                CompareOp::Ne => " <> ",
                CompareOp::Lt => " < ",
                CompareOp::Le => " <= ",
                CompareOp::Gt => " > ",
                CompareOp::Ge => " >= ",
            });
            push_operand(operand, b);
            b.push(if positive { ")" } else { ", false)" });
        }
        Test::Contains(needle) => {
            // `lower` under the "C" collation folds ASCII letters only, whatever the database's
            // locale: the one folding memory can reproduce exactly (see the crate docs).
            b.push("COALESCE(lower(");
            push_raw(target, b);
            b.push(" COLLATE \"C\") LIKE ");
            b.push_bind(format!("%{}%", escape_like(needle)));
            b.push(", false)");
        }
        Test::Empty => {
            b.push("(");
            push_raw(target, b);
            b.push(" IS NULL)");
        }
        // Typing gives lists' tests to lists only; a scalar has no element.
        Test::Has(_) | Test::HasAny(_) => {
            b.push("false");
        }
    }
}

fn push_list_test(target: &Target, test: &Test, b: &mut QueryBuilder<Postgres>) {
    match (&target.field.column, test) {
        (Column::Builtin(name), Test::Has(x)) => {
            b.push("COALESCE(").push(*name).push(" @> ");
            b.push_bind(vec![x.clone()]);
            b.push(", false)");
        }
        (Column::Builtin(name), Test::HasAny(xs)) => {
            b.push("COALESCE(").push(*name).push(" && ");
            b.push_bind(xs.clone());
            b.push(", false)");
        }
        (Column::Builtin(name), Test::Empty) => {
            b.push("(COALESCE(cardinality(")
                .push(*name)
                .push("), 0) = 0)");
        }
        // jsonb's `?` and `?|` also match object keys and a lone string: the type test keeps
        // them to arrays' elements, as memory reads them.
        (Column::Custom(key), Test::Has(x)) => {
            push_is_array(key, b);
            b.push(" AND (custom -> ");
            push_key(key, b);
            b.push(") ? ");
            b.push_bind(x.clone());
            b.push(", false)");
        }
        (Column::Custom(key), Test::HasAny(xs)) => {
            push_is_array(key, b);
            b.push(" AND (custom -> ");
            push_key(key, b);
            b.push(") ?| ");
            b.push_bind(xs.clone());
            b.push(", false)");
        }
        (Column::Custom(key), Test::Empty) => {
            b.push("(NOT ");
            push_is_array(key, b);
            b.push(" AND (custom -> ");
            push_key(key, b);
            b.push(") <> '[]'::jsonb, false))");
        }
        // Typing refuses comparisons and `contains`-as-text on lists.
        (_, Test::Compare(..) | Test::Contains(_)) => {
            b.push("false");
        }
    }
}

/// `COALESCE(jsonb_typeof(custom -> $k) = 'array'` (the caller closes it).
fn push_is_array(key: &str, b: &mut QueryBuilder<Postgres>) {
    b.push("COALESCE(jsonb_typeof(custom -> ");
    push_key(key, b);
    b.push(") = 'array'");
}

/// A custom field's key: a quoted literal when it is an identifier (`[a-z][a-z0-9_]*`, at most
/// 64 bytes: nothing in it can end the literal), so the expression is the one an index on the
/// field is built on (`(custom ->> 'region')`) — a bound key leaves the planner, under a
/// generic plan, an expression no index matches. Any other key is bound.
fn push_key(key: &str, b: &mut QueryBuilder<Postgres>) {
    let bytes = key.as_bytes();
    let identifier = (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    if identifier {
        b.push("'").push(key).push("'");
    } else {
        b.push_bind(key.to_string());
    }
}

/// The stored value as text (`name`, `(custom ->> $k)`).
fn push_raw(target: &Target, b: &mut QueryBuilder<Postgres>) {
    match &target.field.column {
        Column::Builtin(name) => {
            b.push(*name);
        }
        Column::Custom(key) => {
            b.push("(custom ->> ");
            push_key(key, b);
            b.push(")");
        }
    }
}

/// The stored value, as the operand's type compares it.
fn push_value(target: &Target, operand: &Scalar, b: &mut QueryBuilder<Postgres>) {
    push_raw(target, b);
    match (&target.field.column, operand) {
        // Code point order, whatever the column's or database's collation.
        (_, Scalar::Text(_)) => {
            b.push(" COLLATE \"C\"");
        }
        (Column::Builtin(_), _) => {}
        // Typing only gives custom fields text and decimal operands (their JSON is a string or
        // a number); the casts keep any other operand well-typed all the same.
        (Column::Custom(_), Scalar::Integer(_) | Scalar::Decimal(_)) => {
            b.push("::numeric");
        }
        (Column::Custom(_), Scalar::Bool(_)) => {
            b.push("::boolean");
        }
        (Column::Custom(_), Scalar::Date(_)) => {
            b.push("::date");
        }
        (Column::Custom(_), Scalar::Time(_)) => {
            b.push("::timestamptz");
        }
        (Column::Custom(_), Scalar::Uuid(_)) => {
            b.push("::uuid");
        }
    }
}

fn push_operand(operand: &Scalar, b: &mut QueryBuilder<Postgres>) {
    match operand {
        Scalar::Text(s) => {
            b.push_bind(s.clone());
        }
        Scalar::Integer(i) => {
            b.push_bind(*i);
        }
        // Bound as text and cast: exact, and no decimal feature needed in sqlx.
        Scalar::Decimal(d) => {
            b.push("CAST(");
            b.push_bind(d.to_string());
            b.push(" AS numeric)");
        }
        Scalar::Bool(v) => {
            b.push_bind(*v);
        }
        Scalar::Date(d) => {
            b.push_bind(*d);
        }
        Scalar::Time(at) => {
            b.push_bind(*at);
        }
        Scalar::Uuid(u) => {
            b.push_bind(*u);
        }
    }
}

/// `LIKE` pattern text matching `text` literally (the default escape is `\`).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) fn push_key_for_tests(key: &str, b: &mut QueryBuilder<Postgres>) {
    push_key(key, b)
}
