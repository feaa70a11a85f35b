//! A list request of accounts or contacts, validated: its filters, and a keyset cursor bound
//! to the sort and these filters (`crm_record::page`). No I/O: the filters' SQL is
//! `super::store::push_filters`.

use crm_record::page::{Keyset, Sort};
use uuid::Uuid;

use super::domain::LifecycleStatus;
use crate::validation::{self, Violations};

/// A validated list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub keyset: Keyset,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    pub status: Option<LifecycleStatus>,
    pub text: Option<String>,
    /// Contacts and follow-ups.
    pub account_id: Option<Uuid>,
    /// A condition (ADR 0017) as sent; compiled against the record's fields and the caller's
    /// rules by the use case ([`Self::condition`] once compiled).
    pub filter: Option<String>,
    /// The compiled `filter`, set by `Records::list` before any SQL runs.
    pub condition: Option<crm_condition::Condition>,
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
    /// Empty: none.
    pub filter: &'a str,
}

impl ListQuery {
    pub fn parse(raw: RawListQuery<'_>) -> Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let owner_id = (!raw.owner_id.is_empty())
            .then(|| v.uuid("owner_id", raw.owner_id))
            .flatten();
        let account_id = (!raw.account_id.is_empty())
            .then(|| v.uuid("account_id", raw.account_id))
            .flatten();
        let tag = v.optional("tag", raw.tag, validation::MAX_TAG);
        let text = v.optional("query", raw.text, validation::MAX_NAME);
        // Checked against the fields when compiled; only its size here (a cursor carries it).
        // Not trimmed: error positions count from the text as sent.
        let filter = match raw.filter.trim() {
            "" => "",
            _ => raw.filter,
        };
        if filter.len() > crm_condition::MAX_LEN {
            v.add(
                "filter",
                format!("must be at most {} bytes", crm_condition::MAX_LEN),
            );
        }
        // A cursor is bound to these values: used with other filters, it is refused.
        let owner = owner_id.map(|u| u.to_string()).unwrap_or_default();
        let account = account_id.map(|u| u.to_string()).unwrap_or_default();
        let filters = [
            owner.as_str(),
            tag.as_deref().unwrap_or_default(),
            raw.status.map(LifecycleStatus::as_str).unwrap_or_default(),
            text.as_deref().unwrap_or_default(),
            account.as_str(),
            filter,
        ];
        let keyset = Keyset::parse(
            &mut v,
            raw.page_size,
            raw.page_token,
            raw.sort,
            raw.descending,
            &filters,
        );
        v.into_result()?;
        Ok(ListQuery {
            keyset,
            owner_id,
            tag,
            status: raw.status,
            text,
            account_id,
            filter: (!filter.is_empty()).then(|| filter.to_string()),
            condition: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_record::page::SortKey;

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
            filter: "",
        }
    }

    #[test]
    fn cursors_are_bound_to_the_filters() {
        let q = ListQuery::parse(raw("")).unwrap();
        let token = q.keyset.token_after(&SortKey {
            id: Uuid::nil(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            name: "n".into(),
            time: None,
        });
        assert!(
            ListQuery::parse(raw(&token))
                .unwrap()
                .keyset
                .after
                .is_some()
        );

        let mut other = raw(&token);
        other.tag = "vip";
        let err = ListQuery::parse(other).unwrap_err();
        assert_eq!(err.violations[0].field, "page_token");
        let mut filtered = raw(&token);
        filtered.filter = "grade = 'A'";
        let err = ListQuery::parse(filtered).unwrap_err();
        assert_eq!(err.violations[0].field, "page_token");
    }

    #[test]
    fn bad_filters_and_tokens_are_reported_together() {
        let mut bad = raw("x");
        bad.owner_id = "nobody";
        let err = ListQuery::parse(bad).unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["owner_id", "page_token"]);
    }
}
