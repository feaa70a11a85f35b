//! Exports: every record of a resource the caller may export, streamed as NDJSON or CSV while
//! the owning service pages through them (nothing is held in memory beyond one page).
//!
//! The records are the service's EXPORT scope with its field rules; hidden fields are left out
//! of NDJSON objects and out of the CSV columns. A failure after the first byte cannot change the
//! status any more: the body then ends abruptly (the chunked transfer is not completed), so a
//! client never mistakes a cut-off export for a whole one.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use crm_access::{Access, Action, Resource};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Error;

/// How an export is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON record per line (`application/x-ndjson`).
    #[default]
    Ndjson,
    /// RFC 4180 CSV with a header row (`text/csv`); cells that a spreadsheet would run as a
    /// formula are prefixed with `'`.
    Csv,
}

/// Streams `pages` (records already converted to the public model) as `format`.
pub fn respond<T, S>(
    pages: S,
    access: &Access,
    resource: Resource,
    columns: &'static [&'static str],
    format: ExportFormat,
    filename: &str,
) -> Response
where
    T: Serialize,
    S: Stream<Item = Result<Vec<T>, Error>> + Send + 'static,
{
    let hidden: Vec<String> = access
        .get(resource, Action::Export)
        .map(|s| s.hidden_fields().map(String::from).collect())
        .unwrap_or_default();
    let columns: Vec<&'static str> = columns
        .iter()
        .copied()
        .filter(|c| !hidden.iter().any(|h| h == c))
        .collect();
    let header = match format {
        ExportFormat::Csv => Some(Bytes::from(csv_row(columns.iter().map(|c| c.to_string())))),
        ExportFormat::Ndjson => None,
    };
    let body = pages.map(move |page| {
        let page = page.map_err(|err| {
            tracing::warn!(error = %err, "export cut off");
            std::io::Error::other("export cut off")
        })?;
        let mut out = String::new();
        for record in page {
            let mut value = serde_json::to_value(record).map_err(std::io::Error::other)?;
            match format {
                ExportFormat::Ndjson => {
                    if let Some(object) = value.as_object_mut() {
                        for h in &hidden {
                            object.remove(h);
                        }
                    }
                    out.push_str(&value.to_string());
                    out.push('\n');
                }
                ExportFormat::Csv => {
                    out.push_str(&csv_row(columns.iter().map(|c| cell(&value[*c]))));
                }
            }
        }
        Ok::<_, std::io::Error>(Bytes::from(out))
    });
    let body = futures::stream::iter(header.map(Ok)).chain(body);
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Ndjson => "application/x-ndjson",
    };
    let extension = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Ndjson => "ndjson",
    };
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}.{extension}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One JSON value as a CSV cell: text as is, lists joined with `;`, null empty.
fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// An RFC 4180 row, CRLF-terminated. Cells starting like a formula (`= + - @`, tab, CR) get a
/// leading `'` so a spreadsheet shows them instead of running them (CSV injection).
fn csv_row(cells: impl Iterator<Item = String>) -> String {
    let mut row = cells
        .map(|c| {
            let c = if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{c}")
            } else {
                c
            };
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let row = csv_row(
            [
                "plain",
                "a,b",
                "say \"hi\"",
                "=1+2",
                "-3",
                "line\nbreak",
                "",
            ]
            .map(String::from)
            .into_iter(),
        );
        assert_eq!(
            row,
            "plain,\"a,b\",\"say \"\"hi\"\"\",'=1+2,'-3,\"line\nbreak\",\r\n"
        );
    }

    #[test]
    fn json_values_become_cells() {
        assert_eq!(cell(&serde_json::json!(null)), "");
        assert_eq!(cell(&serde_json::json!(["vip", "erp"])), "vip;erp");
        assert_eq!(cell(&serde_json::json!(3)), "3");
        assert_eq!(cell(&serde_json::json!("x")), "x");
    }
}
