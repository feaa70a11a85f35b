//! [`Expr`] → [`Condition`]: every field looked up in the resource's [`Schema`], every operator
//! checked against the field's [`Kind`], every value turned into the field's type, and every
//! relative date resolved (in the caller's time zone, at the caller's now) into absolute bounds.
//!
//! The typed tree is deliberately small: a handful of primitive tests (compare, contains, has an
//! element, is empty) joined by `and`, `or` and `not`. Everything richer (`in`, `between`, a
//! period such as `this_month`) is expanded into those here, once, so the SQL of
//! [`Condition::push_sql`] and the evaluation of [`Condition::matches`] only have to agree on
//! the primitives.

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{CompareOp, Expr, Field, Literal, ParseError, Period, Relative, Unit, Value, parse};

/// What a condition may know of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    pub kind: Kind,
    pub column: Column,
}

/// The kinds of value a field holds, as far as conditions are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Also e-mail, phone, url: compared exactly; `contains` is case-insensitive (ASCII letters).
    Text,
    /// An `i64`.
    Integer,
    /// An exact decimal ([`Decimal`]).
    Decimal,
    Bool,
    /// A calendar date.
    Date,
    /// An instant.
    DateTime,
    /// One of the options, compared exactly; a value that is not an option is a typing error.
    Choice(Vec<String>),
    /// A set of the options.
    MultiChoice(Vec<String>),
    /// A list of free text values (tags).
    TextList,
    /// A UUID (owner, department, lookups).
    Reference,
}

/// Where a field's value is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A built-in column of the table, by its compile-time name (pasted into SQL as written: it
    /// never comes from a request). Postgres types by kind: Text/Choice: `text`; Integer:
    /// `bigint`; Decimal: `numeric`; Bool: `boolean`; Date: `date`; DateTime: `timestamptz`;
    /// TextList and MultiChoice: `text[]`; Reference: `uuid`.
    Builtin(&'static str),
    /// A custom field: a key of the table's `custom jsonb` column (in SQL a quoted literal when
    /// it is an identifier, `[a-z][a-z0-9_]*`, which an index on the field can match; bound
    /// otherwise). Stored JSON by kind: Text/Choice/Reference: string (a reference in the canonical
    /// lower-case hyphenated form); Integer: number; Decimal: string (`"12.50"`); Bool:
    /// `true`/`false`; Date: `"YYYY-MM-DD"`; DateTime: `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (UTC, always
    /// 6 fraction digits, so text order is time order); MultiChoice/TextList: array of strings.
    /// An absent key or JSON `null` is empty.
    Custom(String),
}

/// What a resource says of a field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(FieldType),
    /// The field exists but the caller may not see it (field rules): it cannot be filtered on,
    /// or a filter would reveal its values one guess at a time.
    Hidden,
    Unknown,
}

/// The fields of one resource, as one caller may use them.
pub trait Schema {
    /// `name` as written in the condition (`grade`, `custom.region`).
    fn field(&self, name: &str) -> Lookup;
}

/// Any `Fn(&str) -> Lookup` is a schema (handy for services that look fields up in two places,
/// and for tests).
impl<F: Fn(&str) -> Lookup> Schema for F {
    fn field(&self, name: &str) -> Lookup {
        self(name)
    }
}

/// A condition typed against a resource's fields, with its relative dates resolved: ready to be
/// appended to SQL ([`Condition::push_sql`]) or run against a record ([`Condition::matches`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The fields used, each once, in order of first use.
    pub(crate) targets: Vec<Target>,
    pub(crate) root: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub name: String,
    pub field: FieldType,
}

