//! Tokens → [`Expr`], by recursive descent over the grammar in the crate docs, counting depth
//! and comparisons as it goes.

use crate::lexer::{Tok, Token, tokens};
use crate::{
    CompareOp, Expr, Field, Literal, MAX_COMPARISONS, MAX_DEPTH, MAX_LEN, ParseError, Period,
    Relative, Unit, Value,
};

/// Parses a condition (see the crate docs for the grammar).
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.len() > MAX_LEN {
        return Err(ParseError::limit(
            MAX_LEN,
            format!("a condition may be at most {MAX_LEN} bytes long"),
        ));
    }
    let mut p = Parser {
        tokens: tokens(text)?,
        at: 0,
        depth: 0,
        comparisons: 0,
    };
    let expr = p.expr()?;
    p.expect_end()?;
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    comparisons: usize,
}

const VALUE: &[&str] = &["a string", "a number", "true", "false", "a relative date"];

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn fail<T>(&self, expected: &[&'static str]) -> Result<T, ParseError> {
        let t = self.peek();
        Err(ParseError::new(t.position, expected, t.tok.describe()))
    }

    /// Whether the next token is the keyword `word`; consumes it if so.
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(word)) {
            self.next();
            return true;
        }
        false
    }

    fn op(&mut self, op: &str) -> bool {
        if matches!(self.peek().tok, Tok::Op(o) if o == op) {
            self.next();
            return true;
        }
        false
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        match self.peek().tok {
            Tok::End => Ok(()),
            _ => self.fail(&["'and'", "'or'", "the end"]),
        }
    }

    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::limit(
                self.peek().position,
                format!("a condition may nest at most {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.deeper()?;
        let mut terms = vec![self.term()?];
        while self.keyword("or") {
            terms.push(self.term()?);
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut factors = vec![self.factor()?];
        while self.keyword("and") {
            factors.push(self.factor()?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Expr::And(factors)
        })
    }

    fn factor(&mut self) -> Result<Expr, ParseError> {
        if self.keyword("not") {
            self.deeper()?;
            let inner = self.factor()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.op("(") {
            let inner = self.expr()?;
            if !self.op(")") {
                return self.fail(&["')'", "'and'", "'or'"]);
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let field = match self.peek().clone() {
            Token {
                tok: Tok::Word(name),
                position,
            } if !is_reserved(&name) => {
                self.next();
                Field { name, position }
            }
            _ => return self.fail(&["a field name", "'not'", "'('"]),
        };
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ParseError::limit(
                field.position,
                format!("a condition may hold at most {MAX_COMPARISONS} comparisons"),
            ));
        }
        for (op, cmp) in [
            ("=", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ] {
            if self.op(op) {
                let value = self.value()?;
                return Ok(Expr::Compare {
                    field,
                    op: cmp,
                    value,
                });
            }
        }
        if self.keyword("in") {
            if !self.op("(") {
                return self.fail(&["'('"]);
            }
            let mut values = vec![self.value()?];
            while self.op(",") {
                values.push(self.value()?);
            }
            if !self.op(")") {
                return self.fail(&["','", "')'"]);
            }
            return Ok(Expr::In { field, values });
        }
        if self.keyword("contains") {
            let Token {
                tok: Tok::Text(text),
                position,
            } = self.peek().clone()
            else {
                return self.fail(&["a string"]);
            };
            self.next();
            return Ok(Expr::Contains {
                field,
                text,
                position,
            });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("empty") {
                return self.fail(&["'empty'"]);
            }
            return Ok(Expr::IsEmpty { field, negated });
        }
        if self.keyword("between") {
            let low = self.value()?;
            if !self.keyword("and") {
                return self.fail(&["'and'"]);
            }
            let high = self.value()?;
            return Ok(Expr::Between { field, low, high });
        }
        self.fail(&[
            "'='",
            "'!='",
            "'<'",
            "'<='",
            "'>'",
            "'>='",
            "'in'",
            "'contains'",
            "'is'",
            "'between'",
        ])
    }

    fn value(&mut self) -> Result<Literal, ParseError> {
        let position = self.peek().position;
        let value = self.bare_value()?;
        Ok(Literal { value, position })
    }

    fn bare_value(&mut self) -> Result<Value, ParseError> {
        let negative = self.op("-");
        let token = self.peek().clone();
        let value = match token.tok {
            Tok::Number(n) => Value::Number(if negative { format!("-{n}") } else { n }),
            Tok::Text(s) if !negative => Value::Text(s),
            Tok::Word(w) if !negative => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "today" => {
                    self.next();
                    return self.today();
                }
                word => match period(word) {
                    Some(relative) => Value::Relative(relative),
                    None => return self.fail(VALUE),
                },
            },
            _ if negative => return self.fail(&["a number"]),
            _ => return self.fail(VALUE),
        };
        self.next();
        Ok(value)
    }

    /// After `today`: an optional `+ 3d` / `- 2w` / `+ 1m`.
    fn today(&mut self) -> Result<Value, ParseError> {
        let sign = if self.op("+") {
            1
        } else if self.op("-") {
            -1
        } else {
            return Ok(Value::Relative(Relative::Today {
                offset: 0,
                unit: Unit::Days,
            }));
        };
        let amount = match self.peek().tok.clone() {
            Tok::Number(n) if !n.contains('.') => match n.parse::<i64>() {
                Ok(v) if v <= 100_000 => v,
                _ => return self.fail(&["a whole number up to 100000"]),
            },
            _ => return self.fail(&["a whole number of days, weeks or months"]),
        };
        self.next();
        let unit = match &self.peek().tok {
            Tok::Word(u) if u.eq_ignore_ascii_case("d") => Unit::Days,
            Tok::Word(u) if u.eq_ignore_ascii_case("w") => Unit::Weeks,
            Tok::Word(u) if u.eq_ignore_ascii_case("m") => Unit::Months,
            _ => return self.fail(&["'d'", "'w'", "'m'"]),
        };
        self.next();
        Ok(Value::Relative(Relative::Today {
            offset: sign * amount,
            unit,
        }))
    }
}

fn period(word: &str) -> Option<Relative> {
    let (this, name) = match word.split_once('_')? {
        ("this", name) => (true, name),
        ("last", name) => (false, name),
        _ => return None,
    };
    let period = match name {
        "week" => Period::Week,
        "month" => Period::Month,
        "quarter" => Period::Quarter,
        "year" => Period::Year,
        _ => return None,
    };
    Some(if this {
        Relative::This(period)
    } else {
        Relative::Last(period)
    })
}

/// Words that cannot name a field (a field called `and` would make `a = 1 and and = 2` ambiguous).
fn is_reserved(word: &str) -> bool {
    [
        "and", "or", "not", "in", "contains", "is", "empty", "between", "true", "false", "today",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, position: usize) -> Field {
        Field {
            name: name.into(),
            position,
        }
    }

    fn lit(value: Value, position: usize) -> Literal {
        Literal { value, position }
    }

    #[test]
    fn precedence_grouping_and_every_form() {
        let e = parse("grade in ('A', 'B') and industry contains '制造' or not (phone is empty)")
            .unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::And(vec![
                    Expr::In {
                        field: field("grade", 0),
                        values: vec![
                            lit(Value::Text("A".into()), 10),
                            lit(Value::Text("B".into()), 15),
                        ],
                    },
                    Expr::Contains {
                        field: field("industry", 24),
                        text: "制造".into(),
                        position: 42,
                    },
                ]),
                Expr::Not(Box::new(Expr::IsEmpty {
                    field: field("phone", 59), // bytes: 制造 is six
                    negated: false,
                })),
            ])
        );
        let e = parse("amount BETWEEN -10.5 AND 20 and name != 'O''Brien' and vip = TRUE").unwrap();
        let Expr::And(parts) = e else { panic!("{e:?}") };
        assert_eq!(
            parts[0],
            Expr::Between {
                field: field("amount", 0),
                low: lit(Value::Number("-10.5".into()), 15),
                high: lit(Value::Number("20".into()), 25),
            }
        );
        assert!(
            matches!(&parts[1], Expr::Compare { op: CompareOp::Ne, value: Literal { value: Value::Text(t), position: 40 }, .. } if t == "O'Brien")
        );
        assert!(matches!(
            &parts[2],
            Expr::Compare {
                value: Literal {
                    value: Value::Bool(true),
                    position: 61,
                },
                ..
            }
        ));
        assert!(matches!(
            parse("next_follow_up_at is not empty").unwrap(),
            Expr::IsEmpty { negated: true, .. }
        ));
    }

    #[test]
    fn relative_dates() {
        let value = |text: &str| match parse(text).unwrap() {
            Expr::Compare { value, .. } => value.value,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            value("created_at >= today - 30d"),
            Value::Relative(Relative::Today {
                offset: -30,
                unit: Unit::Days
            })
        );
        assert_eq!(
            value("due < today + 2w"),
            Value::Relative(Relative::Today {
                offset: 2,
                unit: Unit::Weeks
            })
        );
        assert_eq!(
            value("closed_at >= last_quarter"),
            Value::Relative(Relative::Last(Period::Quarter))
        );
        assert_eq!(
            value("created_at = THIS_MONTH"),
            Value::Relative(Relative::This(Period::Month))
        );
    }

    #[test]
    fn values_carry_where_they_were_written() {
        let literal = |text: &str| match parse(text).unwrap() {
            Expr::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(literal("due < today + 2w").position, 6);
        assert_eq!(
            literal("a = - 3"),
            lit(Value::Number("-3".into()), 4),
            "a negative number starts at its sign"
        );
        assert_eq!(literal("a >= 'x'").position, 5);
        let Expr::Contains { position, .. } = parse("a contains 'x'").unwrap() else {
            panic!()
        };
        assert_eq!(position, 11);
    }

    #[test]
    fn errors_say_where_what_was_expected_and_what_was_found() {
        let err = parse("grade = 'A' and").unwrap_err();
        assert_eq!((err.position, err.found.as_str()), (15, "the end"));
        assert!(err.expected.contains(&"a field name"), "{err:?}");

        let err = parse("grade == 'A'").unwrap_err();
        assert_eq!(err.position, 7);
        assert_eq!(
            err.message,
            "expected a string or a number or true or false or a relative date, found '='"
        );

        let err = parse("grade in ('A' 'B')").unwrap_err();
        assert_eq!(
            (err.position, err.expected.clone()),
            (14, vec!["','", "')'"])
        );

        let err = parse("name contains 12").unwrap_err();
        assert_eq!((err.position, err.expected.clone()), (14, vec!["a string"]));
        let err = parse("name contains").unwrap_err();
        assert_eq!((err.position, err.found.as_str()), (13, "the end"));

        let err = parse("(grade = 'A'").unwrap_err();
        assert_eq!(err.position, 12);

        let err = parse("name = 'unterminated").unwrap_err();
        assert_eq!(
            (err.position, err.expected.clone()),
            (7, vec!["a closing '"])
        );

        let err = parse("grade ~ 'A'").unwrap_err();
        assert_eq!((err.position, err.found.as_str()), (6, "the character '~'"));

        let err = parse("and = 1").unwrap_err();
        assert_eq!((err.position, err.found.as_str()), (0, "'and'"));

        let err = parse("due < today + 2y").unwrap_err();
        assert_eq!(
            (err.position, err.expected.clone()),
            (15, vec!["'d'", "'w'", "'m'"])
        );

        let err = parse("grade = 'A' grade = 'B'").unwrap_err();
        assert_eq!(err.position, 12);
        assert_eq!(err.expected, ["'and'", "'or'", "the end"]);
    }

    /// Whatever arrives in a URL: every mix of the language's pieces (and broken ones) parses
    /// or fails with a position inside the text, never panics.
    #[test]
    fn any_text_parses_or_fails_with_a_position_and_never_panics() {
        let pieces = [
            "a",
            "=",
            "'x'",
            "(",
            ")",
            "and",
            "or",
            "not",
            "in",
            ",",
            "1.5",
            "-",
            "+",
            "today",
            "3d",
            "is",
            "empty",
            "between",
            "contains",
            "'",
            "制",
            "!=",
            ">=",
            "this_month",
            "",
        ];
        let mut state: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            // xorshift: deterministic, so a failure is reproducible.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 12) as usize;
            let mut s = state;
            for _ in 0..len {
                s = s.rotate_left(5).wrapping_mul(0x2545F4914F6CDD1D);
                text.push_str(pieces[(s % pieces.len() as u64) as usize]);
                text.push(' ');
            }
            if let Err(err) = parse(&text) {
                assert!(err.position <= text.len(), "{text:?}: {err:?}");
                assert!(!err.message.is_empty());
            }
        }
    }

    #[test]
    fn size_depth_and_comparisons_are_bounded() {
        let long = format!("name = '{}'", "x".repeat(MAX_LEN));
        assert!(
            parse(&long)
                .unwrap_err()
                .message
                .contains("at most 4096 bytes")
        );

        let deep = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).unwrap_err().message.contains("levels deep"));
        let nots = format!("{}a = 1", "not ".repeat(MAX_DEPTH + 1));
        assert!(parse(&nots).unwrap_err().message.contains("levels deep"));
        let ok = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());

        let many = vec!["a = 1"; MAX_COMPARISONS + 1].join(" or ");
        assert!(
            parse(&many)
                .unwrap_err()
                .message
                .contains("at most 64 comparisons")
        );
        let enough = vec!["a = 1"; MAX_COMPARISONS].join(" or ");
        assert!(parse(&enough).is_ok());
    }
}
