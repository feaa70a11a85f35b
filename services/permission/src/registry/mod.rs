//! The registry of resources and their fields: what exists to be granted, shared, hidden,
//! masked and tested in a condition. The services that own records declare them
//! (`crm_record::registry`, the event `<owner>.resources.declared` this service follows with the
//! audit trail's consumer); custom fields will join at run time. Grants and shares may only
//! name registered resources (foreign keys), field rules only active governed fields (masks only
//! on text kinds), sharing conditions only fields declared for conditions. Serves
//! `crm.permission.v1.RegistryService`.
//!
//! Layout: [`domain`] (what a field allows; no I/O), [`store`] (SQL), [`service`] (applying a
//! declaration, the checks other use cases call in their transaction, reading), [`grpc`].

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::declare;
