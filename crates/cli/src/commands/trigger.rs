//! `switchboard trigger EVENT` and `switchboard fixtures FILE`: run API calls
//! described by a fixture in the Stripe CLI's format, so that events happen.
//!
//! ```json
//! {"_meta": {"template_version": 0},
//!  "fixtures": [{"name": "customer", "path": "/v1/customers", "method": "post",
//!                "params": {"name": "Jo"}},
//!               {"name": "updated", "path": "/v1/customers/${customer:id}", "method": "post",
//!                "params": {"metadata": {"n": "1"}}}],
//!  "env": {}}
//! ```
//!
//! `${name:json.path}` is a value from the response of an earlier step
//! (`${payment_intent:charges.data.0.id}`), `${.env:VAR}` an environment variable;
//! `|default` after the path supplies a value when there is none. Besides the
//! Stripe CLI's `expected_error_type` (an error of that type is the step's
//! expected outcome), a step may name `stripe_account`: the connected account
//! it acts as (`""` for the platform), which replaces `--stripe-account`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::api::{Api, ClientArgs};
use super::output;

/// The built-in fixtures, one per event `trigger` knows.
const BUILTIN: &[(&str, &str)] = &[
    (
        "account.application.deauthorized",
        include_str!("../../fixtures/account.application.deauthorized.json"),
    ),
    (
        "account.external_account.created",
        include_str!("../../fixtures/account.external_account.created.json"),
    ),
    (
        "account.external_account.deleted",
        include_str!("../../fixtures/account.external_account.deleted.json"),
    ),
    (
        "account.external_account.updated",
        include_str!("../../fixtures/account.external_account.updated.json"),
    ),
    (
        "account.updated",
        include_str!("../../fixtures/account.updated.json"),
    ),
    (
        "balance.available",
        include_str!("../../fixtures/balance.available.json"),
    ),
    (
        "charge.failed",
        include_str!("../../fixtures/charge.failed.json"),
    ),
    (
        "charge.succeeded",
        include_str!("../../fixtures/charge.succeeded.json"),
    ),
    (
        "customer.created",
        include_str!("../../fixtures/customer.created.json"),
    ),
    (
        "customer.deleted",
        include_str!("../../fixtures/customer.deleted.json"),
    ),
    (
        "customer.updated",
        include_str!("../../fixtures/customer.updated.json"),
    ),
    (
        "payment_intent.created",
        include_str!("../../fixtures/payment_intent.created.json"),
    ),
    (
        "payment_intent.payment_failed",
        include_str!("../../fixtures/payment_intent.payment_failed.json"),
    ),
    (
        "payment_intent.succeeded",
        include_str!("../../fixtures/payment_intent.succeeded.json"),
    ),
    (
        "payout.created",
        include_str!("../../fixtures/payout.created.json"),
    ),
    (
        "payout.failed",
        include_str!("../../fixtures/payout.failed.json"),
    ),
    (
        "payout.paid",
        include_str!("../../fixtures/payout.paid.json"),
    ),
    (
        "person.created",
        include_str!("../../fixtures/person.created.json"),
    ),
    (
        "person.deleted",
        include_str!("../../fixtures/person.deleted.json"),
    ),
    (
        "person.updated",
        include_str!("../../fixtures/person.updated.json"),
    ),
    (
        "v2.core.account.closed",
        include_str!("../../fixtures/v2.core.account.closed.json"),
    ),
    (
        "v2.core.account.created",
        include_str!("../../fixtures/v2.core.account.created.json"),
    ),
    (
        "v2.core.account.updated",
        include_str!("../../fixtures/v2.core.account.updated.json"),
    ),
    (
        "v2.core.account[requirements].updated",
        include_str!("../../fixtures/v2.core.account[requirements].updated.json"),
    ),
    (
        "v2.core.account_person.created",
        include_str!("../../fixtures/v2.core.account_person.created.json"),
    ),
];

/// The `trigger --help` epilogue: every event it knows.
pub fn supported_events_help() -> String {
    let mut s = String::from("Supported events:\n");
    for (name, _) in BUILTIN {
        s.push_str("  ");
        s.push_str(name);
        s.push('\n');
    }
    s.push_str(
        "\nFixtures that create their own connected account act on it whatever \
         --stripe-account says; their Connect events reach Connect endpoints.",
    );
    s
}

/// The `fixtures --help` epilogue: the file format.
pub const FIXTURE_FORMAT_HELP: &str = r#"A fixture file (the Stripe CLI's format):

  {"_meta": {"template_version": 0},
   "fixtures": [
     {"name": "customer", "path": "/v1/customers", "method": "post",
      "params": {"name": "Jo", "metadata": {"plan": "pro"}}},
     {"name": "updated", "path": "/v1/customers/${customer:id}", "method": "post",
      "params": {"description": "was ${customer:name}"}},
     {"name": "declined", "path": "/v1/payment_intents", "method": "post",
      "params": {"amount": 500, "currency": "usd", "confirm": true,
                 "payment_method": "pm_card_chargeDeclined"},
      "expected_error_type": "card_error"}
   ]}

