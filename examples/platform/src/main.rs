//! An example Connect platform: the Rust counterpart of Stripe's Sinatra
//! "Connect webhooks" sample, receiving events from Switchboard or Stripe.
//!
//! `POST /webhook` verifies each delivery with `switchboard-receiver`'s axum
//! extractor and keeps a small picture of the connected accounts:
//!
//! - `account.updated`: fetches the account as it is *now* (as the connected
//!   account, `Stripe-Account`), since deliveries can arrive late or out of
//!   order, and records `charges_enabled`, `payouts_enabled` and
//!   `requirements.currently_due`;
//! - `account.application.deauthorized`: forgets the account;
//! - `payout.failed`: flags the account and remembers the external account
//!   that refused the payout and Stripe's `failure_code`.
//!
//! Events are applied once: a redelivered event id is acknowledged without
//! being applied again. Events of the other mode (live vs test) are
//! acknowledged and ignored. `GET /state` shows what the platform knows.

mod state;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use switchboard_receiver::axum::VerifiedEvent;
use switchboard_receiver::{Event, Payout, WebhookSecrets};

use crate::state::{AccountStatus, Claim, PlatformState};

#[derive(Parser)]
#[command(
    name = "platform",
    about = "Example Connect platform receiving webhooks"
)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 4242)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Act on live-mode events (by default test-mode ones); events of the
    /// other mode are acknowledged and ignored.
    #[arg(long)]
    livemode: bool,
    /// The endpoint's signing secret(s), `whsec_…`, comma-separated.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: String,
    /// The platform's secret key, for fetching fresh objects.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// Where the API is: Stripe, or a Switchboard server.
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    api_base: String,
}

#[tokio::main]
async fn main() {
    // rustls is built without a default crypto provider: use ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();

    let secrets = WebhookSecrets::parse_list(&args.webhook_secret);
    if secrets.is_empty() {
        eprintln!("STRIPE_WEBHOOK_SECRET is empty: every delivery would be refused");
        std::process::exit(2);
    }
    let stripe = StripeApi::new(&args.api_base, &args.secret_key);
    let app = App::new(secrets, args.livemode, stripe);

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {}:{}: {e}", args.host, args.port);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("bound address");
    println!("listening on http://{addr}");
    let mode = if args.livemode { "live" } else { "test" };
    eprintln!(
        "acting on {mode}-mode events; fetching from {}",
        args.api_base
    );

    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server");
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct App {
    secrets: WebhookSecrets,
    livemode: bool,
    stripe: StripeApi,
    state: Arc<Mutex<PlatformState>>,
}

impl App {
    pub fn new(secrets: WebhookSecrets, livemode: bool, stripe: StripeApi) -> Self {
        App {
            secrets,
            livemode,
            stripe,
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, PlatformState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `VerifiedEvent` takes its secrets from the state.
impl FromRef<App> for WebhookSecrets {
    fn from_ref(app: &App) -> Self {
        app.secrets.clone()
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/state", get(show_state))
        .with_state(app)
}

async fn show_state(State(app): State<App>) -> Response {
    Json(app.state().snapshot()).into_response()
}

/// Any answer but 2xx makes the sender deliver the event again later.
async fn webhook(State(app): State<App>, VerifiedEvent(event): VerifiedEvent) -> Response {
    if event.livemode != app.livemode {
        app.state().ignore_other_mode();
        eprintln!("{} {}: ignored (other mode)", event.id, event.event_type);
        return (StatusCode::OK, "ignored: other mode").into_response();
    }
    let claim = app.state().claim(&event.id);
    match claim {
        Claim::New => {}
        Claim::Duplicate => {
            eprintln!(
                "{} {}: duplicate, already applied",
                event.id, event.event_type
            );
            return (StatusCode::OK, "duplicate").into_response();
        }
        // Not yet applied: let the sender retry rather than acknowledge it.
        Claim::InFlight => return (StatusCode::CONFLICT, "in progress").into_response(),
    }
    match handle(&app, &event).await {
        Ok(outcome) => {
            app.state().finish(&event.id);
            eprintln!(
                "{} {} {}: {outcome}",
                event.id,
                event.event_type,
                account_of(&event)
            );
            (StatusCode::OK, outcome).into_response()
        }
        Err(e) => {
            app.state().abandon(&event.id);
            eprintln!("{} {}: {e}", event.id, event.event_type);
            (e.status(), e.to_string()).into_response()
        }
    }
}

fn account_of(event: &Event) -> &str {
    event.account.as_deref().unwrap_or("-")
}

/// Applies one new event; the text is the answer's body.
async fn handle(app: &App, event: &Event) -> Result<&'static str, HandleError> {
    let Some(account) = event.account.as_deref() else {
        return Ok("ignored: not about a connected account");
    };
    match event.event_type.as_str() {
        "account.application.deauthorized" => {
            app.state().deauthorize(account);
            Ok("account forgotten")
        }
        "account.application.authorized" => {
            app.state().authorize(account);
            Ok("account authorized")
        }
        _ if app.state().is_deauthorized(account) => Ok("ignored: account deauthorized"),
        "account.updated" => match app.stripe.account(account).await? {
            Some(fresh) => {
                app.state().update_account(&fresh);
                Ok("account updated")
            }
            // The platform cannot reach the account any more: it disconnected,
            // and its `deauthorized` event is on its way or was missed.
            None => {
                app.state().deauthorize(account);
                Ok("account no longer reachable, forgotten")
            }
        },
        "payout.failed" => {
            let payout: Payout = event
                .data
                .object_as()
                .map_err(|e| HandleError::Unreadable(e.to_string()))?;
            app.state().payout_failed(account, &payout);
            Ok("account flagged")
        }
        _ => Ok("ignored: not handled"),
    }
}

#[derive(Debug)]
enum HandleError {
    /// The API could not be reached or answered with an error: retry later.
    Api(String),
    /// The event's object is not what its type promises.
    Unreadable(String),
}

impl HandleError {
    fn status(&self) -> StatusCode {
        match self {
            HandleError::Api(_) => StatusCode::SERVICE_UNAVAILABLE,
            HandleError::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::Api(e) => write!(f, "API: {e}"),
            HandleError::Unreadable(e) => write!(f, "unreadable object: {e}"),
        }
    }
}

/// The few API calls the platform makes, through async-stripe.
#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
}

impl StripeApi {
    pub fn new(base: &str, key: &str) -> Self {
        let client = stripe::ClientBuilder::new(key)
            .url(base.trim_end_matches('/'))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("Stripe client");
        StripeApi { client }
    }

    /// `GET /v1/accounts/{id}` as the connected account itself (with
    /// `Stripe-Account`); `None` when the platform has no access to it (403:
    /// deauthorized or deleted).
    async fn account(&self, id: &str) -> Result<Option<AccountStatus>, HandleError> {
        use stripe::StripeRequest as _;
        let fetched = stripe_connect::account::RetrieveAccount::new(id)
            .customize()
            .account_id(stripe::AccountId::from(id))
            .send(&self.client)
            .await;
        match fetched {
            Ok(account) => Ok(Some(AccountStatus::from(&account))),
            Err(stripe::StripeError::Stripe(_, 403)) => Ok(None),
            Err(e) => Err(HandleError::Api(format!("GET /v1/accounts/{id}: {e}"))),
        }
    }
}
