//! Generated protobuf and gRPC code for the CRM's versioned packages (`crm.<service>.v1`).
//!
//! Nothing here is a domain type: services convert these at their edge with `From`/`TryFrom`,
//! so a wire change never silently changes business logic.
//!
//! Layout: one module per package, `crm::common::v1` (shared value types: money, paging),
//! `crm::customer::v1`, … The encoded descriptor set of every package is
//! [`FILE_DESCRIPTOR_SET`], served by gRPC reflection.

/// Every `crm.*` package, encoded as a `google.protobuf.FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/crm_descriptor.bin"));

pub mod crm {
    pub mod common {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            tonic::include_proto!("crm.common.v1");
        }
    }
    pub mod customer {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            tonic::include_proto!("crm.customer.v1");
        }
    }
    pub mod fields {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            tonic::include_proto!("crm.fields.v1");
        }
    }
    pub mod permission {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            tonic::include_proto!("crm.permission.v1");
        }
    }
}

pub use crm::common::v1 as common;
pub use crm::customer::v1 as customer;
pub use crm::fields::v1 as fields;
pub use crm::permission::v1 as permission;