Steps run in order; params are form-encoded as the SDKs do (query string for get and delete).
${STEP:JSON.PATH} is a value from an earlier step's response (${pi:charges.data.0.id}),
${.env:VAR} an environment variable; ${...|DEFAULT} gives a fallback. A step with
"expected_error_type" may fail with that error type. "stripe_account": "acct_…" (or
"${account:id}") makes a step act as a connected account, "" as the platform; it
replaces --stripe-account for that step."#;

#[derive(clap::Args, Debug)]
pub struct TriggerArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The event to trigger (see the list below).
    event: String,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
pub struct FixturesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A fixture file in the Stripe CLI's JSON format.
    file: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Act as this connected account: sends `Stripe-Account` with every request
    /// (except those of steps that name their own `stripe_account`).
    #[arg(long, value_name = "ACCT_ID")]
    stripe_account: Option<String>,
    /// Set a parameter of one step: STEP:PARAM=VALUE, e.g. `customer:name=Jo`,
    /// `payment_intent:amount=5000`, `customer:metadata.plan=pro`. Repeatable.
    #[arg(long = "override", value_name = "STEP:PARAM=VALUE")]
    overrides: Vec<String>,
    /// Add a parameter to one step: STEP:PARAM=VALUE. Repeatable.
    #[arg(long = "add", value_name = "STEP:PARAM=VALUE")]
    adds: Vec<String>,
    /// Remove a parameter from one step: STEP:PARAM. Repeatable.
    #[arg(long = "remove", value_name = "STEP:PARAM")]
    removes: Vec<String>,
    /// Skip a step by name. Repeatable.
    #[arg(long, value_name = "STEP")]
    skip: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    #[serde(rename = "_meta", default)]
    meta: Meta,
    fixtures: Vec<Step>,
    /// Values the Stripe CLI writes to a `.env` file; accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    env: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    template_version: u32,
}

#[derive(Debug, Deserialize)]
struct Step {
    name: String,
    path: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    expected_error_type: Option<String>,
    #[serde(default)]
    stripe_account: Option<String>,
}

fn default_method() -> String {
    "post".into()
}

pub async fn trigger(args: TriggerArgs) -> anyhow::Result<()> {
    let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == args.event) else {
        bail!(
            "no fixture for {:?}; `switchboard trigger --help` lists the events it can trigger, \
             and `switchboard fixtures FILE` runs your own",
            args.event
        );
    };
    let fixture: Fixture = serde_json::from_str(text).expect("built-in fixtures parse");
    let api = Api::new(&args.client)?;
    execute(&api, fixture, &args.run).await
}

pub async fn fixtures(args: FixturesArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let fixture: Fixture = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fixture file", args.file.display()))?;
    let api = Api::new(&args.client)?;
    execute(&api, fixture, &args.run).await
}

async fn execute(api: &Api, mut fixture: Fixture, run: &RunArgs) -> anyhow::Result<()> {
    if fixture.meta.template_version != 0 {
        bail!(
            "unsupported fixture template_version {} (only 0 is known)",
            fixture.meta.template_version
        );
    }
    let names: Vec<&str> = fixture.fixtures.iter().map(|s| s.name.as_str()).collect();
    let edits = Edits::parse(run, &names)?;
    for step in &mut fixture.fixtures {
        edits.apply(step);
    }
    let mut responses: HashMap<String, Value> = HashMap::new();
    for step in &fixture.fixtures {
        if run.skip.contains(&step.name) {
            output::line(&format!("Skipping fixture for: {}", step.name));
            continue;
        }
        output::line(&format!("Setting up fixture for: {}", step.name));
        let within = |e: anyhow::Error| e.context(format!("fixture {:?}", step.name));
        let path = resolve_str(&step.path, &responses).map_err(within)?;
        let params = resolve_map(&step.params, &responses).map_err(within)?;
        let account = match &step.stripe_account {
            Some(a) => Some(resolve_str(a, &responses).map_err(within)?),
            None => run.stripe_account.clone(),
        };
        let method: Method =
            step.method.to_ascii_uppercase().parse().map_err(|_| {
                anyhow!("fixture {:?}: invalid method {:?}", step.name, step.method)
            })?;
        output::line(&format!("Running fixture for: {}", step.name));
        let reply = api.call(method, &path, &params, account.as_deref()).await?;
        if !reply.is_success() {
            let expected = step.expected_error_type.is_some()
                && reply.error_type() == step.expected_error_type.as_deref();
            if !expected {
                bail!(
                    "Trigger failed: fixture {:?} ({} {path}): {}",
                    step.name,
                    step.method.to_ascii_uppercase(),
                    reply.error_message()
                );
            }
        }
        responses.insert(step.name.clone(), reply.body);
    }
    output::line("Trigger succeeded! Check `switchboard events list` for event details.");
    Ok(())
}

