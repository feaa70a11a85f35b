//! Customer service integration tests, against real Postgres, Redis and a Kafka-protocol broker.
//! One test binary (so it links once); each test gets its own database, topic and cache prefix.

mod helpers;

mod access;
mod accounts;
mod config;
mod contacts;
mod custom_fields;
mod events;
mod follow_ups;
mod lists;
mod outage;
mod replicas;
mod sigterm;
