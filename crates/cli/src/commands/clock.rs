//! `switchboard clock show | advance`: the platform's test-mode clock.
//! Advancing it makes what would happen in that time happen now: pending
//! funds become available, payouts arrive, uncaptured authorizations
//! expire, webhook retries come due.

use super::api::{Api, ClientArgs, params};
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
    /// Show the time the platform's API runs on (and how far ahead of real time).
    Show,
    /// Move the test-mode clock forward (like 30m, 6h, 8d) and fire what became due.
    Advance {
        /// How far: a number with a unit (s, m, h, d).
        #[arg(value_parser = switchboard_core::duration::parse_secs)]
        by: i64,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let format = args.output.resolve();
    let clock = match args.command {
        Command::Show => api.get("/switchboard/v1/clock", &params([]), None).await?,
        Command::Advance { by } => {
            api.post(
                "/switchboard/v1/clock/advance",
                &params([("seconds", Some(by.into()))]),
                None,
            )
            .await?
        }
    };
    let mut shown = clock.clone();
    if format == output::Format::Table
        && let Some(now) = clock["now"].as_i64()
    {
        shown["now"] = output::local_time(now).into();
    }
    output::object(&shown, format);
    Ok(())
}
