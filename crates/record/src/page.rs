//! Lists over a record table: the table descriptor, the caller's scope in SQL, keyset paging.
//!
//! Pages are keyset-based: the cursor carries the last row's sort key and id, so a page costs an
//! index range scan however deep it is, and rows written meanwhile never shift later pages. The
//! cursor also carries the sort and a fingerprint of the filters: a cursor used with another
//! query is refused instead of silently returning the wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_access::Scope;
use crm_errors::validation::Violations;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::field::Field;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// What a record table's lists need to know. Every name here is a compile-time constant: only
/// these ever reach SQL text; values are bound.
#[derive(Debug)]
pub struct Table {
    /// The table (`accounts`).
    pub name: &'static str,
    /// The column `Sort::Name` sorts by.
    pub name_column: &'static str,
    /// The record's own time, which `Sort::Time` sorts by (a follow-up's `occurred_at`); `None`:
    /// the record has none, and lists refuse that sort.
    pub time_column: Option<&'static str>,
    /// The columns a text query searches.
    pub search: &'static [&'static str],
    /// Text columns a sharing rule's condition may test (named as the fields are).
    pub condition_columns: &'static [&'static str],
    /// Every built-in field of the record, in the order of its JSON.
    pub fields: &'static [Field],
}

impl Table {
    /// Whether its records have a time of their own to sort by (`Sort::Time`).
    pub fn sorts_by_time(&self) -> bool {
        self.time_column.is_some()
    }

    /// The built-in field named `name`.
    pub fn field(&self, name: &str) -> Option<Field> {
        self.fields.iter().copied().find(|f| f.name() == name)
    }

    /// `SELECT <what> FROM <table> WHERE deleted_at IS NULL AND <scope>`: live rows the caller
    /// may see; filters and paging are appended by the caller.
    pub fn select(&'static self, what: &'static str, scope: &Scope) -> QueryBuilder<Postgres> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {what} FROM {} WHERE deleted_at IS NULL",
            self.name
        ));
        scope.push_predicate(&mut b, |field| {
            self.condition_columns.iter().copied().find(|c| *c == field)
        });
        b
    }

    /// Appends `AND (<col> ILIKE %text% OR …)` over the searched columns.
    pub fn push_search(&self, b: &mut QueryBuilder<Postgres>, text: &str) {
        let pattern = format!("%{}%", escape_like(text));
        b.push(" AND (");
        for (i, col) in self.search.iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push(*col).push(" ILIKE ").push_bind(pattern.clone());
        }
        b.push(")");
    }
}

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAt,
    UpdatedAt,
    Name,
    /// The record's own time ([`Table::time_column`]).
    Time,
}

impl Sort {
    fn key(self) -> &'static str {
        match self {
            Sort::CreatedAt => "created_at",
            Sort::UpdatedAt => "updated_at",
            Sort::Name => "name",
            Sort::Time => "time",
        }
    }
}

/// The paging part of a validated list request.
#[derive(Debug, Clone)]
pub struct Keyset {
    pub page_size: i64,
    pub after: Option<Cursor>,
    pub sort: Sort,
    pub descending: bool,
    /// Fingerprint of the filters, which cursors are bound to.
    fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort key of the last row seen (timestamp in RFC 3339, or the name).
    k: String,
    id: Uuid,
    s: String,
    d: bool,
    /// Fingerprint of the filters the cursor was made for.
    f: String,
}

/// The sort key of a row: its id and what each sort orders by.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    /// The record's own time, for tables that have one ([`Table::time_column`]).
    pub time: Option<DateTime<Utc>>,
}

