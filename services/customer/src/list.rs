//! Cursor pagination, filters and sorting shared by account and contact lists.
//!
//! Pages are keyset-based: the cursor carries the last row's sort key and id, so a page costs an
//! index range scan however deep it is, and rows written meanwhile never shift later pages. The
//! cursor also carries the sort and a fingerprint of the filters: a cursor used with another query
//! is refused instead of silently returning the wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{LifecycleStatus, Violations};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAt,
    UpdatedAt,
    Name,
}

impl Sort {
    fn key(self) -> &'static str {
        match self {
            Sort::CreatedAt => "created_at",
            Sort::UpdatedAt => "updated_at",
            Sort::Name => "name",
        }
    }
}

/// A validated list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub page_size: i64,
    pub after: Option<Cursor>,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub text: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// Contacts only.
    pub account_id: Option<Uuid>,
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

/// The raw request fields, before validation.
pub struct RawListQuery<'a> {
    pub page_size: i32,
    pub page_token: &'a str,
    pub owner_id: &'a str,
    pub tag: &'a str,
    pub status: Option<LifecycleStatus>,
    pub text: &'a str,
    pub sort: Sort,
    pub descending: bool,
    pub account_id: &'a str,
}

impl ListQuery {
    pub fn parse(raw: RawListQuery<'_>) -> Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let page_size = match raw.page_size {
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
        let owner_id = (!raw.owner_id.is_empty())
            .then(|| v.uuid("owner_id", raw.owner_id))
            .flatten();
        let account_id = (!raw.account_id.is_empty())
            .then(|| v.uuid("account_id", raw.account_id))
            .flatten();
        let tag = v.optional("tag", raw.tag, crate::domain::MAX_TAG);
        let text = v.optional("query", raw.text, crate::domain::MAX_NAME);
        let mut query = ListQuery {
            page_size,
            after: None,
            owner_id,
            tag,
            status: raw.status,
            text,
            sort: raw.sort,
            descending: raw.descending,
            account_id,
        };
        if !raw.page_token.is_empty() {
            match Cursor::decode(raw.page_token) {
                Some(c)
                    if c.s == query.sort.key()
                        && c.d == query.descending
                        && c.f == query.fingerprint() =>
                {
                    query.after = Some(c)
                }
                Some(_) => v.add("page_token", "was issued for a different sort or filter"),
                None => v.add("page_token", "is not a valid page token"),
            }
        }
        v.into_result()?;
        Ok(query)
    }

    fn fingerprint(&self) -> String {
        let parts = [
            self.owner_id.map(|u| u.to_string()).unwrap_or_default(),
            self.tag.clone().unwrap_or_default(),
            self.status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            self.text.clone().unwrap_or_default(),
            self.account_id.map(|u| u.to_string()).unwrap_or_default(),
        ];
        // Not a secret, just a cheap equality check; FNV-1a keeps the token short.
        let mut hash: u64 = 0xcbf29ce484222325;
        for byte in parts.join("\u{1f}").bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
        format!("{hash:016x}")
    }

    /// Moves this query to the rows after the given one (exports page without tokens).
    pub fn advance(
        &mut self,
        id: Uuid,
        created: DateTime<Utc>,
        updated: DateTime<Utc>,
        name: &str,
    ) {
        self.after = Some(self.cursor(id, created, updated, name));
    }

    /// The cursor that continues after a row with this sort key.
    pub fn cursor_after(
        &self,
        id: Uuid,
        created: DateTime<Utc>,
        updated: DateTime<Utc>,
        name: &str,
    ) -> String {
        self.cursor(id, created, updated, name).encode()
    }

    fn cursor(
        &self,
        id: Uuid,
        created: DateTime<Utc>,
        updated: DateTime<Utc>,
        name: &str,
    ) -> Cursor {
        let k = match self.sort {
            Sort::CreatedAt => created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Sort::UpdatedAt => updated.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Sort::Name => name.to_string(),
        };
        Cursor {
            k,
            id,
            s: self.sort.key().into(),
            d: self.descending,
            f: self.fingerprint(),
        }
    }

    /// Appends the filters as `AND …` (after the caller's own `WHERE deleted_at IS NULL` and
    /// access predicate); a count runs with these alone.
    pub fn push_filters(&self, b: &mut QueryBuilder<Postgres>, table: &Table) {
        if let Some(owner) = self.owner_id {
            b.push(" AND owner_id = ").push_bind(owner);
        }
        if let Some(tag) = &self.tag {
            b.push(" AND tags @> ARRAY[")
                .push_bind(tag.clone())
                .push("]::text[]");
        }
        if let Some(status) = self.status {
            b.push(" AND lifecycle_status = ")
                .push_bind(status.as_str());
        }
        if let Some(account) = self.account_id {
            b.push(" AND account_id = ").push_bind(account);
        }
        if let Some(text) = &self.text {
            let pattern = format!("%{}%", escape_like(text));
            b.push(" AND (");
            for (i, col) in table.search.iter().enumerate() {
                if i > 0 {
                    b.push(" OR ");
                }
                b.push(*col).push(" ILIKE ").push_bind(pattern.clone());
            }
            b.push(")");
        }
    }

    /// Appends the cursor condition, `ORDER BY` and `LIMIT page_size + 1` (one extra row tells
    /// whether there is a next page).
    pub fn push_page(&self, b: &mut QueryBuilder<Postgres>, table: &Table) {
        let col = match self.sort {
            Sort::CreatedAt => "created_at",
            Sort::UpdatedAt => "updated_at",
            Sort::Name => table.name_column,
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
}

/// What differs between the tables a list runs over.
pub struct Table {
    pub name_column: &'static str,
    pub search: &'static [&'static str],
    /// Text columns a sharing rule's condition may test (same names as the fields).
    pub condition_columns: &'static [&'static str],
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

    fn raw(token: &str) -> RawListQuery<'_> {
        RawListQuery {
            page_size: 0,
            page_token: token,
            owner_id: "",
            tag: "",
            status: None,
            text: "",
            sort: Sort::CreatedAt,
            descending: false,
            account_id: "",
        }
    }

    #[test]
    fn cursor_round_trips_and_binds_to_the_query() {
        let q = ListQuery::parse(raw("")).unwrap();
        let token = q.cursor_after(Uuid::nil(), Utc::now(), Utc::now(), "n");
        assert!(ListQuery::parse(raw(&token)).unwrap().after.is_some());

        let mut other = raw(&token);
        other.tag = "vip";
        let err = ListQuery::parse(other).unwrap_err();
        assert_eq!(err.violations[0].field, "page_token");
    }

    #[test]
    fn garbage_tokens_are_invalid_arguments() {
        for bad in [
            "x",
            "!!!",
            &URL_SAFE_NO_PAD.encode(b"{\"k\":\"not a time\"}"),
        ] {
            let err = ListQuery::parse(raw(bad)).unwrap_err();
            assert_eq!(err.code, crm_errors::Code::InvalidArgument);
        }
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
