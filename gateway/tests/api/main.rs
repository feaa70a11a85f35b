//! Integration tests of the gateway, against the real customer service and real Postgres,
//! Redis and Kafka-protocol broker (`./dev test` provides them). One binary, one module per
//! concern.

mod accounts;
mod admin;
mod administration;
mod api_clients;
mod audit;
mod audit_fields;
mod auth;
mod authorization;
mod contacts;
mod custom_fields;
mod follow_ups;
mod helpers;
mod idempotency;
mod identity;
mod oidc;
mod openapi;
mod platform;
mod preferences;
mod rate_limit;
mod sharing;
mod sign_in;
mod trace_context;
mod validation;
