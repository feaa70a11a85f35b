//! Strict request extractors whose failures are problem documents naming the bad field.
//!
//! - [`ApiJson`]: requires a JSON content type, honours the body limit, and reports type,
//!   unknown-field and missing-field errors with their path (`tags[2]`, `name`);
//! - [`ApiQuery`]: the same for query strings (unknown parameters are errors, repeated ones too);
//! - [`IdPath`]: a UUID path segment, or a 400 naming `id`; [`ApiPath`]: several path
//!   segments into a struct, each bad one a 400 naming it;
//! - [`IfMatch`]: the `If-Match` precondition, required (428 when missing) or optional.

use axum::extract::rejection::BytesRejection;
use axum::extract::{
    FromRequest, FromRequestParts, OptionalFromRequestParts, Path, Query, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use crm_errors::{ApiError, Code, FieldViolation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use super::error::Error;

/// Content types a JSON body may be sent with. PATCH bodies follow merge-patch rules, so that
/// media type is accepted too.
const JSON_TYPES: [&str; 2] = ["application/json", "application/merge-patch+json"];

/// A JSON body of type `T`, parsed strictly (see the module docs).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        if !is_json(request.headers()) {
            return Err(Error::UnsupportedMediaType);
        }
        // `Bytes` honours the `DefaultBodyLimit` layer set from `http.body_limit_bytes`.
        let body = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        parse_json(&body).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            JSON_TYPES
                .iter()
                .any(|t| media.trim().eq_ignore_ascii_case(t))
        })
}

/// Why a body could not be read.
pub(crate) fn body_error(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::bad_request("the request body could not be read")
    }
}

/// Parses `bytes` as one JSON value of type `T`, with errors that name the field.
///
/// The body must be a JSON object: serde would also read a struct from an array (`["Acme"]`),
/// which is not a shape this API has.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(Error::bad_request("the request body must be a JSON object")),
        None => {
            return Err(Error::bad_request(
                "the request body is empty: send a JSON object",
            ));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().clone();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, &inner.to_string()),
            _ => Error::bad_request(format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    // Trailing garbage after the value (`{"a":1} x`) is malformed JSON too.
    deserializer
        .end()
        .map_err(|err| Error::bad_request(format!("the request body is not valid JSON: {err}")))?;
    Ok(value)
}

/// A type, unknown-field or missing-field error: one violation at its path.
fn data_error(path: &serde_path_to_error::Path, message: &str) -> Error {
    // serde_json appends the position; the field path says more, and does so for every parser.
    let message = message.split(" at line ").next().unwrap_or(message);
    let mut field = render_path(path);
    // Missing and unknown fields are reported at their parent; name the field itself.
    if let Some(name) = backticked_field(message)
        && !field.ends_with(name)
    {
        field = if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        };
    }
    if field.is_empty() {
        return Error::bad_request(format!("the request body has the wrong shape: {message}"));
    }
    Error::invalid(vec![FieldViolation::new(field, message)])
}

/// `missing field `name`` / `unknown field `nmae`, expected …` → the field name.
fn backticked_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// `tags[2]`, `address.city`; empty for the root.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } => {}
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A query string of type `T` (a struct with `deny_unknown_fields`), parsed strictly.
///
/// Values are strings; numeric fields parse themselves (`model::number_from_str`) so that the
/// error names the parameter. Empty values (`?tag=`) count as absent, as HTML forms send them.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| Error::bad_request("the query string is malformed"))?;
        parse_query(pairs).map(ApiQuery)
    }
}

pub fn parse_query<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, Error> {
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        if map.contains_key(&key) {
            return Err(Error::invalid(vec![FieldViolation::new(
                key,
                "given more than once",
            )]));
        }
        map.insert(key, Value::String(value));
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|err| {
        let path = err.path().clone();
        data_error(&path, &err.into_inner().to_string())
    })
}

/// The `{id}` path segment as a UUID.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(raw) = <Path<String> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::bad_request("the path is malformed"))?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| Error::invalid(vec![FieldViolation::new("id", "must be a UUID")]))
    }
}

