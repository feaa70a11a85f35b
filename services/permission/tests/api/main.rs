//! Permission service integration tests, against real Postgres and a Kafka-protocol broker.
//! One test binary (so it links once); each test gets its own database and topic.

mod helpers;
mod identity;

mod access;
mod admin_grants;
mod api_clients;
mod audit_fields;
mod boot;
mod consumer_replicas;
mod demo_org;
mod departments;
mod events;
mod keys;
mod lockout;
mod login;
mod org_events;
mod preferences;
mod registry;
mod roles;
mod sessions;
mod user_org;
mod users;
