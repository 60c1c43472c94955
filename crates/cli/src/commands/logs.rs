//! `switchboard logs tail`: the API requests the server handles, as they
//! happen, like `stripe logs tail` (which also works against Switchboard).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::api::{Api, ClientArgs, params};
use super::output;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print each API request the server handles from now on, until ^C.
    Tail(TailArgs),
}

#[derive(clap::Args, Debug)]
struct TailArgs {
    /// Only this HTTP method (GET, POST, DELETE).
    #[arg(long)]
    filter_http_method: Option<String>,
    /// Only this status code (e.g. 400).
    #[arg(long)]
    filter_status_code: Option<String>,
    /// Only this path and the paths below it (e.g. /v1/customers).
    #[arg(long)]
    filter_request_path: Option<String>,
    /// One JSON object per request instead of a line.
    #[arg(long)]
    json: bool,
}

/// How often the server's request log is read.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let Command::Tail(t) = args.command;
    let p = params([
        ("limit", Some(100.into())),
        ("method", t.filter_http_method.map(Value::from)),
        ("status", t.filter_status_code.map(Value::from)),
        ("path", t.filter_request_path.map(Value::from)),
    ]);
    // What is already in the log is history: only what comes after is shown.
    let mut seen: HashSet<String> = ids(&api.get("/switchboard/v1/request_logs", &p, None).await?);
    output::status("Ready! Tailing API request logs (^C to quit)");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        let page = api.get("/switchboard/v1/request_logs", &p, None).await?;
        let entries = page["data"].as_array().cloned().unwrap_or_default();
        // The API lists newest first; print in the order they happened.
        for entry in entries.iter().rev() {
            let Some(id) = entry["id"].as_str() else {
                continue;
            };
            if !seen.insert(id.to_owned()) {
                continue;
            }
            if t.json {
                output::line(&entry.to_string());
                continue;
            }
            output::line(&format!(
                "{} [{}] {} {} [{id}]",
                entry["created"]
                    .as_i64()
                    .map(output::local_time)
                    .unwrap_or_default(),
                output::cell(&entry["status"]),
                output::cell(&entry["method"]),
                output::cell(&entry["url"]),
            ));
            if let Some(message) = entry["error"]["message"].as_str() {
                output::line(&format!(
                    "  {}: {message}",
                    output::cell(&entry["error"]["type"])
                ));
            }
        }
        // Forget what has scrolled out of the server's window.
        let current = ids(&page);
        seen.retain(|id| current.contains(id));
    }
}

fn ids(page: &Value) -> HashSet<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect()
}
