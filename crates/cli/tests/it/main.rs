//! Integration tests: a real node on 127.0.0.1:0 over HTTP, real SQLite,
//! real receivers. One binary so that linking happens once.

mod api;
mod async_stripe;
mod cli;
mod clock;
mod cluster;
mod compat;
mod connect;
mod crash;
mod dashboard;
mod delivery;
mod hosted_pages;
mod isolation;
mod metrics;
mod money;
mod onboarding;
mod platform;
mod readme;
mod schema;
mod storage;
mod stripe_cli;
mod support;
mod sweep;
mod v2;