/// `--override`, `--add` and `--remove`, grouped by step.
struct Edits {
    set: Vec<(String, Vec<String>, String)>,
    remove: Vec<(String, Vec<String>)>,
}

impl Edits {
    fn parse(run: &RunArgs, steps: &[&str]) -> anyhow::Result<Edits> {
        let target = |spec: &str, flag: &str| -> anyhow::Result<(String, String)> {
            let (step, rest) = spec
                .split_once(':')
                .ok_or_else(|| anyhow!("--{flag} {spec:?}: expected STEP:PARAM"))?;
            if !steps.contains(&step) {
                bail!(
                    "--{flag} {spec:?}: the fixture has no step {step:?} (steps: {})",
                    steps.join(", ")
                );
            }
            Ok((step.to_owned(), rest.to_owned()))
        };
        let mut set = Vec::new();
        for (flag, specs) in [("override", &run.overrides), ("add", &run.adds)] {
            for spec in specs {
                let (step, rest) = target(spec, flag)?;
                let (param, value) = rest
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--{flag} {spec:?}: expected STEP:PARAM=VALUE"))?;
                set.push((step, param_path(param)?, value.to_owned()));
            }
        }
        let mut remove = Vec::new();
        for spec in &run.removes {
            let (step, param) = target(spec, "remove")?;
            remove.push((step, param_path(&param)?));
        }
        Ok(Edits { set, remove })
    }

    fn apply(&self, step: &mut Step) {
        for (name, path, value) in &self.set {
            if *name == step.name {
                set_path(&mut step.params, path, Value::String(value.clone()));
            }
        }
        for (name, path) in &self.remove {
            if *name == step.name {
                remove_path(&mut step.params, path);
            }
        }
    }
}

/// `metadata.plan` or `metadata[plan]` → ["metadata", "plan"].
fn param_path(param: &str) -> anyhow::Result<Vec<String>> {
    let parts: Vec<String> = param
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .map(str::to_owned)
        .collect();
    if parts.iter().any(String::is_empty) {
        bail!("{param:?} is not a parameter name");
    }
    Ok(parts)
}

fn set_path(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("param_path is never empty");
    let mut here = map;
    for p in parents {
        let slot = here
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        here = slot.as_object_mut().expect("made an object above");
    }
    here.insert(last.clone(), value);
}

fn remove_path(map: &mut Map<String, Value>, path: &[String]) {
    let (last, parents) = path.split_last().expect("param_path is never empty");
    let mut here = map;
    for p in parents {
        match here.get_mut(p).and_then(Value::as_object_mut) {
            Some(next) => here = next,
            None => return,
        }
    }
    here.shift_remove(last);
}

fn resolve_map(
    params: &Map<String, Value>,
    responses: &HashMap<String, Value>,
) -> anyhow::Result<Map<String, Value>> {
    params
        .iter()
        .map(|(k, v)| Ok((k.clone(), resolve_value(v, responses)?)))
        .collect()
}

fn resolve_value(v: &Value, responses: &HashMap<String, Value>) -> anyhow::Result<Value> {
    Ok(match v {
        Value::String(s) => Value::String(resolve_str(s, responses)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| resolve_value(i, responses))
                .collect::<anyhow::Result<_>>()?,
        ),
        Value::Object(m) => Value::Object(resolve_map(m, responses)?),
        other => other.clone(),
    })
}

/// Replaces every `${step:json.path}` (or `${.env:VAR}`, either with an optional `|default`).
fn resolve_str(s: &str, responses: &HashMap<String, Value>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let inner_start = start + 2;
        let end = rest[inner_start..]
            .find('}')
            .ok_or_else(|| anyhow!("unclosed placeholder in {s:?}"))?
            + inner_start;
        out.push_str(&placeholder(&rest[inner_start..end], responses)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(spec: &str, responses: &HashMap<String, Value>) -> anyhow::Result<String> {
    let (reference, default) = match spec.split_once('|') {
        Some((r, d)) => (r, Some(d)),
        None => (spec, None),
    };
    let (name, path) = reference
        .split_once(':')
        .ok_or_else(|| anyhow!("placeholder ${{{spec}}} is not ${{step:path}}"))?;
    let found = if name == ".env" {
        std::env::var(path).ok()
    } else {
        let response = responses
            .get(name)
            .ok_or_else(|| anyhow!("placeholder ${{{spec}}} names no earlier step {name:?}"))?;
        lookup(response, path).and_then(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
    };
    match (found, default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_owned()),
        (None, None) => bail!("placeholder ${{{spec}}}: no value at {path:?}"),
    }
}

/// `charges.data.0.id` inside a JSON value.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |here, seg| match here {
        Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
        Value::Object(m) => m.get(seg),
        _ => None,
    })
}