/// The path parameters as a struct `T` whose fields are named like the route's parameters
/// (`/roles/{id}/grants/{resource}/{action}`): a segment that is not a UUID or not one of an
/// enum's names is a 400 naming the parameter, like a bad body field.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(segments) =
            <Path<Vec<(String, String)>> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::bad_request("the path is malformed"))?;
        let map = segments
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        serde_path_to_error::deserialize(Value::Object(map))
            .map(ApiPath)
            .map_err(|err| {
                let path = err.path().clone();
                data_error(&path, &err.into_inner().to_string())
            })
    }
}

/// The `If-Match` precondition: the version the client last saw, or `*` (any version).
///
/// ETags are `"<version>"`; a weak form `W/"<version>"` is accepted too, because proxies that
/// compress responses weaken ETags and clients send back what they got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Version(i64),
}

impl IfMatch {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim();
        if value == "*" {
            return Ok(IfMatch::Any);
        }
        if value.contains(',') {
            return Err("If-Match must carry exactly one ETag");
        }
        let tag = value.strip_prefix("W/").unwrap_or(value);
        let version = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or("If-Match must be an ETag such as \"3\", or *")?;
        // Versions start at 1; 0 means "any" to the services, so it must not sneak in here.
        if version < 1 {
            return Err("If-Match must name a version of 1 or more");
        }
        Ok(IfMatch::Version(version))
    }

    /// The header as the services' `expected_version` (0 = any).
    pub fn expected_version(self) -> i64 {
        match self {
            IfMatch::Any => 0,
            IfMatch::Version(v) => v,
        }
    }

    /// The version a write expects: the one named, or for `*` the record's current one, read
    /// by `current` (awaited only then). For services whose writes need a real version.
    pub async fn or_current(
        self,
        current: impl Future<Output = Result<i64, Error>>,
    ) -> Result<i64, Error> {
        match self {
            IfMatch::Version(version) => Ok(version),
            IfMatch::Any => current.await,
        }
    }

    fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, Error> {
        let mut values = headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(if_match_error("If-Match must be sent once"));
        }
        let value = value
            .to_str()
            .map_err(|_| if_match_error("If-Match is not text"))?;
        IfMatch::parse(value).map(Some).map_err(if_match_error)
    }
}

fn if_match_error(message: &str) -> Error {
    Error::invalid(vec![FieldViolation::new("If-Match", message)])
}

/// Required: a missing `If-Match` is `428 Precondition Required`, so that a client cannot
/// overwrite a change it has not seen by forgetting the header.
impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        IfMatch::from_headers(&parts.headers)?.ok_or_else(|| {
            Error::Api(ApiError::new(
                Code::PreconditionRequired,
                "send If-Match with the ETag of the version you are changing (or *)",
            ))
        })
    }
}

