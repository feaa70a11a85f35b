//! Text → tokens, each with its byte position. Words (field names and keywords alike) are one
//! token kind; the parser tells keywords by their lower-cased text.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A field name or a keyword: `[A-Za-z_][A-Za-z0-9_.]*`.
    Word(String),
    Text(String),
    /// Digits with an optional fraction, as written (the sign is an operator).
    Number(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub position: usize,
}

impl Tok {
    /// How an error names it.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Text(_) => "a string".into(),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Op(op) => format!("'{op}'"),
            Tok::End => "the end".into(),
        }
    }
}

const OPERATORS: [&str; 11] = ["<=", ">=", "!=", "=", "<", ">", "(", ")", ",", "+", "-"];

pub(crate) fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some((_, '\'')) if matches!(chars.peek(), Some((_, '\''))) => {
                        chars.next();
                        s.push('\'');
                    }
                    Some((_, '\'')) => break,
                    Some((_, c)) => s.push(c),
                    None => {
                        return Err(ParseError::new(at, &["a closing '"], "the end"));
                    }
                }
            }
            out.push(Token {
                tok: Tok::Text(s),
                position: at,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let mut n = String::new();
            let mut seen_point = false;
            while let Some(&(_, d)) = chars.peek() {
                if d.is_ascii_digit() || (d == '.' && !seen_point) {
                    seen_point |= d == '.';
                    n.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if n.ends_with('.') {
                return Err(ParseError::new(at, &["digits after '.'"], n));
            }
            out.push(Token {
                tok: Tok::Number(n),
                position: at,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut w = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                    w.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Word(w),
                position: at,
            });
            continue;
        }
        let rest = &text[at..];
        let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
            return Err(ParseError::new(at, &[], format!("the character '{c}'")));
        };
        for _ in 0..op.chars().count() {
            chars.next();
        }
        out.push(Token {
            tok: Tok::Op(op),
            position: at,
        });
    }
    out.push(Token {
        tok: Tok::End,
        position: text.len(),
    });
    Ok(out)
}
