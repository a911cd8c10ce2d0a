//! `sc home`: see and remove the private home layers (see
//! `sharkcage::launcher::home_layer`): what sandboxes wrote under `$HOME`,
//! kept per workspace (or name, or OpenClaw sandbox scope).

use std::path::PathBuf;

use sharkcage::launcher::home_layer::{self, Listed};

#[derive(clap::Args)]
pub struct HomeArgs {
    #[command(subcommand)]
    cmd: HomeCmd,
}

#[derive(clap::Subcommand)]
enum HomeCmd {
    /// Every kept layer: key, size, files, last use.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove layers: the one of a workspace, of a name, or all of them.
    Clear {
        /// The layer `sc exec --workspace DIR` uses.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "all"])]
        workspace: Option<PathBuf>,
        /// The layer `--home-layer NAME` uses (OpenClaw's: see `sc home list`).
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        name: Option<String>,
        /// Every layer.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(a: HomeArgs) -> i32 {
    match a.cmd {
        HomeCmd::List { json } => list(json),
        HomeCmd::Clear { workspace, name, all } => clear(workspace, name, all),
    }
}

fn ago(t: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match now.saturating_sub(t) {
        _ if t == 0 => "never".into(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

fn list(json: bool) -> i32 {
    let layers = home_layer::list();
    if json {
        println!("{}", serde_json::to_string_pretty(&layers).unwrap_or_default());
        return 0;
    }
    match home_layer::root() {
        Some(r) => println!("home layers in {}", r.display()),
        None => println!("no state directory is known"),
    }
    if layers.is_empty() {
        println!("(none)");
    }
    for l in &layers {
        let busy = if l.in_use { "  (in use)" } else { "" };
        println!("{:>10}  {:>7} files  used {:<14} {}{busy}", home_layer::human(l.meta.bytes), l.meta.files, ago(l.meta.last_used_at), l.meta.key);
    }
    0
}

fn clear(workspace: Option<PathBuf>, name: Option<String>, all: bool) -> i32 {
    let layers = home_layer::list();
    let wanted: Option<String> = if all {
        None
    } else if let Some(n) = name {
        match home_layer::Request::parse(&n) {
            Ok(r @ home_layer::Request::Named(_)) => home_layer::key_for(&r, None),
            _ => {
                eprintln!("sc home clear: --name {n:?}: not a layer name");
                return 2;
            }
        }
    } else {
        // Default: the current directory's workspace layer.
        let ws = workspace.or_else(|| std::env::current_dir().ok());
        home_layer::key_for(&home_layer::Request::Workspace, ws.as_deref())
    };
    let chosen: Vec<&Listed> = layers.iter().filter(|l| wanted.as_ref().is_none_or(|k| &l.meta.key == k)).collect();
    if chosen.is_empty() {
        println!("no home layer {}", wanted.map(|k| format!("for {k}")).unwrap_or_default());
        return 0;
    }
    let mut failed = false;
    for l in chosen {
        match home_layer::remove(l) {
            Ok(b) => println!("removed {} ({})", l.meta.key, home_layer::human(b)),
            Err(e) => {
                eprintln!("sc home clear: {e}");
                failed = true;
            }
        }
    }
    if failed {
        1
    } else {
        0
    }
}
