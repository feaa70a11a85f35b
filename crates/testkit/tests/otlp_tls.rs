//! Spans exported to a collector that only speaks TLS (a throwaway CA), through the exporter
//! `crm_telemetry::span_exporter` makes from the standard `OTEL_EXPORTER_OTLP_*` variables:
//! verified with the CA file, with a client certificate, and refused otherwise.
//!
//! One test: the cases set and clear process environment variables in turn.
// The exporter reads OTEL_* variables: the test sets them (std::env::set_var is unsafe).
#![allow(unsafe_code)]

use std::time::Duration;

use crm_testkit::tls::Pki;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Sends the name of every span it receives.
struct Collector(mpsc::UnboundedSender<String>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(span.name);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A TLS-only collector on a free port (client certificates signed by the CA required when
/// `mutual`); returns its port and what it receives.
async fn collector(pki: &Pki, mutual: bool) -> (u16, mpsc::UnboundedReceiver<String>) {
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        read(&pki.server_cert_file),
        read(&pki.server_key_file),
    ));
    if mutual {
        tls = tls.client_ca_root(Certificate::from_pem(read(&pki.ca_file)));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let port = crm_testkit::free_port();
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(TraceServiceServer::new(Collector(tx)));
    tokio::spawn(server.serve(([127, 0, 0, 1], port).into()));
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (port, rx)
}

/// Ends one span named `name` through an exporter made from the environment, and flushes. (A
/// refused export is logged by the SDK, not returned: what the collector receives is the oracle.)
async fn export(name: &'static str) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let exporter = crm_telemetry::span_exporter()?;
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .build();
        provider.tracer("tls-test").in_span(name, |_| {});
        let flushed = provider.force_flush().map_err(|e| e.to_string());
        let _ = provider.shutdown();
        flushed
    })
    .await
    .unwrap()
}

async fn received(rx: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .ok()
        .flatten()
}

fn set(vars: &[(&str, &std::path::Path)]) {
    for key in [
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    ] {
        // SAFETY: the only test in this binary; nothing else reads the environment meanwhile.
        unsafe { std::env::remove_var(key) };
    }
    for (key, value) in vars {
        unsafe { std::env::set_var(key, value) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_tls_collector_only_when_it_is_verified() {
    let pki = Pki::new("otlp");
    let other = Pki::new("other");
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_TIMEOUT", "2000") };

    // Verified against the private CA.
    let (port, mut rx) = collector(&pki, false).await;
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://127.0.0.1:{port}"),
        )
    };
    set(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca_file)]);
    export("verified").await.expect("exported");
    assert_eq!(received(&mut rx).await.as_deref(), Some("verified"));

    // A certificate from another CA, or none the system trusts: nothing is sent.
    set(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", &other.ca_file)]);
    let _ = export("other CA").await;
    set(&[]);
    let _ = export("system roots").await;
    assert_eq!(received(&mut rx).await, None);

    // Mutual TLS: with the client certificate in, without it out.
    let (port, mut rx) = collector(&pki, true).await;
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://127.0.0.1:{port}"),
        )
    };
    set(&[
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca_file),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &pki.client_cert_file,
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.client_key_file),
    ]);
    export("mutual").await.expect("exported");
    assert_eq!(received(&mut rx).await.as_deref(), Some("mutual"));
    set(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca_file)]);
    let _ = export("no client certificate").await;
    assert_eq!(received(&mut rx).await, None);

    // Files that cannot be read, or half a client identity, are refused when the exporter is made.
    set(&[(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "/nonexistent/ca.pem".as_ref(),
    )]);
    let err = crm_telemetry::span_exporter().err().unwrap();
    assert!(err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{err}");
    set(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.client_key_file)]);
    let err = crm_telemetry::span_exporter().err().unwrap();
    assert!(err.contains("go together"), "{err}");
}