impl Keyset {
    /// Checks `page_size` (0: the default) and `page_token` against the sort and the filters
    /// (`filters`: each filter's value, empty when unset), adding violations to `v`.
    pub fn parse(
        v: &mut Violations,
        page_size: i32,
        page_token: &str,
        sort: Sort,
        descending: bool,
        filters: &[&str],
    ) -> Self {
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if (1..=MAX_PAGE_SIZE as i32).contains(&n) => n as i64,
            _ => {
                v.add(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}"),
                );
                DEFAULT_PAGE_SIZE
            }
        };
        let mut keyset = Keyset {
            page_size,
            after: None,
            sort,
            descending,
            fingerprint: fingerprint(filters),
        };
        if !page_token.is_empty() {
            match Cursor::decode(page_token) {
                Some(c) if c.s == sort.key() && c.d == descending && c.f == keyset.fingerprint => {
                    keyset.after = Some(c)
                }
                Some(_) => v.add("page_token", "was issued for a different sort or filter"),
                None => v.add("page_token", "is not a valid page token"),
            }
        }
        keyset
    }

    /// Moves to the rows after `last` (exports page without tokens).
    pub fn advance(&mut self, last: &SortKey) {
        self.after = Some(self.cursor(last));
    }

    /// The token of the page after `last`.
    pub fn token_after(&self, last: &SortKey) -> String {
        self.cursor(last).encode()
    }

    fn cursor(&self, last: &SortKey) -> Cursor {
        let k = match self.sort {
            Sort::CreatedAt => last
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Sort::UpdatedAt => last
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Sort::Name => last.name.clone(),
            // A table without a time column never reaches here (`push_page` refuses the sort).
            Sort::Time => last
                .time
                .unwrap_or(last.created_at)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        };
        Cursor {
            k,
            id: last.id,
            s: self.sort.key().into(),
            d: self.descending,
            f: self.fingerprint.clone(),
        }
    }

    /// Appends the cursor condition, `ORDER BY` and `LIMIT page_size + 1` (one extra row tells
    /// whether there is a next page).
    ///
    /// `Sort::Time` on a table without a time column sorts by `created_at`: callers refuse that
    /// sort for such tables before they get here ([`Table::sorts_by_time`]).
    pub fn push_page(&self, b: &mut QueryBuilder<Postgres>, table: &Table) {
        let col = match self.sort {
            Sort::CreatedAt => "created_at",
            Sort::UpdatedAt => "updated_at",
            Sort::Name => table.name_column,
            Sort::Time => table.time_column.unwrap_or("created_at"),
        };
        let (op, dir) = if self.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(after) = &self.after {
            b.push(format_args!(" AND ({col}, id) {op} ("));
            match self.sort {
                Sort::Name => b.push_bind(after.k.clone()),
                _ => b.push_bind(after.k.clone()).push("::timestamptz"),
            };
            b.push(", ").push_bind(after.id).push(")");
        }
        b.push(format_args!(" ORDER BY {col} {dir}, id {dir} LIMIT "))
            .push_bind(self.page_size + 1);
    }

    /// A page from the `page_size + 1` rows a query returned: the extra row, if any, means
    /// there is a next page, which starts after the last row kept.
    pub fn page<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> SortKey,
        total: Option<i64>,
    ) -> Page<T> {
        let more = rows.len() as i64 > self.page_size;
        rows.truncate(self.page_size as usize);
        let last = rows.last().map(&key);
        Page {
            next_page_token: last
                .as_ref()
                .filter(|_| more)
                .map(|last| self.token_after(last)),
            last: last.filter(|_| more),
            items: rows,
            total,
        }
    }
}

/// A page of records and the token of the next one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
    /// When asked for: every matching record in scope.
    pub total: Option<i64>,
    /// The sort key of the last row (before field rules) when there is a next page, for
    /// exports to continue from.
    pub last: Option<SortKey>,
}

impl<T> Page<T> {
    /// The same page with its items converted (field rules applied, say).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
            total: self.total,
            last: self.last,
        }
    }
}

fn fingerprint(filters: &[&str]) -> String {
    // Not a secret, just a cheap equality check; FNV-1a keeps the token short.
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in filters.join("\u{1f}").bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{hash:016x}")
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
        // The key is bound as a timestamp for time sorts: refuse garbage here, not in Postgres.
        if cursor.s != "name" && DateTime::parse_from_rfc3339(&cursor.k).is_err() {
            return None;
        }
        Some(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(token: &str, filters: &[&str]) -> Result<Keyset, crm_errors::ApiError> {
        let mut v = Violations::default();
        let k = Keyset::parse(&mut v, 0, token, Sort::CreatedAt, false, filters);
        v.into_result().map(|()| k)
    }

    fn key(n: u128) -> SortKey {
        SortKey {
            id: Uuid::from_u128(n),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            name: format!("n{n}"),
            time: None,
        }
    }

    #[test]
    fn cursors_round_trip_and_bind_to_the_query() {
        let q = parse("", &["", "vip"]).unwrap();
        let token = q.token_after(&key(1));
        assert!(parse(&token, &["", "vip"]).unwrap().after.is_some());
        let err = parse(&token, &["", "other"]).unwrap_err();
        assert_eq!(err.violations[0].field, "page_token");
        let mut v = Violations::default();
        Keyset::parse(&mut v, 0, &token, Sort::Name, false, &["", "vip"]);
        assert_eq!(v.0[0].message, "was issued for a different sort or filter");
    }

    #[test]
    fn garbage_tokens_and_sizes_are_invalid_arguments() {
        for bad in [
            "x",
            "!!!",
            &URL_SAFE_NO_PAD.encode(b"{\"k\":\"not a time\"}"),
        ] {
            let err = parse(bad, &[]).unwrap_err();
            assert_eq!(err.code, crm_errors::Code::InvalidArgument);
        }
        let mut v = Violations::default();
        Keyset::parse(&mut v, 201, "", Sort::Name, false, &[]);
        assert_eq!(v.0[0].field, "page_size");
    }

    #[test]
    fn a_page_keeps_page_size_rows_and_says_where_the_next_starts() {
        let mut v = Violations::default();
        let q = Keyset::parse(&mut v, 2, "", Sort::Name, false, &[]);
        let page = q.page(vec![key(1), key(2), key(3)], Clone::clone, None);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.last.as_ref().unwrap().id, Uuid::from_u128(2));
        assert!(page.next_page_token.is_some());
        let last_page = q.page(vec![key(1)], Clone::clone, Some(1));
        assert!(last_page.next_page_token.is_none() && last_page.last.is_none());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
