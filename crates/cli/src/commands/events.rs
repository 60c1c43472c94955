//! `switchboard events list | retrieve | resend`.

use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde_json::{Map, Value, json};

use super::api::{Api, ClientArgs, params, segment};
use super::output::{self, Format, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Act as this connected account (sends `Stripe-Account`): its events, not the platform's.
    #[arg(long, global = true, value_name = "ACCT_ID")]
    stripe_account: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// List events, newest first.
    List {
        /// How many (1 to 100).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Only this type, or a prefix pattern like `customer.*`.
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// `false`: only events some endpoint is still owed (pending_webhooks > 0); `true`: only fully delivered ones.
        #[arg(long, value_name = "BOOL")]
        delivery_success: Option<bool>,
        /// The page after this event id (what a previous page ended with).
        #[arg(long, value_name = "EVT_ID", conflicts_with = "thin")]
        starting_after: Option<String>,
        /// API v2's thin events (`/v2/core/events`): the `v1.<type>` of every
        /// v1 event and the v2-only ones (`v2.core.account.updated`…);
        /// `--type` is then an exact type.
        #[arg(long, conflicts_with = "delivery_success")]
        thin: bool,
        /// With --thin: only events about this object (its id).
        #[arg(long, value_name = "ID", requires = "thin")]
        object_id: Option<String>,
    },
    /// Show one event (always as JSON: events nest too deeply for a table).
    Retrieve {
        /// The event id (evt_…).
        id: String,
        /// As API v2 shows it (`/v2/core/events/{id}`, with `data` and `changes`);
        /// the only way to see a v2-only event.
        #[arg(long)]
        thin: bool,
    },
    /// Deliver events again: one event, or with --failed-since every event not
    /// yet delivered everywhere, to a webhook endpoint.
    ///
    /// Without --webhook-endpoint, a single event goes to every connected
    /// `switchboard listen` / `stripe listen` session.
    Resend(ResendArgs),
}

#[derive(clap::Args, Debug)]
struct ResendArgs {
    /// The event id (evt_…); omit with --failed-since.
    #[arg(
        required_unless_present = "failed_since",
        conflicts_with = "failed_since"
    )]
    id: Option<String>,
    /// The endpoint to deliver to (we_…); required with --failed-since.
    #[arg(long, value_name = "WE_ID")]
    webhook_endpoint: Option<String>,
    /// Resend every event created within this long (like 30m, 6h, 2d) whose
    /// delivery has not succeeded everywhere (pending_webhooks > 0).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "webhook_endpoint")]
    failed_since: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    switchboard_core::duration::parse_millis(s).map(Duration::from_millis)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let format = args.output.resolve();
    let acct = args.stripe_account.as_deref();
    match args.command {
        Command::List {
            limit,
            event_type,
            thin: true,
            object_id,
            ..
        } => {
            if event_type.as_deref().is_some_and(|t| t.contains('*')) {
                bail!("--type: thin events are filtered by exact type (no `*` patterns)");
            }
            let p = params([
                ("limit", Some(limit.into())),
                ("types", event_type.map(|t| json!([t]))),
                ("object_id", object_id.map(Value::from)),
            ]);
            let list = api.get("/v2/core/events", &p, acct).await?;
            output::list(&list, format, &thin_columns());
        }
        Command::List {
            limit,
            event_type,
            delivery_success,
            starting_after,
            ..
        } => {
            let p = params([
                ("limit", Some(limit.into())),
                ("type", event_type.map(Value::from)),
                ("delivery_success", delivery_success.map(Value::from)),
                ("starting_after", starting_after.map(Value::from)),
            ]);
            let list = api.get("/v1/events", &p, acct).await?;
            output::list(&list, format, &columns());
        }
        Command::Retrieve { id, thin } => {
            let base = if thin {
                "/v2/core/events"
            } else {
                "/v1/events"
            };
            let event = api
                .get(&format!("{base}/{}", segment(&id)?), &Map::new(), acct)
                .await?;
            output::print_json(&event);
        }
        Command::Resend(r) => match (r.id, r.failed_since) {
            (Some(id), _) => resend_one(&api, acct, &id, r.webhook_endpoint, format).await?,
            (None, Some(since)) => {
                let endpoint = r.webhook_endpoint.expect("clap requires it");
                resend_failed(&api, acct, since, &endpoint, format).await?
            }
            (None, None) => unreachable!("clap requires one"),
        },
    }
    Ok(())
}

