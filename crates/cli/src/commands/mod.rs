//! The client commands of the `switchboard` binary: they talk to a running
//! server over its HTTP API, like the Stripe CLI talks to Stripe.

pub mod api;
pub mod attempts;
pub mod clock;
pub mod endpoints;
pub mod events;
pub mod listen;
pub mod logs;
pub mod output;
pub mod platforms;
pub mod trigger;
