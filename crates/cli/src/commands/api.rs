//! A small client for Switchboard's API in Stripe's wire format: form-encoded
//! parameters (`switchboard_core::form::encode_json`), bearer key,
//! `Stripe-Account`, Stripe error JSON turned into readable errors.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::Method;
use serde_json::{Map, Value};

/// Where the server is and which key to use: flattened into every client command.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Base URL of the Switchboard server.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_API_BASE",
        default_value = "http://127.0.0.1:12111",
        value_name = "URL"
    )]
    pub api_base: String,
    /// Secret API key (sk_test_… or sk_live_…; `switchboard serve` prints both).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

/// An HTTP client that follows no redirects and ignores proxy variables
/// (reqwest is built with rustls and no default crypto provider: ring is installed here).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .no_proxy()
        .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static client configuration is valid")
}

/// The API of one Switchboard server, with one key.
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// A response whatever its status: fixtures may expect errors.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `error.type` of a Stripe error (`card_error`, `invalid_request_error`, …).
    pub fn error_type(&self) -> Option<&str> {
        self.body["error"]["type"].as_str()
    }

    /// A one-line description of an error response.
    pub fn error_message(&self) -> String {
        let e = &self.body["error"];
        let described = match (e.as_str(), &self.body["error_description"]) {
            // OAuth errors: {"error": "invalid_client", "error_description": "…"}
            (Some(code), Value::String(d)) => Some(format!("{code}: {d}")),
            _ => e["message"].as_str().map(|m| match e["type"].as_str() {
                Some(t) => format!("{m} ({t})"),
                None => m.to_owned(),
            }),
        };
        let text = described.unwrap_or_else(|| match &self.body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        format!("HTTP {}: {text}", self.status)
    }
}

impl Api {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Api> {
        let key = args
            .api_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "no API key: pass --api-key or set SWITCHBOARD_API_KEY \
                     (`switchboard serve` prints the platform's keys)"
                )
            })?;
        let base = args.api_base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--api-base must be an http:// or https:// URL, got {base:?}");
        }
        Ok(Api {
            http: http_client(Duration::from_secs(30)),
            base,
            key,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; `params` go in the query string for GET and DELETE and
    /// in the form body otherwise. Any status is returned: only transport
    /// failures are errors.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        params: &Map<String, Value>,
        stripe_account: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let form = switchboard_core::form::encode_json(params);
        let mut url = format!("{}{}", self.base, path);
        let in_query = method == Method::GET || method == Method::DELETE;
        if in_query && !form.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&form);
        }
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        if let Some(acct) = stripe_account.filter(|a| !a.is_empty()) {
            req = req.header("Stripe-Account", acct);
        }
        if !in_query && path.starts_with("/v2/") {
            // API v2 takes JSON bodies.
            req = req
                .header("Content-Type", "application/json")
                .body(Value::Object(params.clone()).to_string());
        } else if !in_query {
            req = req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "could not reach Switchboard at {} (is `switchboard serve` running?)",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the response to {method} {path}"))?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Reply { status, body })
    }

    /// Like [`Api::call`], but an error status is an error.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        params: &Map<String, Value>,
        stripe_account: Option<&str>,
    ) -> anyhow::Result<Value> {
        let reply = self
            .call(method.clone(), path, params, stripe_account)
            .await?;
        if !reply.is_success() {
            bail!("{method} {path} failed: {}", reply.error_message());
        }
        Ok(reply.body)
    }

    pub async fn get(
        &self,
        path: &str,
        params: &Map<String, Value>,
        stripe_account: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.request(Method::GET, path, params, stripe_account)
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        params: &Map<String, Value>,
        stripe_account: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.request(Method::POST, path, params, stripe_account)
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::DELETE, path, &Map::new(), None).await
    }
}

/// An id given on the command line, checked before it becomes a path segment.
pub fn segment(id: &str) -> anyhow::Result<&str> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bail!("{id:?} is not an id (expected letters, digits and underscores, like evt_…)");
    }
    Ok(id)
}

/// Builds a parameter map from (name, value) pairs, skipping `None`s.
pub fn params<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect()
}
