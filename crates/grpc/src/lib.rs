//! gRPC plumbing shared by servers and clients.
//!
//! - [`request_span`]: the span of each incoming call, continuing the caller's W3C trace from the
//!   request metadata and carrying `trace_id` so log lines can be joined with traces;
//! - [`reflection`] and [`health`]: every server exposes `grpc.health.v1` (probed natively by
//!   Kubernetes) and server reflection (grpcurl, Postman);
//! - [`TracePropagation`]: a client interceptor that writes the current context into outgoing
//!   metadata;
//! - [`balance::BalancedChannel`]: a client channel over every replica of a service, following
//!   their health, so rolling restarts fail no call;
//! - [`upstream::Upstreams`]: one signed, balanced channel per service a process calls.

pub mod balance;
pub mod upstream;

pub use tonic_health::ServingStatus;
pub use tonic_health::server::HealthReporter;

/// The span for one incoming gRPC request (for `Server::builder().trace_fn(..)`).
pub fn request_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    // Probes hit health every few seconds: keep them out of traces and logs.
    if path.starts_with("/grpc.health.v1.") {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("grpc", rpc = %path, trace_id = tracing::field::Empty);
    crm_telemetry::propagation::set_parent(
        &span,
        crm_telemetry::propagation::extract_http(request.headers()),
    );
    if let Some(id) = span.in_scope(crm_telemetry::current_trace_id) {
        span.record("trace_id", id);
    }
    span
}

/// The reflection service over the given encoded descriptor sets (plus health's), listing the
/// services named in `services` and health, and no others: a port advertises only what it
/// serves, even when a descriptor set defines more.
pub fn reflection(
    descriptor_sets: &[&[u8]],
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in descriptor_sets {
        builder = builder.register_encoded_file_descriptor_set(set);
    }
    builder = builder
        .with_service_name(HEALTH_SERVICE)
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for name in services {
        builder = builder.with_service_name(*name);
    }
    builder.build_v1()
}

/// The full name of the health service every server runs.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// The health service and its reporter; everything starts NOT_SERVING.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// Client interceptor: propagates the current trace context to the called service.
#[derive(Clone, Copy, Default)]
pub struct TracePropagation;

impl tonic::service::Interceptor for TracePropagation {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        crm_telemetry::propagation::inject_grpc(request.metadata_mut());
        Ok(request)
    }
}
