//! An axum extractor for verified webhook events (feature `axum`).
//!
//! [`VerifiedEvent`] reads the raw body (at most
//! [`WebhookSecrets::body_limit`] bytes) and the `Stripe-Signature` header,
//! verifies them with the [`WebhookSecrets`] it gets from the router's state
//! through [`FromRef`], and parses the event. Anything wrong is answered, as
//! in Stripe's own examples, with `400 Bad Request` and a one-line plain-text
//! reason (`413` for a body over the limit), before your handler runs.
//!
//! ```
//! use axum::{Router, extract::FromRef, routing::post};
//! use switchboard_receiver::{Object, WebhookSecrets, axum::VerifiedEvent};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     secrets: WebhookSecrets,
//!     // … your own state
//! }
//!
//! impl FromRef<AppState> for WebhookSecrets {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.secrets.clone()
//!     }
//! }
//!
//! async fn webhook(VerifiedEvent(event): VerifiedEvent) -> &'static str {
//!     match (event.event_type.as_str(), event.object()) {
//!         ("payout.failed", Ok(Object::Payout(payout))) => {
//!             println!("payout {} to {:?} failed", payout.id, payout.destination);
//!         }
//!         _ => {}
//!     }
//!     "ok"
//! }
//!
//! let secrets = std::env::var("STRIPE_WEBHOOK_SECRET").unwrap_or_default();
//! let app: Router = Router::new()
//!     .route("/webhook", post(webhook))
//!     .with_state(AppState { secrets: WebhookSecrets::parse_list(&secrets) });
//! ```
//!
//! With no state of your own, a `Router<WebhookSecrets>` works as is
//! (`.with_state(WebhookSecrets::parse_list(…))`).

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{Event, WebhookError, WebhookSecrets};

/// The name of the header carrying the signature.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// A webhook event whose signature was verified with one of the state's
/// [`WebhookSecrets`]. Consumes the body, so it must be the last extractor.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent(pub Event);

/// Why [`VerifiedEvent`] refused a request; its response is `400` (or `413`)
/// with a short plain-text reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The signature did not verify, or the body is not an event.
    #[error("Webhook Error: {0}")]
    Invalid(#[from] WebhookError),
    /// The `Stripe-Signature` header is not visible ASCII.
    #[error("Webhook Error: the Stripe-Signature header is not valid ASCII")]
    HeaderNotAscii,
    /// The body is larger than [`WebhookSecrets::body_limit`].
    #[error("Webhook Error: the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The body could not be read (the client went away, …).
    #[error("Webhook Error: the body could not be read")]
    BodyUnreadable,
}

impl WebhookRejection {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let mut reason = self.to_string();
        reason.push('\n');
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            reason,
        )
            .into_response()
    }
}

impl<S> FromRequest<S> for VerifiedEvent
where
    WebhookSecrets: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let secrets = WebhookSecrets::from_ref(state);
        let limit = secrets.body_limit();
        let header = match req.headers().get(SIGNATURE_HEADER) {
            None => return Err(WebhookError::MissingHeader.into()),
            Some(value) => value
                .to_str()
                .map_err(|_| WebhookRejection::HeaderNotAscii)?
                .to_owned(),
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(WebhookRejection::BodyTooLarge(limit));
        }
        let body = read_body(req.into_body(), limit).await?;
        let event = secrets.construct_event(&body, &header)?;
        Ok(VerifiedEvent(event))
    }
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, WebhookRejection> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(WebhookRejection::BodyTooLarge(limit)),
        Err(_) => Err(WebhookRejection::BodyUnreadable),
    }
}