impl Target {
    pub fn is_list(&self) -> bool {
        matches!(self.field.kind, Kind::TextList | Kind::MultiChoice(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A primitive test of `targets[target]`.
    Test {
        target: usize,
        test: Test,
    },
}

/// The primitive tests both back ends implement. Each is false on an empty value (except
/// [`Test::Empty`], which is never empty itself).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// `value <op> operand`. The operand's variant says how the stored value is read and
    /// compared (see [`Scalar`]).
    Compare(CompareOp, Scalar),
    /// A text value holds this substring, ASCII letters folded to lower case (the needle is kept
    /// folded).
    Contains(String),
    /// A list has an element equal to this.
    Has(String),
    /// A list has an element equal to any of these.
    HasAny(Vec<String>),
    /// Scalars: absent or null. Lists: anything but a non-empty array.
    Empty,
}

/// An operand, in the representation the field's storage is compared in. Custom fields whose
/// JSON is a string (dates, times, references, and booleans read through `->>`) are compared as
/// [`Scalar::Text`] in the stored form; custom numbers as [`Scalar::Decimal`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// Compared by code point (`COLLATE "C"`).
    Text(String),
    Integer(i64),
    Decimal(Decimal),
    Bool(bool),
    Date(NaiveDate),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

impl Condition {
    /// The names of the fields the condition uses, each once, in order of first use: what a
    /// renamed or removed field would break.
    pub fn fields(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }
}

/// Parses and checks `text`: the one call a service needs for a `filter=` or a stored rule.
pub fn compile<S: Schema + ?Sized>(
    text: &str,
    schema: &S,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Condition, ParseError> {
    check(&parse(text)?, schema, tz, now)
}

/// Types `expr` against `schema`. Relative dates are resolved in `tz` at `now` (the caller's time
/// zone and the time of the request), so a stored condition must be checked again at each use.
pub fn check<S: Schema + ?Sized>(
    expr: &Expr,
    schema: &S,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Condition, ParseError> {
    let mut checker = Checker {
        schema,
        tz,
        today: now.with_timezone(&tz).date_naive(),
        targets: Vec::new(),
    };
    let root = checker.expr(expr)?;
    Ok(Condition {
        targets: checker.targets,
        root,
    })
}

struct Checker<'s, S: ?Sized> {
    schema: &'s S,
    tz: Tz,
    today: NaiveDate,
    targets: Vec<Target>,
}

/// A value resolved against a field: one value, or (dates and times) a period `[start, end)`.
enum Operand {
    Point(Scalar),
    Span(Scalar, Scalar),
}

impl<S: Schema + ?Sized> Checker<'_, S> {
    fn expr(&mut self, expr: &Expr) -> Result<Node, ParseError> {
        Ok(match expr {
            Expr::Or(parts) => Node::Or(self.all(parts)?),
            Expr::And(parts) => Node::And(self.all(parts)?),
            Expr::Not(inner) => Node::Not(Box::new(self.expr(inner)?)),
            Expr::Compare { field, op, value } => {
                let t = self.target(field)?;
                if self.targets[t].is_list() {
                    return Err(self.refuse(field, op_name(*op), "; use contains, in or is empty"));
                }
                if is_ordering(*op) && !orderable(&self.targets[t].field.kind) {
                    return Err(self.refuse(field, op_name(*op), ""));
                }
                let operand = self.operand(t, value)?;
                compare(t, *op, operand)
            }
            Expr::In { field, values } => {
                let t = self.target(field)?;
                if self.targets[t].is_list() {
                    let mut texts = Vec::with_capacity(values.len());
                    for value in values {
                        texts.push(self.element(t, value)?);
                    }
                    return Ok(test(t, Test::HasAny(texts)));
                }
                let mut any = Vec::with_capacity(values.len());
                for value in values {
                    let operand = self.operand(t, value)?;
                    any.push(compare(t, CompareOp::Eq, operand));
                }
                one_or(any, Node::Or)
            }
            Expr::Contains {
                field,
                text,
                position,
            } => {
                let t = self.target(field)?;
                let literal = Literal {
                    value: Value::Text(text.clone()),
                    position: *position,
                };
                match self.targets[t].field.kind {
                    Kind::Text => {
                        self.text(t, &literal, text)?;
                        test(t, Test::Contains(text.to_ascii_lowercase()))
                    }
                    Kind::TextList | Kind::MultiChoice(_) => {
                        test(t, Test::Has(self.element(t, &literal)?))
                    }
                    _ => return Err(self.refuse(field, "'contains'", "")),
                }
            }
            Expr::IsEmpty { field, negated } => {
                let t = self.target(field)?;
                let empty = test(t, Test::Empty);
                if *negated {
                    Node::Not(Box::new(empty))
                } else {
                    empty
                }
            }
            Expr::Between { field, low, high } => {
                let t = self.target(field)?;
                if self.targets[t].is_list() || !orderable(&self.targets[t].field.kind) {
                    return Err(self.refuse(field, "'between'", ""));
                }
                let low = match self.operand(t, low)? {
                    Operand::Point(v) | Operand::Span(v, _) => v,
                };
                let high = match self.operand(t, high)? {
                    Operand::Point(v) => Test::Compare(CompareOp::Le, v),
                    Operand::Span(_, end) => Test::Compare(CompareOp::Lt, end),
                };
                Node::And(vec![
                    test(t, Test::Compare(CompareOp::Ge, low)),
                    test(t, high),
                ])
            }
        })
    }

    fn all(&mut self, parts: &[Expr]) -> Result<Vec<Node>, ParseError> {
        parts.iter().map(|p| self.expr(p)).collect()
    }

    /// The index of `field` in the targets, looking it up the first time.
    fn target(&mut self, field: &Field) -> Result<usize, ParseError> {
        if let Some(i) = self.targets.iter().position(|t| t.name == field.name) {
            return Ok(i);
        }
        let found = format!("'{}'", field.name);
        match self.schema.field(&field.name) {
            Lookup::Found(ft) => {
                self.targets.push(Target {
                    name: field.name.clone(),
                    field: ft,
                });
                Ok(self.targets.len() - 1)
            }
            Lookup::Hidden => Err(ParseError::typing(
                field.position,
                &["a field that can be filtered on"],
                found,
                format!("field {} cannot be used in a condition", field.name),
            )),
            Lookup::Unknown => Err(ParseError::typing(
                field.position,
                &["a field of the resource"],
                found,
                format!("unknown field {}", field.name),
            )),
        }
    }

    /// An operator the field's kind does not support, refused at the field.
    fn refuse(&self, field: &Field, op: &str, hint: &str) -> ParseError {
        let kind = self
            .targets
            .iter()
            .find(|t| t.name == field.name)
            .map_or("", |t| kind_name(&t.field.kind));
        ParseError::typing(
            field.position,
            &[],
            op.to_string(),
            format!("{op} cannot be used on {kind} field {}{hint}", field.name),
        )
    }

    /// A value of the wrong type for target `t`, refused at the value.
    fn wrong(&self, t: usize, literal: &Literal, expected: &[&'static str]) -> ParseError {
        let target = &self.targets[t];
        let found = describe(&literal.value);
        let message = match literal.value {
            Value::Relative(_) => format!(
                "a relative date can only be compared with a date or date-time field; {} is {} {} field",
                target.name,
                if target.field.kind == Kind::Integer {
                    "an"
                } else {
                    "a"
                },
                kind_name(&target.field.kind)
            ),
            _ => format!(
                "expected {} for {} field {}, found {found}",
                expected.join(" or "),
                kind_name(&target.field.kind),
                target.name
            ),
        };
        ParseError::typing(literal.position, expected, found, message)
    }

    fn out_of_range(&self, t: usize, literal: &Literal, what: &str) -> ParseError {
        ParseError::typing(
            literal.position,
            &[],
            describe(&literal.value),
            format!("{what} out of range for field {}", self.targets[t].name),
        )
    }

    /// A string that Postgres can hold (no NUL character).
    fn text<'a>(&self, t: usize, literal: &Literal, s: &'a str) -> Result<&'a str, ParseError> {
        if s.contains('\0') {
            return Err(ParseError::typing(
                literal.position,
                &[],
                "a NUL character".into(),
                format!(
                    "a value for field {} cannot contain a NUL character",
                    self.targets[t].name
                ),
            ));
        }
        Ok(s)
    }

    /// An element of a list field (`contains` or `in`): a string, an option for a
    /// multi-choice.
    fn element(&self, t: usize, literal: &Literal) -> Result<String, ParseError> {
        let Value::Text(s) = &literal.value else {
            return Err(self.wrong(t, literal, &["a string"]));
        };
        let s = self.text(t, literal, s)?;
        if let Kind::MultiChoice(options) = &self.targets[t].field.kind {
            self.option(t, literal, options, s)?;
        }
        Ok(s.to_string())
    }

    fn option(
        &self,
        t: usize,
        literal: &Literal,
        options: &[String],
        s: &str,
    ) -> Result<(), ParseError> {
        if options.iter().any(|o| o == s) {
            return Ok(());
        }
        let listed: Vec<String> = options.iter().map(|o| format!("'{o}'")).collect();
        Err(ParseError::typing(
            literal.position,
            &["one of the field's options"],
            describe(&literal.value),
            format!(
                "'{s}' is not an option of {} (its options: {})",
                self.targets[t].name,
                listed.join(", ")
            ),
        ))
    }

    /// `literal` as a value of scalar target `t`, in the representation its storage compares.
    fn operand(&self, t: usize, literal: &Literal) -> Result<Operand, ParseError> {
        let target = &self.targets[t];
        let custom = matches!(target.field.column, Column::Custom(_));
        let operand = match (&target.field.kind, &literal.value) {
            (Kind::Text, Value::Text(s)) => {
                Operand::Point(Scalar::Text(self.text(t, literal, s)?.into()))
            }
            (Kind::Text, _) => return Err(self.wrong(t, literal, &["a string"])),
            (Kind::Choice(options), Value::Text(s)) => {
                self.option(t, literal, options, s)?;
                Operand::Point(Scalar::Text(s.clone()))
            }
            (Kind::Choice(_), _) => return Err(self.wrong(t, literal, &["a string"])),
            (Kind::Integer, Value::Number(n)) if !n.contains('.') => match n.parse::<i64>() {
                Ok(i) => Operand::Point(Scalar::Integer(i)),
                Err(_) => return Err(self.out_of_range(t, literal, "integer")),
            },
            (Kind::Integer, _) => return Err(self.wrong(t, literal, &["a whole number"])),
            (Kind::Decimal, Value::Number(n)) => match Decimal::from_str_exact(n) {
                Ok(d) => Operand::Point(Scalar::Decimal(d)),
                Err(_) => return Err(self.out_of_range(t, literal, "number")),
            },
            (Kind::Decimal, _) => return Err(self.wrong(t, literal, &["a number"])),
            (Kind::Bool, Value::Bool(b)) => Operand::Point(Scalar::Bool(*b)),
            (Kind::Bool, _) => return Err(self.wrong(t, literal, &["true", "false"])),
            (Kind::Reference, Value::Text(s)) => match Uuid::parse_str(s) {
                Ok(u) => Operand::Point(Scalar::Uuid(u)),
                Err(_) => return Err(self.wrong(t, literal, &["an id (a UUID)"])),
            },
            (Kind::Reference, _) => return Err(self.wrong(t, literal, &["an id (a UUID)"])),
            (Kind::Date, value) => self.date(t, literal, value)?,
            (Kind::DateTime, value) => self.date_time(t, literal, value)?,
            (Kind::TextList | Kind::MultiChoice(_), _) => {
                return Err(self.wrong(t, literal, &["a string"]));
            }
        };
        Ok(if custom {
            match operand {
                Operand::Point(v) => Operand::Point(stored(v)),
                Operand::Span(a, b) => Operand::Span(stored(a), stored(b)),
            }
        } else {
            operand
        })
    }

    const DATE: &'static [&'static str] = &["a date 'YYYY-MM-DD'", "a relative date"];
    const TIME: &'static [&'static str] = &[
        "a date 'YYYY-MM-DD'",
        "a time 'YYYY-MM-DDTHH:MM:SSZ'",
        "a relative date",
    ];

    /// For a date field: a date or `today ± n` is one date; `this_month` and the like are the
    /// period's dates `[first, first of the next)`.
    fn date(&self, t: usize, literal: &Literal, value: &Value) -> Result<Operand, ParseError> {
        let range = |d: Option<NaiveDate>| match d {
            Some(d) if in_range(d) => Ok(Scalar::Date(d)),
            _ => Err(self.out_of_range(t, literal, "date")),
        };
        match value {
            Value::Text(s) => match parse_date(s) {
                Some(d) => Ok(Operand::Point(range(Some(d))?)),
                None => Err(self.wrong(t, literal, Self::DATE)),
            },
            Value::Relative(r) => match resolve(*r, self.today) {
                Resolved::Day(d) => Ok(Operand::Point(range(d)?)),
                Resolved::Period(start, end) => Ok(Operand::Span(range(start)?, range(end)?)),
            },
            _ => Err(self.wrong(t, literal, Self::DATE)),
        }
    }

    /// For a date-time field: an instant with its offset is one instant; a date, `today ± n`
    /// and the periods are `[local midnight of the first day, local midnight after the last)`,
    /// in the caller's time zone.
    fn date_time(&self, t: usize, literal: &Literal, value: &Value) -> Result<Operand, ParseError> {
        let instant = |d: Option<NaiveDate>| match d.and_then(|d| local_start(self.tz, d)) {
            Some(at) if instant_in_range(at) => Ok(Scalar::Time(at)),
            _ => Err(self.out_of_range(t, literal, "date")),
        };
        let days = |start: Option<NaiveDate>, end: Option<NaiveDate>| {
            Ok(Operand::Span(instant(start)?, instant(end)?))
        };
        match value {
            Value::Text(s) => {
                if let Some(d) = parse_date(s) {
                    return days(Some(d), d.checked_add_days(Days::new(1)));
                }
                let Ok(at) = DateTime::parse_from_rfc3339(s) else {
                    return Err(self.wrong(t, literal, Self::TIME));
                };
                if at.nanosecond() % 1000 != 0 || at.nanosecond() >= 1_000_000_000 {
                    return Err(ParseError::typing(
                        literal.position,
                        &["a time to the microsecond"],
                        describe(value),
                        format!(
                            "a time for field {} may have at most 6 fraction digits, and no leap second",
                            self.targets[t].name
                        ),
                    ));
                }
                let at = at.to_utc();
                if !instant_in_range(at) {
                    return Err(self.out_of_range(t, literal, "time"));
                }
                Ok(Operand::Point(Scalar::Time(at)))
            }
            Value::Relative(r) => match resolve(*r, self.today) {
                Resolved::Day(d) => days(d, d.and_then(|d| d.checked_add_days(Days::new(1)))),
                Resolved::Period(start, end) => days(start, end),
            },
            _ => Err(self.wrong(t, literal, Self::TIME)),
        }
    }
}

