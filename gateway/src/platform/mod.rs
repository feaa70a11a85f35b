//! The pieces every domain's routes share and none owns: the one [`Error`](error::Error) type
//! and its problem+json rendering, strict extractors, response helpers, streamed exports, the
//! request's origin, observability middleware, the OpenAPI conventions, and the record routes
//! ([`records`]): create, list, read, update, delete and export written once for every
//! resource.

pub mod client_info;
pub mod convert;
pub mod error;
pub mod export;
pub mod extract;
pub mod fields;
pub mod observability;
pub mod openapi;
pub mod records;
pub mod response;

pub use client_info::ClientInfo;
