//! Deliveries that do not go over HTTP from here: a `stripe listen` session
//! receives events over its WebSocket, forwards them itself, and reports the
//! answer back. The server's listen hub implements [`Relay`] and the
//! dispatcher calls it; it lives here, below both, so neither depends on the other.

use std::time::Duration;

use bytes::Bytes;

/// Endpoint URLs of `stripe listen` devices start with this.
pub const LISTENER_SCHEME: &str = "stripecli://";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// No session of this device is connected.
    Disconnected,
    /// The session did not report an answer in time.
    Timeout,
}

pub trait Relay: Send + Sync + 'static {
    /// Hands one signed event to a connected session of `endpoint_id` and
    /// waits for the answer of the URL it forwarded to.
    fn deliver(
        &self,
        endpoint_id: &str,
        event_id: &str,
        payload: Bytes,
        signature: String,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<RelayResponse, RelayError>> + Send + '_>>;
}