/// Optional: checked when given.
impl<S: Send + Sync> OptionalFromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Error> {
        IfMatch::from_headers(&parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Real request types exercise every kind of shape error the extractors report.
    use crate::domains::customer::model::{ListAccountsParams, NewAccount};
    use axum::response::IntoResponse;

    #[test]
    fn if_match_parsing() {
        assert_eq!(IfMatch::parse("\"3\""), Ok(IfMatch::Version(3)));
        assert_eq!(IfMatch::parse("W/\"12\""), Ok(IfMatch::Version(12)));
        assert_eq!(IfMatch::parse(" \"7\" "), Ok(IfMatch::Version(7)));
        assert_eq!(IfMatch::parse("*"), Ok(IfMatch::Any));
        assert_eq!(IfMatch::Any.expected_version(), 0);
        for bad in [
            "3",
            "\"\"",
            "\"-1\"",
            "\"0\"",
            "\"3\", \"4\"",
            "\"abc\"",
            "W/3",
            "\"99999999999999999999\"",
            "",
        ] {
            assert!(IfMatch::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn if_match_sent_twice_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(header::IF_MATCH, "\"1\"".parse().unwrap());
        headers.append(header::IF_MATCH, "\"2\"".parse().unwrap());
        assert!(IfMatch::from_headers(&headers).is_err());
        assert_eq!(IfMatch::from_headers(&HeaderMap::new()).unwrap(), None);
    }

    fn violation(err: Error) -> (String, String) {
        match err {
            Error::Api(api) => {
                assert_eq!(api.code, Code::InvalidArgument);
                let v = api.violations.first().expect("a field violation");
                (v.field.clone(), v.message.clone())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        let (field, message) =
            violation(parse_json::<NewAccount>(br#"{"name":"a","tags":["x",5]}"#).unwrap_err());
        assert_eq!(field, "tags[1]");
        assert!(message.contains("invalid type"), "{message}");
        assert!(!message.contains("line"), "{message}");

        let (field, _) =
            violation(parse_json::<NewAccount>(br#"{"name":"a","nmae":"b"}"#).unwrap_err());
        assert_eq!(field, "nmae");

        let (field, _) = violation(parse_json::<NewAccount>(br#"{"name":7}"#).unwrap_err());
        assert_eq!(field, "name");

        let (field, _) =
            violation(parse_json::<NewAccount>(br#"{"lifecycle_status":"dead"}"#).unwrap_err());
        assert_eq!(field, "lifecycle_status");

        let (field, _) =
            violation(parse_json::<NewAccount>(br#"{"owner_id":"nope"}"#).unwrap_err());
        assert_eq!(field, "owner_id");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        city: String,
    }

    #[test]
    fn missing_and_nested_fields_have_full_paths() {
        let (field, message) = violation(parse_json::<Strict>(br#"{}"#).unwrap_err());
        assert_eq!(field, "name");
        assert!(message.starts_with("missing field"), "{message}");
        let (field, _) =
            violation(parse_json::<Strict>(br#"{"name":"a","inner":{}}"#).unwrap_err());
        assert_eq!(field, "inner.city");
        let (field, _) = violation(
            parse_json::<Strict>(br#"{"name":"a","inner":{"city":"x","zip":1}}"#).unwrap_err(),
        );
        assert_eq!(field, "inner.zip");
    }

    #[tokio::test]
    async fn syntax_errors_are_plain_bad_requests() {
        for body in [
            &b"{\"name\":"[..],
            b"{\"name\":\"a\"} trailing",
            b"{not json",
        ] {
            let err = parse_json::<NewAccount>(body).unwrap_err();
            let response = err.into_response();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let problem: Value = serde_json::from_slice(&bytes).unwrap();
            assert!(problem.get("errors").is_none(), "{problem}");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("not valid JSON")
            );
        }
        // Anything but an object at the root is refused, though serde would read a struct from
        // an array.
        for body in [&b"[]"[..], b"[\"Acme\"]", b"\"Acme\"", b"", b"  "] {
            assert!(
                matches!(parse_json::<NewAccount>(body), Err(Error::Api(e)) if e.violations.is_empty()),
                "{body:?}"
            );
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_strings_are_strict() {
        let q: ListAccountsParams = parse_query(pairs(&[
            ("page_size", "20"),
            ("sort", "name"),
            ("order", "desc"),
            ("tag", ""),
        ]))
        .unwrap();
        assert_eq!(q.page_size, Some(20));
        assert_eq!(q.tag, None);

        let (field, _) =
            violation(parse_query::<ListAccountsParams>(pairs(&[("page_size", "x")])).unwrap_err());
        assert_eq!(field, "page_size");
        let (field, _) =
            violation(parse_query::<ListAccountsParams>(pairs(&[("pagesize", "1")])).unwrap_err());
        assert_eq!(field, "pagesize");
        let (field, _) =
            violation(parse_query::<ListAccountsParams>(pairs(&[("sort", "email")])).unwrap_err());
        assert_eq!(field, "sort");
        let (field, _) = violation(
            parse_query::<ListAccountsParams>(pairs(&[("tag", "a"), ("tag", "b")])).unwrap_err(),
        );
        assert_eq!(field, "tag");
        let (field, _) =
            violation(parse_query::<ListAccountsParams>(pairs(&[("owner_id", "me")])).unwrap_err());
        assert_eq!(field, "owner_id");
    }

    #[test]
    fn json_content_type_is_required() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "Application/Merge-Patch+JSON".parse().unwrap(),
        );
        assert!(is_json(&headers));
    }
}
