//! Permission service integration tests, against real Postgres and a Kafka-protocol broker.
//! One test binary (so it links once); each test gets its own database and topic.

mod helpers;

mod boot;
mod events;
mod keys;
mod lockout;
mod login;
mod sessions;
mod users;