fn test(target: usize, test: Test) -> Node {
    Node::Test { target, test }
}

fn one_or(mut nodes: Vec<Node>, many: fn(Vec<Node>) -> Node) -> Node {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        many(nodes)
    }
}

/// `field <op> operand`. A period `[s, e)` is compared as a whole: `=` within it, `!=` outside
/// it, `<` before it, `<=` before its end, `>` after it, `>=` from its start.
fn compare(t: usize, op: CompareOp, operand: Operand) -> Node {
    use CompareOp::*;
    match operand {
        Operand::Point(v) => test(t, Test::Compare(op, v)),
        Operand::Span(start, end) => match op {
            Eq => Node::And(vec![
                test(t, Test::Compare(Ge, start)),
                test(t, Test::Compare(Lt, end)),
            ]),
            Ne => Node::Or(vec![
                test(t, Test::Compare(Lt, start)),
                test(t, Test::Compare(Ge, end)),
            ]),
            Lt => test(t, Test::Compare(Lt, start)),
            Le => test(t, Test::Compare(Lt, end)),
            Gt => test(t, Test::Compare(Ge, end)),
            Ge => test(t, Test::Compare(Ge, start)),
        },
    }
}

/// A custom field's operand in the form its JSON holds (see [`Column::Custom`]).
fn stored(v: Scalar) -> Scalar {
    match v {
        Scalar::Integer(i) => Scalar::Decimal(Decimal::from(i)),
        Scalar::Bool(b) => Scalar::Text(b.to_string()),
        Scalar::Date(d) => Scalar::Text(d.format("%Y-%m-%d").to_string()),
        Scalar::Time(at) => Scalar::Text(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Scalar::Uuid(u) => Scalar::Text(u.hyphenated().to_string()),
        v @ (Scalar::Text(_) | Scalar::Decimal(_)) => v,
    }
}

fn is_ordering(op: CompareOp) -> bool {
    !matches!(op, CompareOp::Eq | CompareOp::Ne)
}

fn orderable(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Text | Kind::Integer | Kind::Decimal | Kind::Date | Kind::DateTime
    )
}

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "'='",
        CompareOp::Ne => "'!='",
        CompareOp::Lt => "'<'",
        CompareOp::Le => "'<='",
        CompareOp::Gt => "'>'",
        CompareOp::Ge => "'>='",
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Integer => "integer",
        Kind::Decimal => "decimal",
        Kind::Bool => "yes/no",
        Kind::Date => "date",
        Kind::DateTime => "date-time",
        Kind::Choice(_) => "choice",
        Kind::MultiChoice(_) => "multi-choice",
        Kind::TextList => "text list",
        Kind::Reference => "reference",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Text(s) => format!("'{s}'"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => b.to_string(),
        Value::Relative(_) => "a relative date".into(),
    }
}

