//! `switchboard endpoints list | retrieve | create | update | delete | roll-secret`.

use serde_json::{Map, Value};

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
    /// List webhook endpoints, newest first.
    List {
        /// How many (1 to 100).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// The page after this endpoint id.
        #[arg(long, value_name = "WE_ID")]
        starting_after: Option<String>,
    },
    /// Show one webhook endpoint.
    Retrieve {
        /// The endpoint id (we_…).
        id: String,
    },
    /// Create a webhook endpoint; the output includes its signing secret, shown only now.
    Create {
        /// Where to deliver events.
        #[arg(long)]
        url: String,
        /// Event types to deliver, comma-separated; `*` for all.
        #[arg(long, value_delimiter = ',', default_value = "*", value_name = "TYPES")]
        events: Vec<String>,
        /// A Connect endpoint: receives the events of connected accounts instead of the platform's.
        #[arg(long)]
        connect: bool,
        /// A description to remember it by.
        #[arg(long)]
        description: Option<String>,
        /// Pin the API version of the payloads.
        #[arg(long, value_name = "VERSION")]
        api_version: Option<String>,
    },
    /// Change a webhook endpoint.
    Update {
        /// The endpoint id (we_…).
        id: String,
        /// New delivery URL.
        #[arg(long)]
        url: Option<String>,
        /// New event types, comma-separated; `*` for all.
        #[arg(long, value_delimiter = ',', value_name = "TYPES")]
        events: Option<Vec<String>>,
        /// `true` stops deliveries; `false` (re-)enables the endpoint.
        #[arg(long, value_name = "BOOL")]
        disabled: Option<bool>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a webhook endpoint.
    Delete {
        /// The endpoint id (we_…).
        id: String,
    },
    /// Give an endpoint a new signing secret; the old one keeps signing too for a while.
    RollSecret {
        /// The endpoint id (we_…).
        id: String,
        /// Seconds the current secret keeps signing (default 86400; 0 = stop now; at most 7 days).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let format = args.output.resolve();
    let result = match args.command {
        Command::List {
            limit,
            starting_after,
        } => {
            let p = params([
                ("limit", Some(limit.into())),
                ("starting_after", starting_after.map(Value::from)),
            ]);
            let list = api.get("/v1/webhook_endpoints", &p, None).await?;
            output::list(&list, format, &columns());
            return Ok(());
        }
        Command::Retrieve { id } => api.get(&path(&id)?, &Map::new(), None).await?,
        Command::Create {
            url,
            events,
            connect,
            description,
            api_version,
        } => {
            let p = params([
                ("url", Some(url.into())),
                ("enabled_events", Some(events.into())),
                ("connect", connect.then_some(true.into())),
                ("description", description.map(Value::from)),
                ("api_version", api_version.map(Value::from)),
            ]);
            api.post("/v1/webhook_endpoints", &p, None).await?
        }
        Command::Update {
            id,
            url,
            events,
            disabled,
            description,
        } => {
            let p = params([
                ("url", url.map(Value::from)),
                ("enabled_events", events.map(Value::from)),
                ("disabled", disabled.map(Value::from)),
                ("description", description.map(Value::from)),
            ]);
            api.post(&path(&id)?, &p, None).await?
        }
        Command::Delete { id } => api.delete(&path(&id)?).await?,
        Command::RollSecret { id, expires_in } => {
            let p = params([("expires_in", expires_in.map(Value::from))]);
            let path = format!(
                "/switchboard/v1/webhook_endpoints/{}/roll_secret",
                segment(&id)?
            );
            api.post(&path, &p, None).await?
        }
    };
    output::object(&result, format);
    Ok(())
}

fn path(id: &str) -> anyhow::Result<String> {
    Ok(format!("/v1/webhook_endpoints/{}", segment(id)?))
}

fn columns() -> [output::Column; 5] {
    [
        ("ID", |e| output::cell(&e["id"])),
        ("URL", |e| output::cell(&e["url"])),
        ("STATUS", |e| output::cell(&e["status"])),
        ("CONNECT", |e| {
            if e["application"].is_null() {
                "no"
            } else {
                "yes"
            }
            .into()
        }),
        ("EVENTS", |e| output::cell(&e["enabled_events"])),
    ]
}
