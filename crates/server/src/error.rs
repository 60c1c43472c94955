//! `ApiError`: the one place where failures become Stripe error JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::form::ParamError;
use switchboard_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Param(#[from] ParamError),
    /// 400 `invalid_request_error` that is not about one parameter's syntax.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    #[error("No such {kind}: '{id}'")]
    NotFound {
        kind: &'static str,
        id: String,
        param: &'static str,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Permission(String),
    #[error("{0}")]
    Idempotency(String),
    /// Another request with the same key is being handled; SDKs retry a 409.
    #[error(
        "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {0}. Please try again later."
    )]
    IdempotencyInFlight(String),
    #[error("Request body too large: the limit is {0} bytes")]
    BodyTooLarge(usize),
    #[error(
        "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
    )]
    UnknownRoute { method: String, path: String },
    #[error(
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
    )]
    RateLimited,
    /// A concurrent request changed the object first; SDKs retry a 409.
    #[error(
        "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. Please retry."
    )]
    Conflict,
    /// 402 `card_error`: the card was declined where nothing else happens
    /// (attaching it, setting it up without a SetupIntent).
    #[error("{message}")]
    Card {
        message: String,
        code: &'static str,
        decline_code: &'static str,
        param: &'static str,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// Storage cannot keep writes now: nothing was done; retry (SDKs do).
    #[error("Switchboard cannot store this request right now, so nothing was done. Please retry.")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
            code: Some("parameter_invalid"),
        }
    }

    /// A required parameter is absent.
    pub fn missing(param: &str) -> Self {
        ApiError::Param(ParamError::missing(param))
    }

    /// The same error naming parameter `to` where it named `from` (a check
    /// shared by resources that spell the parameter differently).
    pub fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            ApiError::InvalidRequest {
                message,
                param: Some(p),
                code,
            } if p == from => ApiError::InvalidRequest {
                message,
                param: Some(to.into()),
                code,
            },
            other => other,
        }
    }

    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        ApiError::NotFound {
            kind,
            id: id.into(),
            param: "id",
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<&str>, Option<String>) {
        use ApiError::*;
        match self {
            Param(e) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(e.code()),
                Some(e.param.clone()),
            ),
            InvalidRequest { param, code, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                *code,
                param.clone(),
            ),
            NotFound { param, .. } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                Some((*param).into()),
            ),
            Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                None,
                None,
            ),
            Permission(_) => (
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                Some("account_invalid"),
                None,
            ),
            Idempotency(_) => (StatusCode::BAD_REQUEST, "idempotency_error", None, None),
            IdempotencyInFlight(_) => (StatusCode::CONFLICT, "idempotency_error", None, None),
            BodyTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                None,
                None,
            ),
            UnknownRoute { .. } => (StatusCode::NOT_FOUND, "invalid_request_error", None, None),
            RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_request_error",
                Some("rate_limit"),
                None,
            ),
            Conflict => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                Some("lock_timeout"),
                None,
            ),
            Card { code, param, .. } => (
                StatusCode::PAYMENT_REQUIRED,
                "card_error",
                Some(code),
                Some((*param).into()),
            ),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "api_error", None, None),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "api_error", None, None),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CursorNotFound(id) => ApiError::InvalidRequest {
                message: format!("No such object: '{id}'"),
                param: Some("starting_after".into()),
                code: Some("resource_missing"),
            },
            StoreError::Conflict => ApiError::Conflict,
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, code, param) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "An unexpected error occurred in Switchboard.".to_string()
            }
            ApiError::Unavailable(detail) => {
                tracing::error!(%detail, "storage unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({"message": message, "type": kind});
        if let Some(code) = code {
            error["code"] = code.into();
        }
        if let Some(param) = param {
            error["param"] = param.into();
        }
        if let ApiError::Card { decline_code, .. } = &self {
            error["decline_code"] = (*decline_code).into();
        }
        let body = serde_json::to_vec_pretty(&json!({ "error": error })).expect("JSON serializes");
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            "content-type",
            "application/json".parse().expect("valid header"),
        );
        if status.is_server_error() {
            resp.headers_mut()
                .insert("stripe-should-retry", "true".parse().expect("valid header"));
        }
        resp
    }
}

/// OAuth routes answer in OAuth's own error shape, not Stripe's API errors:
/// `{"error": "invalid_client", "error_description": "..."}`.
pub fn oauth_error(status: StatusCode, error: &str, description: String) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A declined payment's 402 body: the PaymentIntent's `last_payment_error`
/// with the PaymentIntent itself. Built here, committed by the handler (its
/// charge and events happen anyway, and a replay must answer the same).
pub fn card_error(
    last_payment_error: &serde_json::Value,
    payment_intent: &serde_json::Value,
) -> serde_json::Value {
    let err = last_payment_error;
    json!({"error": {
        "charge": err["charge"], "code": err["code"], "decline_code": err["decline_code"],
        "doc_url": err["doc_url"], "message": err["message"], "payment_intent": payment_intent,
        "payment_method": err["payment_method"], "type": "card_error",
    }})
}

/// A SetupIntent's 402 when its card is declined: its `last_setup_error`
/// with the SetupIntent itself.
pub fn setup_card_error(
    last_setup_error: &serde_json::Value,
    setup_intent: &serde_json::Value,
) -> serde_json::Value {
    let err = last_setup_error;
    json!({"error": {
        "code": err["code"], "decline_code": err["decline_code"], "doc_url": err["doc_url"],
        "message": err["message"], "payment_method": err["payment_method"],
        "setup_intent": setup_intent, "type": "card_error",
    }})
}