/// Strictly `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::from_ymd_opt(
        s[0..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..10].parse().ok()?,
    )
}

/// Dates both back ends hold alike, and whose stored text (`YYYY-MM-DD`) sorts as they do.
fn in_range(d: NaiveDate) -> bool {
    (1..=9999).contains(&d.year())
}

/// Instants whose fixed-form UTC text has a four-digit year (so text order stays time order).
fn instant_in_range(at: DateTime<Utc>) -> bool {
    (0..=9999).contains(&at.year())
}

pub(crate) enum Resolved {
    Day(Option<NaiveDate>),
    /// `[start, end)`.
    Period(Option<NaiveDate>, Option<NaiveDate>),
}

/// A relative date, as dates in the caller's calendar. `None`: past the calendar's end.
pub(crate) fn resolve(r: Relative, today: NaiveDate) -> Resolved {
    let months = |d: NaiveDate, n: i64| {
        let m = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
        if n >= 0 {
            d.checked_add_months(m)
        } else {
            d.checked_sub_months(m)
        }
    };
    let days = |d: NaiveDate, n: i64| d.checked_add_signed(TimeDelta::try_days(n)?);
    let (period, back) = match r {
        Relative::Today { offset, unit } => {
            return Resolved::Day(match unit {
                Unit::Days => days(today, offset),
                Unit::Weeks => days(today, offset * 7),
                Unit::Months => months(today, offset),
            });
        }
        Relative::This(p) => (p, false),
        Relative::Last(p) => (p, true),
    };
    let start = match period {
        Period::Week => {
            today.checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))
        }
        Period::Month => today.with_day(1),
        Period::Quarter => NaiveDate::from_ymd_opt(today.year(), today.month0() / 3 * 3 + 1, 1),
        Period::Year => NaiveDate::from_ymd_opt(today.year(), 1, 1),
    };
    // The period next to `d`'s, earlier or later (weeks start on Monday, quarters in January,
    // April, July and October).
    let step = |d: NaiveDate, earlier: bool| match period {
        Period::Week if earlier => d.checked_sub_days(Days::new(7)),
        Period::Week => d.checked_add_days(Days::new(7)),
        _ => {
            let n = Months::new(match period {
                Period::Quarter => 3,
                Period::Year => 12,
                _ => 1,
            });
            if earlier {
                d.checked_sub_months(n)
            } else {
                d.checked_add_months(n)
            }
        }
    };
    if back {
        Resolved::Period(start.and_then(|s| step(s, true)), start)
    } else {
        Resolved::Period(start, start.and_then(|s| step(s, false)))
    }
}

