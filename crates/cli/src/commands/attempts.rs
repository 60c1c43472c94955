//! `switchboard attempts list`: the delivery attempt log of an event or an endpoint.

use serde_json::Value;

use super::api::{Api, ClientArgs, params, segment};
use super::output::{self, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// List delivery attempts, newest first, of one event or to one endpoint.
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("of").required(true).args(["event", "endpoint"])))]
struct ListArgs {
    /// Attempts to deliver this event (evt_…).
    #[arg(long, value_name = "EVT_ID")]
    event: Option<String>,
    /// Attempts to deliver to this endpoint (we_…), `stripe listen` devices included.
    #[arg(long, value_name = "WE_ID")]
    endpoint: Option<String>,
    /// Act as this connected account (sends `Stripe-Account`), for its events.
    #[arg(long, value_name = "ACCT_ID")]
    stripe_account: Option<String>,
    /// How many (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// The page after this attempt id.
    #[arg(long, value_name = "ATT_ID")]
    starting_after: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let format = args.output.resolve();
    let Command::List(l) = args.command;
    let path = match (&l.event, &l.endpoint) {
        (Some(evt), _) => format!("/switchboard/v1/events/{}/attempts", segment(evt)?),
        (None, Some(we)) => format!(
            "/switchboard/v1/webhook_endpoints/{}/attempts",
            segment(we)?
        ),
        (None, None) => unreachable!("clap requires one"),
    };
    let p = params([
        ("limit", Some(l.limit.into())),
        ("starting_after", l.starting_after.map(Value::from)),
    ]);
    let list = api.get(&path, &p, l.stripe_account.as_deref()).await?;
    output::list(&list, format, &columns());
    Ok(())
}

fn columns() -> [output::Column; 8] {
    [
        ("CREATED", |a| {
            a["created"]
                .as_i64()
                .map(output::local_time)
                .unwrap_or_default()
        }),
        ("EVENT", |a| output::cell(&a["event"])),
        ("ENDPOINT", |a| output::cell(&a["webhook_endpoint"])),
        ("#", |a| output::cell(&a["attempt"])),
        ("RESULT", |a| match (&a["status_code"], &a["error"]) {
            (Value::Number(n), _) => n.to_string(),
            (_, Value::String(e)) => e.clone(),
            _ => String::new(),
        }),
        ("MS", |a| output::cell(&a["duration_ms"])),
        // What chaos mode injected, if it ran.
        ("CHAOS", |a| {
            a["chaos"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        }),
        ("NEXT", |a| {
            let next = output::cell(&a["next_action"]);
            match a["next_attempt_at"].as_i64() {
                Some(t) => format!("{next} {}", output::local_time(t)),
                None => next,
            }
        }),
    ]
}
