//! With telemetry installed, a span that continues a remote trace hands that trace on.

#[test]
fn a_continued_trace_is_handed_on() {
    let _guard = crm_telemetry::init("telemetry-test");
    let mut incoming = http::HeaderMap::new();
    incoming.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let span = tracing::info_span!("request");
    crm_telemetry::propagation::set_parent(
        &span,
        crm_telemetry::propagation::extract_http(&incoming),
    );
    span.in_scope(|| {
        assert_eq!(
            crm_telemetry::current_trace_id().as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let pairs = crm_telemetry::propagation::current_pairs();
        let traceparent = pairs
            .iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            traceparent.and_then(crm_telemetry::propagation::trace_id_of),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            "{pairs:?}"
        );
        let mut metadata = tonic::metadata::MetadataMap::new();
        crm_telemetry::propagation::inject_grpc(&mut metadata);
        assert!(metadata.get("traceparent").is_some());
    });
}
