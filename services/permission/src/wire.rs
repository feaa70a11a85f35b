//! What every gRPC edge (`<aggregate>/grpc.rs`) shares: the handlers' result type and the
//! conversion of times to the wire.

use tonic::{Response, Status};

/// What a gRPC handler returns.
pub type GrpcResult<T> = Result<Response<T>, Status>;

/// A stored time as a `google.protobuf.Timestamp`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Ids as their strings.
pub fn ids(ids: impl IntoIterator<Item = uuid::Uuid>) -> Vec<String> {
    ids.into_iter().map(|id| id.to_string()).collect()
}
