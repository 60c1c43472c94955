//! `POST /v1/account_sessions`: the client secret Connect embedded
//! components start from. Switchboard serves no embedded components; the
//! session is what a platform's backend creates and hands to its frontend,
//! so that code path runs against Switchboard as against Stripe.

use axum::response::Response;
use serde_json::{Map, Value, json};
use switchboard_core::ids;
use switchboard_core::schema::{Alt, Schema};

use super::accounts::{self, platform_only};
use super::objects;
use crate::context::Ctx;
use crate::error::ApiError;

/// How long a session's client secret works, as on Stripe.
const SESSION_SECONDS: i64 = 1800;

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    platform_only(&ctx, "account sessions")?;
    let account = ctx.params.required_string("account")?;
    let mut requested = match ctx.params.nested("components")? {
        Some(Some(c)) => c,
        _ => {
            return Err(ApiError::Param(
                switchboard_core::form::ParamError::missing("components"),
            ));
        }
    };
    // Every component and feature Stripe's schema declares, off unless asked for.
    let schema = switchboard_core::schema::stripe();
    let mut components = Map::new();
    for (name, features) in component_features(schema) {
        let mut component = json!({"enabled": false, "features": {}});
        for f in &features {
            component["features"][f] = false.into();
        }
        if let Some(Some(mut c)) = requested.nested(name)? {
            component["enabled"] = c.bool("enabled")?.unwrap_or(false).into();
            if let Some(Some(mut asked)) = c.nested("features")? {
                for f in &features {
                    if let Some(v) = asked.bool(f)? {
                        component["features"][f] = v.into();
                    }
                }
                asked.finish()?;
            }
            c.finish()?;
        }
        components.insert(name.to_owned(), component);
    }
    requested.finish()?;
    ctx.finish_params()?;
    accounts::load(&ctx, &account).await?;
    let now = ctx.now();
    let secret = format!(
        "{}_secret_{}",
        ids::generate(ids::Prefix::AccountSession, &mut rand::rng()),
        ids::generate_secret("", &mut rand::rng()).trim_start_matches('_')
    );
    ctx.respond(objects::build(
        "account_session",
        json!({
            "object": "account_session", "account": account, "client_secret": secret,
            "components": Value::Object(components), "expires_at": now + SESSION_SECONDS,
            "livemode": ctx.livemode(),
        }),
    ))
    .await
}

/// Each embedded component (`AccountSession.Components`) and its features.
fn component_features(schema: &Schema) -> Vec<(&str, Vec<String>)> {
    let Some(components) = schema.type_def("AccountSession.Components") else {
        return Vec::new();
    };
    components
        .fields()
        .map(|(name, field)| {
            let features = match field.alts.as_slice() {
                [Alt::Ref { target }] => schema
                    .type_def(&format!("{target}.Features"))
                    .map(|d| d.fields().map(|(f, _)| f.to_owned()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (name, features)
        })
        .collect()
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new().route("/v1/account_sessions", post(create))
}
