//! Logs, traces and trace-context propagation for every CRM process.
//!
//! [`init`] installs, once per process:
//! - JSON logs on stdout (`CRM_LOG_FORMAT=text` for a human-readable form), filtered by `RUST_LOG`
//!   (default `info`); spans for tracing follow `CRM_TRACE_FILTER` (default `info`) on their own,
//!   so quieter logs never cut trace propagation. Request spans carry a `trace_id` field, so every log line of a request can be
//!   joined with its trace;
//! - an OpenTelemetry tracer. Spans are exported over OTLP/gRPC only when the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set and `OTEL_SDK_DISABLED` is not
//!   `true`; the exporter reads the other `OTEL_*` variables itself. Without an exporter, trace ids
//!   are still made and propagated, so events and logs stay correlated;
//! - the W3C `traceparent`/`tracestate` propagator.
//!
//! The `propagation` module moves the current context in and out of HTTP headers, gRPC metadata
//! and plain key/value lists (Kafka record headers, outbox rows).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub mod propagation;

/// Flushes pending spans when dropped: keep it alive until the process exits.
#[must_use = "dropping the guard shuts the tracer down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Export what is buffered; a collector that is gone must not block shutdown for long.
            if let Err(err) = provider.shutdown() {
                eprintln!("telemetry shutdown: {err}");
            }
        }
    }
}

fn exporter_configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    otlp_var("ENDPOINT").is_some() && !disabled
}

/// `OTEL_EXPORTER_OTLP_TRACES_<name>`, else `OTEL_EXPORTER_OTLP_<name>` (the specification's
/// precedence), when set to something: the variable's name and its value.
fn otlp_var(name: &str) -> Option<(String, String)> {
    [
        format!("OTEL_EXPORTER_OTLP_TRACES_{name}"),
        format!("OTEL_EXPORTER_OTLP_{name}"),
    ]
    .into_iter()
    .find_map(|key| {
        let value = std::env::var(&key).ok().filter(|v| !v.is_empty())?;
        Some((key, value))
    })
}

/// The OTLP/gRPC exporter the `OTEL_*` variables describe. An `https://` endpoint is verified
/// against the system's roots, or the CA in `OTEL_EXPORTER_OTLP_CERTIFICATE`, and presents
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `…_CLIENT_KEY` for mutual TLS (the specification's
/// variables, `…_TRACES_…` first); the exporter reads the endpoint, headers and timeout itself.
pub fn span_exporter() -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::WithTonicConfig as _;
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};

    // Errors name the variable that was set, so the message points at the right setting.
    let read = |(key, path): (String, String)| {
        std::fs::read(&path).map_err(|e| format!("{key}: cannot read {path}: {e}"))
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if otlp_var("ENDPOINT").is_some_and(|(_, e)| e.starts_with("https://")) {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = otlp_var("CERTIFICATE") {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (otlp_var("CLIENT_CERTIFICATE"), otlp_var("CLIENT_KEY")) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and …_CLIENT_KEY go together".into(),
                );
            }
        }
        builder = builder.with_tls_config(tls);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Installs logging and tracing for `service`. Safe to call more than once (tests): later calls
/// leave the first subscriber in place.
pub fn init(service: &str) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = Resource::builder()
        .with_service_name(service.to_string())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let mut export_error = None;
    if exporter_configured() {
        match span_exporter() {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(err) => export_error = Some(err),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(service.to_string());

    // Logs follow RUST_LOG; spans follow CRM_TRACE_FILTER (default info). Separate filters so
    // quieting the logs never cuts trace propagation, which rides on the request spans.
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let trace_filter =
        EnvFilter::try_from_env("CRM_TRACE_FILTER").unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(trace_filter);
    let text = std::env::var("CRM_LOG_FORMAT").is_ok_and(|v| v == "text");
    let registry = tracing_subscriber::registry().with(otel);
    let installed = if text {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    // Colour codes only for a terminal, never into log files.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_filter(log_filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(log_filter),
            )
            .try_init()
    };
    if installed.is_err() {
        // Another test in this process already installed telemetry; keep that one.
        return TelemetryGuard { provider: None };
    }
    opentelemetry::global::set_tracer_provider(provider.clone());
    if let Some(err) = export_error {
        tracing::warn!(error = %err, "OTLP exporter could not be built; spans are not exported");
    }
    TelemetryGuard {
        provider: Some(provider),
    }
}

/// The trace id of the current span, as 32 hex digits, if there is a valid one.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