/// The first instant of `date` in `tz`: local midnight, or in a zone whose clocks jump over
/// midnight (a daylight-saving change at 00:00), the first minute of the day that exists. Of two
/// midnights (clocks set back over it), the earlier.
pub(crate) fn local_start(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight: NaiveDateTime = date.and_hms_opt(0, 0, 0)?;
    (0..24 * 60).find_map(|minute| {
        let local = midnight + TimeDelta::minutes(minute);
        tz.from_local_datetime(&local)
            .earliest()
            .map(|at| at.to_utc())
    })
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::Sao_Paulo;
    use chrono_tz::Asia::Shanghai;
    use chrono_tz::UTC;
    use serde_json::json;
    use sqlx::{Postgres, QueryBuilder};

    use super::*;

    fn schema(name: &str) -> Lookup {
        let builtin = |kind, column| {
            Lookup::Found(FieldType {
                kind,
                column: Column::Builtin(column),
            })
        };
        let custom = |kind, key: &str| {
            Lookup::Found(FieldType {
                kind,
                column: Column::Custom(key.into()),
            })
        };
        match name {
            "name" => builtin(Kind::Text, "name"),
            "grade" => builtin(Kind::Choice(vec!["A".into(), "B".into()]), "grade"),
            "age" => builtin(Kind::Integer, "age"),
            "amount" => builtin(Kind::Decimal, "amount"),
            "vip" => builtin(Kind::Bool, "vip"),
            "born" => builtin(Kind::Date, "born"),
            "seen_at" => builtin(Kind::DateTime, "seen_at"),
            "tags" => builtin(Kind::TextList, "tags"),
            "colors" => builtin(Kind::MultiChoice(vec!["red".into()]), "colors"),
            "owner" => builtin(Kind::Reference, "owner"),
            "custom.region" => custom(Kind::Choice(vec!["north".into()]), "region"),
            "custom.day" => custom(Kind::Date, "day"),
            "custom.at" => custom(Kind::DateTime, "at"),
            "custom.score" => custom(Kind::Integer, "score"),
            "custom.ok" => custom(Kind::Bool, "ok"),
            "custom.ref" => custom(Kind::Reference, "ref"),
            "secret" => Lookup::Hidden,
            _ => Lookup::Unknown,
        }
    }

    /// 17:30 UTC on 31 March 2026: already 1 April (a new month and quarter) in Shanghai.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 31, 17, 30, 0).unwrap()
    }

    fn typed(text: &str, tz: Tz) -> Condition {
        compile(text, &schema, tz, now()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    /// The error of `text`, checking it is at the byte offset of `at`'s first occurrence.
    fn refused(text: &str, at: &str) -> ParseError {
        let err = compile(text, &schema, UTC, now()).expect_err(text);
        let position = text
            .find(at)
            .unwrap_or_else(|| panic!("{at:?} in {text:?}"));
        assert_eq!(err.position, position, "{text}: {err:?}");
        err
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn cmp(op: CompareOp, v: Scalar) -> Node {
        test(0, Test::Compare(op, v))
    }

    #[test]
    fn unknown_and_hidden_fields_are_refused_at_the_field() {
        let err = refused("name = 'x' and custom.foo = 1", "custom.foo");
        assert_eq!(err.message, "unknown field custom.foo");
        assert_eq!(err.found, "'custom.foo'");
        let err = refused("not (secret is empty)", "secret");
        assert_eq!(err.message, "field secret cannot be used in a condition");
        assert_eq!(
            err.to_string(),
            "field secret cannot be used in a condition at position 5"
        );
    }

    #[test]
    fn operators_the_kind_does_not_support_are_refused_at_the_field() {
        for (text, message) in [
            (
                "born contains '2026'",
                "'contains' cannot be used on date field born",
            ),
            ("vip < true", "'<' cannot be used on yes/no field vip"),
            (
                "grade between 'A' and 'B'",
                "'between' cannot be used on choice field grade",
            ),
            ("grade >= 'A'", "'>=' cannot be used on choice field grade"),
            (
                "tags = 'x'",
                "'=' cannot be used on text list field tags; use contains, in or is empty",
            ),
            (
                "colors < 'red'",
                "'<' cannot be used on multi-choice field colors; use contains, in or is empty",
            ),
            (
                "owner > '00000000-0000-0000-0000-000000000000'",
                "'>' cannot be used on reference field owner",
            ),
            (
                "amount contains '1'",
                "'contains' cannot be used on decimal field amount",
            ),
            (
                "tags between 'a' and 'b'",
                "'between' cannot be used on text list field tags",
            ),
        ] {
            let field = text.split(' ').next().unwrap();
            let err = refused(&format!("name = 'x' and {text}"), field);
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_at_the_value() {
        let err = refused("amount > 'abc'", "'abc'");
        assert_eq!(err.expected, ["a number"]);
        assert_eq!(err.found, "'abc'");
        assert_eq!(
            err.message,
            "expected a number for decimal field amount, found 'abc'"
        );

        let err = refused("grade in ('A', 'Z')", "'Z'");
        assert_eq!(
            err.message,
            "'Z' is not an option of grade (its options: 'A', 'B')"
        );
        let err = refused("colors contains 'pink'", "'pink'");
        assert!(err.message.contains("not an option of colors"), "{err:?}");
        let err = refused("custom.region = 'south'", "'south'");
        assert!(err.message.contains("not an option"), "{err:?}");

        let err = refused("age = 9223372036854775808", "9223");
        assert_eq!(err.message, "integer out of range for field age");
        refused("age = -9223372036854775809", "-");
        assert!(compile("age = -9223372036854775808", &schema, UTC, now()).is_ok());
        let err = refused("age > 3.5", "3.5");
        assert_eq!(err.expected, ["a whole number"]);
        refused("amount = 123456789012345678901234567890", "1234");

        let err = refused("age > today - 3d", "today");
        assert_eq!(
            err.message,
            "a relative date can only be compared with a date or date-time field; age is an integer field"
        );
        refused("name = this_month", "this_month");

        for (text, at) in [
            ("born = '2026-02-30'", "'2026"),
            ("born = '2026-2-3'", "'2026"),
            ("born = '2026-02-03T00:00:00Z'", "'2026"),
            ("born between '2026-01-01' and 3", "3"),
            ("seen_at > '2026-01-01T00:00:00'", "'2026"),
            ("seen_at > 'yesterday'", "'yes"),
            ("vip = 'true'", "'true'"),
            ("name = 12", "12"),
            ("name in ('a', true)", "true"),
            ("owner = 'not-a-uuid'", "'not"),
            ("tags contains 'a' or tags in ('a', 2)", "2"),
            ("custom.score = 'x'", "'x'"),
        ] {
            let err = refused(text, at);
            assert!(err.message.starts_with("expected "), "{text}: {err:?}");
        }

        let err = refused("seen_at = '2026-01-01T00:00:00.1234567Z'", "'2026");
        assert!(err.message.contains("at most 6 fraction digits"), "{err:?}");
        let err = refused("born < today + 100000m", "today");
        assert_eq!(err.message, "date out of range for field born");
        refused("born < '0000-12-31'", "'0000");
        let err = refused("name = 'a\0b'", "'a");
        assert!(err.message.contains("NUL"), "{err:?}");
        refused("name contains 'a\0'", "'a");
    }

    #[test]
    fn relative_dates_resolve_in_the_callers_zone_across_a_month_boundary() {
        use CompareOp::*;
        let root = |text: &str, tz| typed(text, tz).root;

        // Shanghai's today is 1 April; UTC's is still 31 March.
        assert_eq!(
            root("born = today", Shanghai),
            cmp(Eq, Scalar::Date(ymd(2026, 4, 1)))
        );
        assert_eq!(
            root("born = today", UTC),
            cmp(Eq, Scalar::Date(ymd(2026, 3, 31)))
        );
        assert_eq!(
            root("born = this_month", Shanghai),
            Node::And(vec![
                cmp(Ge, Scalar::Date(ymd(2026, 4, 1))),
                cmp(Lt, Scalar::Date(ymd(2026, 5, 1))),
            ])
        );
        assert_eq!(
            root("born != last_month", Shanghai),
            Node::Or(vec![
                cmp(Lt, Scalar::Date(ymd(2026, 3, 1))),
                cmp(Ge, Scalar::Date(ymd(2026, 4, 1))),
            ])
        );
        assert_eq!(
            root("born >= this_quarter", Shanghai),
            cmp(Ge, Scalar::Date(ymd(2026, 4, 1)))
        );
        assert_eq!(
            root("born >= this_quarter", UTC),
            cmp(Ge, Scalar::Date(ymd(2026, 1, 1)))
        );
        assert_eq!(
            root("born < last_quarter", Shanghai),
            cmp(Lt, Scalar::Date(ymd(2026, 1, 1)))
        );
        // Months clamp at the month's end: 31 March less a month is 28 February.
        assert_eq!(
            root("born = today - 1m", UTC),
            cmp(Eq, Scalar::Date(ymd(2026, 2, 28)))
        );
        // Weeks start on Monday: 1 April 2026 is a Wednesday.
        assert_eq!(
            root("born <= this_week", Shanghai),
            cmp(Lt, Scalar::Date(ymd(2026, 4, 6)))
        );
        assert_eq!(
            root("born > last_year", Shanghai),
            cmp(Ge, Scalar::Date(ymd(2026, 1, 1)))
        );

        // Date-times: the periods run from local midnight to local midnight (UTC+8).
        assert_eq!(
            root("seen_at = today", Shanghai),
            Node::And(vec![
                cmp(Ge, Scalar::Time(utc(2026, 3, 31, 16, 0))),
                cmp(Lt, Scalar::Time(utc(2026, 4, 1, 16, 0))),
            ])
        );
        assert_eq!(
            root("seen_at >= today - 1d", Shanghai),
            cmp(Ge, Scalar::Time(utc(2026, 3, 30, 16, 0)))
        );
        assert_eq!(
            root("seen_at > this_week", Shanghai),
            cmp(Ge, Scalar::Time(utc(2026, 4, 5, 16, 0)))
        );
        assert_eq!(
            root("seen_at between last_month and this_month", Shanghai),
            Node::And(vec![
                cmp(Ge, Scalar::Time(utc(2026, 2, 28, 16, 0))),
                cmp(Lt, Scalar::Time(utc(2026, 4, 30, 16, 0))),
            ])
        );
        // A date written out is that local day; an instant is itself.
        assert_eq!(
            root("seen_at < '2026-04-01'", Shanghai),
            cmp(Lt, Scalar::Time(utc(2026, 3, 31, 16, 0)))
        );
        assert_eq!(
            root(
                "seen_at between '2026-03-01T00:00:00+08:00' and '2026-04-01'",
                Shanghai
            ),
            Node::And(vec![
                cmp(Ge, Scalar::Time(utc(2026, 2, 28, 16, 0))),
                cmp(Lt, Scalar::Time(utc(2026, 4, 1, 16, 0))),
            ])
        );
        // Custom fields compare in their stored text form.
        assert_eq!(
            root("custom.at >= today", Shanghai),
            cmp(Ge, Scalar::Text("2026-03-31T16:00:00.000000Z".into()))
        );
        assert_eq!(
            root("custom.day = last_month", Shanghai),
            Node::And(vec![
                cmp(Ge, Scalar::Text("2026-03-01".into())),
                cmp(Lt, Scalar::Text("2026-04-01".into())),
            ])
        );

        // And in memory, at the boundaries.
        let today = typed("seen_at = today", Shanghai);
        for (at, inside) in [
            ("2026-03-31T15:59:59.999999Z", false),
            ("2026-03-31T16:00:00+00:00", true),
            ("2026-04-01T23:59:59.999999+08:00", true),
            ("2026-04-02T00:00:00+08:00", false),
        ] {
            assert_eq!(today.matches(&json!({ "seen_at": at })), inside, "{at}");
        }
    }

    #[test]
    fn a_day_whose_clocks_skip_midnight_starts_at_its_first_minute() {
        // São Paulo went from 00:00 straight to 01:00 (UTC-2) on 4 November 2018.
        assert_eq!(
            local_start(Sao_Paulo, ymd(2018, 11, 4)),
            Some(utc(2018, 11, 4, 3, 0))
        );
        assert_eq!(
            local_start(Shanghai, ymd(2026, 4, 1)),
            Some(utc(2026, 3, 31, 16, 0))
        );
    }

    #[test]
    fn fields_lists_each_field_once_in_order_of_use() {
        // A schema behind `dyn` works as well as a closure.
        let dynamic: &dyn Schema = &schema;
        let c = compile(
            "(grade = 'A' or custom.region is empty) and not grade = 'B' and born < today",
            dynamic,
            UTC,
            now(),
        )
        .unwrap();
        assert_eq!(c.fields(), ["grade", "custom.region", "born"]);
    }

    #[test]
    fn values_are_bound_never_pasted_and_keys_only_as_identifiers() {
        let c = typed(
            "name = 'x'') OR true --' and custom.region = 'north' and name contains '50%_' \
             and amount > 12.50 and custom.day < '2026-01-01'",
            UTC,
        );
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new("");
        c.push_sql(&mut b);
        let sql = b.sql().as_str().to_string();
        for pasted in ["OR true", "north", "50", "12", "2026"] {
            assert!(!sql.contains(pasted), "{pasted} in {sql}");
        }
        // The expression an index on the field is built on.
        assert!(sql.contains("(custom ->> 'region')"), "{sql}");
        assert!(sql.starts_with('(') && sql.ends_with(')'), "{sql}");
        assert!(sql.contains("$5") && !sql.contains("$6"), "{sql}");
        // A key that is not an identifier is bound, whatever it holds.
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new("");
        crate::sql::push_key_for_tests("x') OR true --", &mut b);
        assert_eq!(b.sql().as_str(), "$1");
    }

    #[test]
    fn empty_values_fail_every_comparison_and_not_makes_that_true() {
        let yes = |text: &str, record: serde_json::Value| typed(text, UTC).matches(&record);
        for record in [json!({}), json!({ "age": null, "custom": null })] {
            assert!(!yes("age > 1", record.clone()));
            assert!(!yes("age != 1", record.clone()));
            assert!(!yes("age in (1, 2)", record.clone()));
            assert!(yes("not age > 1", record.clone()));
            assert!(yes("age is empty", record.clone()));
            assert!(!yes("age is not empty", record.clone()));
            assert!(!yes("custom.score != 1", record.clone()));
            assert!(yes("custom.score is empty", record.clone()));
            assert!(yes("tags is empty", record.clone()));
            assert!(!yes("tags contains 'x'", record.clone()));
        }
        assert!(yes("tags is empty", json!({ "tags": [] })));
        assert!(!yes("tags is empty", json!({ "tags": ["x"] })));
        assert!(yes(
            "tags contains 'x' and tags in ('y', 'x')",
            json!({ "tags": ["x"] })
        ));
        // A list's `contains` is exact; a text's is case-insensitive for ASCII letters only.
        assert!(!yes("tags contains 'X'", json!({ "tags": ["x"] })));
        assert!(yes(
            "name contains 'ACME c'",
            json!({ "name": "Big acme Corp" })
        ));
        assert!(!yes("name contains 'école'", json!({ "name": "ÉCOLE" })));
        assert!(yes("name contains ''", json!({ "name": "" })));
        // Decimals are exact, whatever their scale or JSON form.
        assert!(yes("amount = 12.5", json!({ "amount": "12.50" })));
        assert!(yes("amount = 12.5", json!({ "amount": 12.5 })));
        assert!(yes(
            "amount > 0.1",
            json!({ "amount": "0.1000000000000000000000000001" })
        ));
        assert!(!yes("amount > 0.1", json!({ "amount": "0.10" })));
        // References compare as ids (built-in) or canonical text (custom).
        let id = "0192A000-0000-7000-8000-000000000001";
        assert!(yes(
            &format!("owner = '{id}'"),
            json!({ "owner": id.to_lowercase() })
        ));
        assert!(yes(
            &format!("custom.ref = '{id}'"),
            json!({ "custom": { "ref": id.to_lowercase() } })
        ));
        assert!(yes("custom.ok = true", json!({ "custom": { "ok": true } })));
        assert!(!yes(
            "custom.ok != false",
            json!({ "custom": { "ok": null } })
        ));
    }
}
