//! `switchboard platforms list | create | rotate-keys`: the operator's
//! commands for hosting more than one platform, over the admin API
//! (`serve --admin-key`). New keys are printed once.

use super::api::{Api, ClientArgs, params, segment};
use super::output::{self, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL of the Switchboard server.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_API_BASE",
        default_value = "http://127.0.0.1:12111",
        value_name = "URL"
    )]
    api_base: String,
    /// The key the server was started with (`serve --admin-key`).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_ADMIN_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    admin_key: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Every platform, with hints of its keys.
    List,
    /// A new platform with fresh keys (printed once).
    Create,
    /// New API keys for a platform; the old ones stop working.
    RotateKeys {
        /// The platform's account id (acct_…).
        id: String,
        /// Which keys: test, live or both.
        #[arg(long, default_value = "both", value_parser = ["test", "live", "both"])]
        mode: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = ClientArgs {
        api_base: args.api_base,
        api_key: Some(args.admin_key.ok_or_else(|| {
            anyhow::anyhow!("no admin key: pass --admin-key or set SWITCHBOARD_ADMIN_KEY (the key given to `serve --admin-key`)")
        })?),
    };
    let api = Api::new(&client)?;
    let format = args.output.resolve();
    const BASE: &str = "/switchboard/admin/v1/platforms";
    match args.command {
        Command::List => {
            let list = api.get(BASE, &params([]), None).await?;
            output::list(&list, format, &columns());
        }
        Command::Create => {
            let p = api.post(BASE, &params([]), None).await?;
            output::object(&p, format);
        }
        Command::RotateKeys { id, mode } => {
            let path = format!("{BASE}/{}/rotate_keys", segment(&id)?);
            let p = api
                .post(&path, &params([("mode", Some(mode.into()))]), None)
                .await?;
            output::object(&p, format);
        }
    }
    Ok(())
}

fn columns() -> [output::Column; 5] {
    [
        ("ID", |p| output::cell(&p["id"])),
        ("CLIENT ID", |p| output::cell(&p["client_id"])),
        ("CREATED", |p| {
            p["created"]
                .as_i64()
                .map(output::local_time)
                .unwrap_or_default()
        }),
        ("TEST KEY", |p| output::cell(&p["test_key_hint"])),
        ("LIVE KEY", |p| output::cell(&p["live_key_hint"])),
    ]
}