fn columns() -> [output::Column; 5] {
    [
        ("ID", |e| output::cell(&e["id"])),
        ("TYPE", |e| output::cell(&e["type"])),
        ("ACCOUNT", |e| output::cell(&e["account"])),
        ("CREATED", |e| {
            e["created"]
                .as_i64()
                .map(output::local_time)
                .unwrap_or_default()
        }),
        ("PENDING", |e| output::cell(&e["pending_webhooks"])),
    ]
}

fn thin_columns() -> [output::Column; 5] {
    [
        ("ID", |e| output::cell(&e["id"])),
        ("TYPE", |e| output::cell(&e["type"])),
        ("CONTEXT", |e| output::cell(&e["context"])),
        ("CREATED", |e| output::cell(&e["created"])),
        ("RELATED", |e| output::cell(&e["related_object"]["id"])),
    ]
}

fn resend_params(endpoint: Option<&str>) -> Map<String, Value> {
    match endpoint {
        Some(we) => params([("webhook_endpoint", Some(we.into()))]),
        None => params([("for_stripecli", Some(true.into()))]),
    }
}

async fn resend_one(
    api: &Api,
    acct: Option<&str>,
    id: &str,
    endpoint: Option<String>,
    format: Format,
) -> anyhow::Result<()> {
    let path = format!("/v1/events/{}/retry", segment(id)?);
    let event = api
        .post(&path, &resend_params(endpoint.as_deref()), acct)
        .await?;
    match format {
        Format::Json => output::print_json(&event),
        Format::Table => output::line(&format!(
            "Resent {id} ({}) to {}",
            output::cell(&event["type"]),
            endpoint
                .as_deref()
                .unwrap_or("the connected listen sessions")
        )),
    }
    Ok(())
}

/// Lists every event created since `now - since` with `delivery_success=false`,
/// then resends each to `endpoint`.
async fn resend_failed(
    api: &Api,
    acct: Option<&str>,
    since: Duration,
    endpoint: &str,
    format: Format,
) -> anyhow::Result<()> {
    segment(endpoint)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let gte = now - since.as_secs() as i64;
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = params([
            ("limit", Some(100.into())),
            ("delivery_success", Some(false.into())),
            ("created", Some(json!({"gte": gte}))),
            ("starting_after", after.take().map(Value::from)),
        ]);
        let page = api.get("/v1/events", &p, acct).await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        ids.extend(
            data.iter()
                .filter_map(|e| e["id"].as_str().map(String::from)),
        );
        match data.last().and_then(|e| e["id"].as_str()) {
            Some(last) if page["has_more"] == true => after = Some(last.to_owned()),
            _ => break,
        }
    }
    let bar = (format == Format::Table && std::io::stdout().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(ids.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let p = resend_params(Some(endpoint));
    let mut resent = Vec::new();
    let mut failed = Vec::new();
    for id in &ids {
        if let Some(b) = &bar {
            b.set_message(id.clone());
        }
        match api.post(&format!("/v1/events/{id}/retry"), &p, acct).await {
            Ok(_) => resent.push(id.clone()),
            Err(e) => failed.push((id.clone(), format!("{e:#}"))),
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match format {
        Format::Json => output::print_json(&json!({
            "webhook_endpoint": endpoint,
            "resent": resent,
            "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
        })),
        Format::Table => {
            for (id, e) in &failed {
                output::status(&format!("could not resend {id}: {e}"));
            }
            output::line(&format!(
                "Resent {} event{} to {endpoint}",
                resent.len(),
                if resent.len() == 1 { "" } else { "s" }
            ));
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} events could not be resent",
            failed.len(),
            ids.len()
        );
    }
    Ok(())
}
