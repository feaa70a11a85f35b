//! W3C trace context in and out of carriers: HTTP headers, gRPC metadata, key/value lists.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct PairsInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for PairsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

struct PairsExtractor<'a>(&'a [(String, String)]);

impl Extractor for PairsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

fn current() -> Context {
    tracing::Span::current().context()
}

/// Writes the current span's context into HTTP headers (outgoing calls).
pub fn inject_http(headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&current(), &mut HeaderInjector(headers))
    });
}

/// Reads a remote parent context from HTTP headers (incoming requests).
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's context into gRPC request metadata.
pub fn inject_grpc(metadata: &mut tonic::metadata::MetadataMap) {
    let mut headers = http::HeaderMap::new();
    inject_http(&mut headers);
    for (name, value) in headers.iter() {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            value.to_str().map(tonic::metadata::MetadataValue::try_from),
        ) && let Ok(value) = value
        {
            metadata.insert(key, value);
        }
    }
}

/// The current span's context as key/value pairs (`traceparent`, maybe `tracestate`), for
/// carriers such as Kafka record headers or a stored outbox row.
pub fn current_pairs() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&current(), &mut PairsInjector(&mut pairs))
    });
    pairs
}

/// Reads a context from key/value pairs (a consumed Kafka record's headers).
pub fn extract_pairs(pairs: &[(String, String)]) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&PairsExtractor(pairs)))
}

/// Makes `cx` the parent of `span` (a request or message span that continues a remote trace).
pub fn set_parent(span: &tracing::Span, cx: Context) {
    let _ = span.set_parent(cx);
}

/// The trace id (32 hex digits) in a `traceparent` value, if it is well formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn http_headers_round_trip_the_parent() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = extract_http(&headers);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id_of("garbage"), None);
    }
}
