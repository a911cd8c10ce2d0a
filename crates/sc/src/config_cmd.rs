//! `sc config show|add-service|remove-service`: the services skills reach
//! through the `home.*`, `data.*`, `fleet.*`, `notify.*` and `cost.*`
//! capabilities (`sharkcage::skills::services`). A credential's value is
//! read from this command's environment, never from its command line
//! (which every local user can read), and never printed.

use std::collections::BTreeMap;

use sharkcage::skills::grants::GrantStore;
use sharkcage::skills::services::{ServiceStore, StoredService};

#[derive(clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    cmd: ConfigCmd,
}

#[derive(clap::Subcommand)]
enum ConfigCmd {
    /// The configured services (credential values are never shown).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) a service: `sc config add-service ha --family home
    /// --endpoint ha.lan:8123 --credential HA_TOKEN` (HA_TOKEN's value is
    /// taken from this command's environment).
    AddService {
        name: String,
        /// A capability family (`home`, `data`, `fleet`, `notify`, `cost`)
        /// or one full capability name (`data.meals`).
        #[arg(long)]
        family: String,
        /// `host:port`, reached as an exact entry through the proxy.
        #[arg(long)]
        endpoint: String,
        /// A variable injected into the skills' sandboxes; its value is read
        /// from this command's environment (repeatable).
        #[arg(long, value_name = "VAR")]
        credential: Vec<String>,
    },
    /// Remove a service.
    RemoveService { name: String },
}

fn store() -> Result<ServiceStore, String> {
    GrantStore::open_default().map(|g| ServiceStore::at(g.dir())).map_err(|e| e.to_string())
}

pub fn run(a: ConfigArgs) -> i32 {
    let st = match store() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sc: {e}");
            return 1;
        }
    };
    match a.cmd {
        ConfigCmd::Show { json } => show(&st, json),
        ConfigCmd::AddService { name, family, endpoint, credential } => add(&st, name, family, endpoint, credential),
        ConfigCmd::RemoveService { name } => remove(&st, &name),
    }
}

fn show(st: &ServiceStore, json: bool) -> i32 {
    let s = match st.load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sc: {e}");
            return 1;
        }
    };
    if json {
        let v: Vec<serde_json::Value> = s.services.iter().map(|x| serde_json::json!({ "name": x.name, "family": x.family, "endpoint": x.endpoint, "credentials": x.credentials.keys().collect::<Vec<_>>() })).collect();
        println!("{}", serde_json::json!({ "file": st.path(), "services": v }));
        return 0;
    }
    println!("Services ({}):", st.path().display());
    if s.services.is_empty() {
        println!("  none (add one with: sc config add-service NAME --family F --endpoint HOST:PORT [--credential VAR])");
    }
    for x in &s.services {
        let creds: Vec<&str> = x.credentials.keys().map(String::as_str).collect();
        println!("  {:<16} {:<10} {}  credentials: {}", x.name, x.family, x.endpoint, if creds.is_empty() { "none".into() } else { creds.join(", ") });
    }
    0
}

fn add(st: &ServiceStore, name: String, family: String, endpoint: String, vars: Vec<String>) -> i32 {
    let mut credentials = BTreeMap::new();
    for v in &vars {
        match std::env::var(v) {
            Ok(val) if !val.is_empty() => {
                credentials.insert(v.clone(), val);
            }
            _ => {
                eprintln!("sc: --credential {v}: set {v} in this command's environment (a value is never taken from the command line)");
                return 2;
            }
        }
    }
    let svc = StoredService { name: name.clone(), family, endpoint, credentials };
    let r = st.update(|s| {
        s.services.retain(|o| o.name != svc.name);
        s.services.push(svc.clone());
        Ok(())
    });
    match r {
        Ok(()) => {
            println!("Service {name} saved ({}); skills granted a capability it serves reach {} with {}.", st.path().display(), svc.endpoint, if vars.is_empty() { "no credentials".into() } else { vars.join(", ") });
            0
        }
        Err(e) => {
            eprintln!("sc: {e}");
            2
        }
    }
}

fn remove(st: &ServiceStore, name: &str) -> i32 {
    let r = st.update(|s| {
        let before = s.services.len();
        s.services.retain(|o| o.name != name);
        Ok(before != s.services.len())
    });
    match r {
        Ok(true) => {
            println!("Service {name} removed.");
            0
        }
        Ok(false) => {
            eprintln!("sc: no service named {name:?}");
            1
        }
        Err(e) => {
            eprintln!("sc: {e}");
            1
        }
    }
}
