//! Golden policies for all 19 capabilities, the errors for what cannot be
//! expressed, manifest validation messages, and directory identity.

use std::path::Path;

use serde_json::{json, Value};

use super::capabilities::{self, compile, intersect, Context, Exec, Kind, ALL};
use super::identity::{self, Change, Entry};
use super::manifest::{self, Format};
use super::*;
use crate::policy::Policy;

fn svc(name: &str, family: &str, endpoint: &str, env: &[&str]) -> Service {
    Service { name: name.into(), family: family.into(), endpoint: endpoint.into(), credential_env: env.iter().map(|s| s.to_string()).collect() }
}

fn services() -> Vec<Service> {
    vec![
        svc("ha", "home", "homeassistant.local:8123", &["HA_URL", "HA_TOKEN"]),
        svc("meals", "data.meals", "127.0.0.1:8788", &["MEALS_API_URL", "MEALS_API_TOKEN"]),
        svc("history", "data.history", "history.internal:7001", &["HISTORY_TOKEN"]),
        svc("memory", "data.memory", "memory.internal:7002", &["MEMORY_TOKEN"]),
        svc("prefs", "data.preferences", "prefs.internal:7003", &[]),
        svc("nomad", "fleet", "nomad.internal:4646", &["NOMAD_ADDR", "NOMAD_TOKEN"]),
        svc("signal", "notify.signal", "127.0.0.1:8080", &["SIGNAL_CLI_URL", "SIGNAL_ACCOUNT"]),
        svc("ntfy", "notify.push", "ntfy.sh:443", &["NTFY_TOKEN"]),
        svc("openrouter", "cost", "openrouter.ai:443", &["OPENROUTER_API_KEY"]),
    ]
}

const WS: &str = "/srv/workspace";
const HOME: &str = "/home/u";

fn req(cap: &str, scope: &[&str]) -> Request {
    Request { capability: Capability::from_name(cap).unwrap(), reason: "because".into(), scope: scope.iter().map(|s| s.to_string()).collect() }
}

fn run(reqs: &[Request], services: &[Service]) -> Result<Value, CapabilityError> {
    let cx = Context { workspace: Path::new(WS), home: Some(Path::new(HOME)), services };
    compile(reqs, &cx).map(|g| serde_json::to_value(g).unwrap())
}

fn golden(cap: &str, scope: &[&str]) -> Value {
    let v = run(&[req(cap, scope)], &services()).unwrap_or_else(|e| panic!("{cap}: {e}"));
    // The fragment is a valid policy as it stands.
    Policy::from_json(&v["policy"].to_string(), cap).unwrap_or_else(|e| panic!("{cap}: {e}"));
    v
}

/// The exact grant of each capability (one row per capability, all 19).
#[test]
fn golden_policies_for_all_19() {
    let svc_grant = |host: &str, env: &[(&str, &str)]| {
        let mut inject = serde_json::Map::new();
        for (n, s) in env {
            inject.insert(n.to_string(), json!({ "service": s }));
        }
        let mut names: Vec<&str> = env.iter().map(|(n, _)| *n).collect();
        names.sort();
        let mut policy = json!({ "network": { "allowedDomains": [host] } });
        if !names.is_empty() {
            policy["env"] = json!(names);
        }
        let mut g = json!({ "policy": policy, "exec": "skill-only" });
        if !inject.is_empty() {
            g["injectEnv"] = Value::Object(inject);
        }
        g
    };
    let ha = svc_grant("homeassistant.local:8123", &[("HA_URL", "ha"), ("HA_TOKEN", "ha")]);
    let nomad = svc_grant("nomad.internal:4646", &[("NOMAD_ADDR", "nomad"), ("NOMAD_TOKEN", "nomad")]);
    let table: Vec<(&str, Vec<&str>, Value)> = vec![
        (
            "network.external",
            vec!["api.open-meteo.com", "*.githubusercontent.com", "api.example.com:8443", "93.184.216.34"],
            json!({ "policy": { "network": { "allowedDomains": ["api.open-meteo.com", "*.githubusercontent.com", "api.example.com:8443", "93.184.216.34"] } }, "exec": "skill-only" }),
        ),
        (
            "network.internal",
            vec!["localhost:8080", "db.internal:5432", "10.0.0.5:9200", "[::1]:3000"],
            json!({ "policy": { "network": { "allowedDomains": ["localhost:8080", "db.internal:5432", "10.0.0.5:9200", "[::1]:3000"] } }, "exec": "skill-only" }),
        ),
        ("home.read", vec![], ha.clone()),
        ("home.control", vec![], ha.clone()),
        ("home.automation", vec!["ha"], ha),
        ("data.meals", vec![], svc_grant("127.0.0.1:8788", &[("MEALS_API_URL", "meals"), ("MEALS_API_TOKEN", "meals")])),
        ("data.history", vec![], svc_grant("history.internal:7001", &[("HISTORY_TOKEN", "history")])),
        ("data.memory", vec![], svc_grant("memory.internal:7002", &[("MEMORY_TOKEN", "memory")])),
        ("data.preferences", vec![], svc_grant("prefs.internal:7003", &[])),
        ("fleet.dispatch", vec![], nomad.clone()),
        ("fleet.read", vec![], nomad.clone()),
        ("fleet.manage", vec![], nomad),
        ("notify.signal", vec![], svc_grant("127.0.0.1:8080", &[("SIGNAL_CLI_URL", "signal"), ("SIGNAL_ACCOUNT", "signal")])),
        ("notify.push", vec![], svc_grant("ntfy.sh:443", &[("NTFY_TOKEN", "ntfy")])),
        (
            "system.files.read",
            vec!["data/input.csv", "~/Documents/recipes", "/usr/share/dict/words", "notes/"],
            json!({ "policy": { "filesystem": { "allowRead": [
                "/srv/workspace/data/input.csv", "~/Documents/recipes", "/usr/share/dict/words", "/srv/workspace/notes"
            ] } }, "exec": "skill-only" }),
        ),
        (
            "system.files.write",
            vec!["out", "~/Downloads/reports", "/tmp/skill-cache"],
            json!({ "policy": { "filesystem": { "allowWrite": ["/srv/workspace/out", "~/Downloads/reports", "/tmp/skill-cache"] } }, "exec": "skill-only" }),
        ),
        ("system.exec", vec![], json!({ "policy": {}, "exec": "any" })),
        (
            "system.env",
            vec!["OPENMETEO_KEY", "UNITS"],
            json!({ "policy": { "env": ["OPENMETEO_KEY", "UNITS"] }, "exec": "skill-only",
                    "injectEnv": { "OPENMETEO_KEY": "skill", "UNITS": "skill" } }),
        ),
        ("cost.api", vec![], svc_grant("openrouter.ai:443", &[("OPENROUTER_API_KEY", "openrouter")])),
    ];
    assert_eq!(table.len(), 19);
    let mut covered: Vec<&str> = table.iter().map(|(c, _, _)| *c).collect();
    covered.sort();
    let mut all: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    all.sort();
    assert_eq!(covered, all, "every capability has a golden row");
    for (cap, scope, want) in table {
        assert_eq!(golden(cap, &scope), want, "{cap}");
    }
}

fn err(reqs: &[Request], services: &[Service]) -> String {
    run(reqs, services).expect_err("must be refused").to_string()
}

/// What cannot be expressed exactly is an error naming the capability,
/// the scope entry and why.
#[test]
fn inexpressible_requests_are_errors() {
    let s = services();
    let cases: Vec<(Request, &str)> = vec![
        (req("network.external", &[]), "network.external: needs a scope: list the hosts"),
        (req("network.external", &["*"]), "network.external: scope[0] \"*\": \"*\" would allow every host"),
        (req("network.external", &["10.1.2.3"]), "scope[0] \"10.1.2.3\": a private address; network.external is for public destinations"),
        (req("network.external", &["ok.example.com", "127.0.0.1:8080"]), "scope[1] \"127.0.0.1:8080\": a loopback address"),
        (req("network.external", &["169.254.169.254"]), "a cloud-metadata address"),
        (req("network.external", &["[::1]:443"]), "a loopback address"),
        (req("network.external", &["localhost:3000"]), "a local name; use network.internal"),
        (req("network.external", &["printer.local"]), "a local name"),
        (req("network.external", &["*.home.arpa"]), "a local name"),
        (req("network.external", &["*.com"]), "at least two labels"),
        (req("network.external", &["https://api.example.com/v1"]), "not a URL"),
        (req("network.internal", &[]), "network.internal: needs a scope"),
        (req("network.internal", &["db.internal"]), "scope[0] \"db.internal\": no port; write host:port"),
        (req("network.internal", &["*.internal.example.com:80"]), "a wildcard; name each service exactly"),
        (req("network.internal", &["169.254.169.254:80"]), "a cloud-metadata address, never a service"),
        (req("system.files.read", &[]), "system.files.read: needs a scope"),
        (req("system.files.read", &["~/.ssh/id_ed25519"]), "inside the mandatory read-deny /home/u/.ssh"),
        (req("system.files.read", &["/etc/shadow"]), "inside the mandatory read-deny /etc/shadow"),
        (req("system.files.read", &["/run/secrets/db"]), "inside the mandatory read-deny /run/secrets"),
        (req("system.files.write", &["~/.openclaw/openclaw.json"]), "inside the mandatory read-deny /home/u/.openclaw"),
        (req("system.files.write", &["../other"]), "\"..\"; write the path without it"),
        (req("system.files.write", &["/srv/workspace/a/../../etc"]), "\"..\""),
        (req("system.files.read", &["data/*.csv"]), "glob characters"),
        (req("system.files.read", &["~root/x"]), "~user paths are not supported"),
        (req("system.exec", &["/usr/bin/git"]), "system.exec: takes no scope: the sandbox cannot limit which programs run"),
        (req("system.env", &[]), "system.env: needs a scope"),
        (req("system.env", &["PATH"]), "scope[0] \"PATH\": set by the launcher"),
        (req("system.env", &["HTTPS_PROXY"]), "set by the launcher"),
        (req("system.env", &["AWS_*"]), "a pattern; name each variable exactly"),
        (req("system.env", &["1ABC"]), "not a variable name"),
        (req("system.env", &["A-B"]), "not a variable name"),
        (req("system.env", &["SHARKCAGE_GRANT"]), "reserved for sharkcage"),
        (req("system.env", &["HA_TOKEN"]), "a credential of service \"ha\"; request its capability instead"),
        (req("home.read", &["nope"]), "home.read: scope[0] \"nope\": no configured service of that name serves home.read (configured: ha)"),
    ];
    for (r, want) in cases {
        let got = err(std::slice::from_ref(&r), &s);
        assert!(got.contains(want), "{:?} {:?}:\n  got  {got}\n  want {want}", r.capability, r.scope);
    }
}

#[test]
fn service_capabilities_need_a_configured_service() {
    for c in ALL.iter().filter(|c| c.kind() == Kind::Service) {
        let got = err(&[req(c.name(), &[])], &[]);
        assert_eq!(got, format!("{c}: no service of family {:?} is configured; add one with `sc config add-service`", c.family()));
    }
    let two = vec![svc("ha1", "home", "a.internal:1", &[]), svc("ha2", "home.read", "b.internal:2", &[])];
    assert_eq!(err(&[req("home.read", &[])], &two), "home.read: several services serve it (ha1, ha2); name one in the scope");
    assert_eq!(run(&[req("home.read", &["ha2"])], &two).unwrap()["policy"]["network"]["allowedDomains"], json!(["b.internal:2"]));
    // A service that is itself wrong is named.
    let bad = vec![svc("ha", "home", "homeassistant.local", &[])];
    assert_eq!(err(&[req("home.read", &[])], &bad), "service \"ha\": endpoint \"homeassistant.local\": no port; write host:port");
    let bad = vec![svc("x", "nothing", "a.internal:1", &[])];
    assert!(err(&[req("home.read", &[])], &bad).contains("no service of family"));
    let bad = vec![svc("ha", "home", "a.internal:1", &["HOME"])];
    assert!(err(&[req("home.read", &[])], &bad).contains("credential variable \"HOME\": set by the launcher"));
}

#[test]
fn one_variable_one_source_and_no_duplicates() {
    let s = vec![svc("a", "home", "a.internal:1", &["TOKEN_X"]), svc("b", "cost", "b.example.com:443", &["TOKEN_X"])];
    assert!(err(&[req("home.read", &[]), req("cost.api", &[])], &s).contains("TOKEN_X: also injected from"));
    assert_eq!(err(&[req("system.exec", &[]), req("system.exec", &[])], &[]), "system.exec: declared twice; merge the scopes into one entry");
}

#[test]
fn several_capabilities_combine_and_apply_to_a_base_policy() {
    let reqs = [
        req("network.external", &["api.example.com"]),
        req("home.read", &[]),
        req("home.control", &[]),
        req("system.files.write", &["out"]),
        req("system.env", &["UNITS"]),
        req("system.exec", &[]),
    ];
    let g = run(&reqs, &services()).unwrap();
    assert_eq!(
        g,
        json!({
            "policy": {
                "filesystem": { "allowWrite": ["/srv/workspace/out"] },
                "network": { "allowedDomains": ["api.example.com", "homeassistant.local:8123"] },
                "env": ["HA_TOKEN", "HA_URL", "UNITS"]
            },
            "exec": "any",
            "injectEnv": { "HA_TOKEN": { "service": "ha" }, "HA_URL": { "service": "ha" }, "UNITS": "skill" }
        })
    );
    let base = Policy::from_json(r#"{"network":{"allowedDomains":["api.example.com","pypi.org"]},"env":["EDITOR"],"filesystem":{"allowWrite":["/srv/workspace"]}}"#, "base").unwrap();
    let svcs = services();
    let cx = Context { workspace: Path::new(WS), home: Some(Path::new(HOME)), services: &svcs };
    let sp = capabilities::apply(&reqs, &cx, &base).unwrap();
    assert_eq!(sp.policy.network.allowed_domains, vec!["api.example.com", "pypi.org", "homeassistant.local:8123"]);
    assert_eq!(sp.policy.env, vec!["EDITOR", "HA_TOKEN", "HA_URL", "UNITS"]);
    let w: Vec<&str> = sp.policy.filesystem.allow_write.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(w, vec!["/srv/workspace", "/srv/workspace/out"]);
    assert_eq!(sp.exec, Exec::Any);
    // Nothing requested: the base policy unchanged, only the skill's own entry runs.
    let sp = capabilities::apply(&[], &cx, &base).unwrap();
    assert_eq!(sp.policy.network.allowed_domains, base.network.allowed_domains);
    assert_eq!(sp.exec, Exec::SkillOnly);
    assert!(sp.inject_env.is_empty());
}

#[test]
fn intersection_with_a_ceiling() {
    let requested = [
        req("network.external", &["api.github.com", "evil.example.com", "raw.githubusercontent.com:8443"]),
        req("system.files.read", &["/data/a/b", "/etc/hosts"]),
        req("system.exec", &[]),
        req("cost.api", &[]),
    ];
    let ceiling = [req("network.external", &["*.github.com", "*.githubusercontent.com"]), req("system.files.read", &["/data"]), req("cost.api", &[])];
    let i = intersect(&requested, &ceiling);
    assert_eq!(i.allowed, vec![req("network.external", &["api.github.com"]), req("system.files.read", &["/data/a/b"]), req("cost.api", &[])]);
    assert_eq!(
        i.refused,
        vec![
            req("network.external", &["evil.example.com", "raw.githubusercontent.com:8443"]),
            req("system.files.read", &["/etc/hosts"]),
            req("system.exec", &[]),
        ]
    );
    // A scoped ceiling never allows an unscoped request.
    let i = intersect(&[req("home.read", &[])], &[req("home.read", &["ha"])]);
    assert!(i.allowed.is_empty());
    // /database is not below /data.
    assert!(intersect(&[req("system.files.read", &["/database"])], &ceiling).allowed.is_empty());
}

#[test]
fn names_risks_and_suggestions() {
    assert_eq!(ALL.len(), 19);
    let risks: Vec<(&str, &str)> = ALL.iter().map(|c| (c.name(), c.risk().as_str())).collect();
    assert!(risks.contains(&("system.files.write", "dangerous")));
    assert!(risks.contains(&("system.exec", "dangerous")));
    assert!(risks.contains(&("fleet.manage", "high")));
    assert!(risks.contains(&("home.read", "low")));
    for c in ALL {
        assert_eq!(Capability::from_name(c.name()), Some(*c));
        assert!(!c.description().is_empty() && !c.label().is_empty());
    }
    assert_eq!(Capability::suggest("network.extrenal"), Some(Capability::NetworkExternal));
    assert_eq!(Capability::suggest("exec"), Some(Capability::SystemExec));
    assert_eq!(Capability::suggest("System.Env"), Some(Capability::SystemEnv));
    assert_eq!(Capability::suggest("teleport"), None);
}

#[test]
fn schema_lists_exactly_the_known_capabilities() {
    let schema: Value = serde_json::from_str(include_str!("../../../../schema/skill.schema.json")).unwrap();
    let names: Vec<&str> = schema["$defs"]["capability"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let known: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, known);
    assert_eq!(schema["properties"]["version"]["const"], json!(manifest::VERSION));
    let props: Vec<&String> = schema["$defs"]["request"]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, vec!["capability", "reason", "scope"]);
    assert_eq!(schema["$defs"]["request"]["properties"]["reason"]["maxLength"], json!(manifest::MAX_REASON_CHARS));
}

// ---- manifests ----------------------------------------------------------------

fn md(front: &str) -> String {
    format!("---\n{front}---\n# Weather\n\nRun {{baseDir}}/run.py\n")
}

fn md_err(front: &str) -> String {
    manifest::parse_skill_md(&md(front), Path::new("skills/weather/SKILL.md")).expect_err("must be refused").to_string()
}

#[test]
fn skill_md_flow_and_block_styles() {
    let flow = md(concat!(
        "name: weather\n",
        "description: Forecasts\n",
        "metadata: { \"openclaw\": { \"requires\": { \"bins\": [\"python3\"] } },\n",
        "            \"sharkcage\": { \"version\": 1, \"capabilities\": [\n",
        "              { \"capability\": \"network.external\", \"reason\": \"weather API\", \"scope\": [\"api.open-meteo.com\"] },\n",
        "              { \"capability\": \"system.env\", \"reason\": \"API key\", \"scope\": [\"OPENMETEO_KEY\"] } ] } }\n",
    ));
    let d = manifest::parse_skill_md(&flow, Path::new("SKILL.md")).unwrap().unwrap();
    assert_eq!(d.format, Format::SkillMd);
    assert_eq!(d.name.as_deref(), Some("weather"));
    assert_eq!(d.capabilities, vec![
        Request { capability: Capability::NetworkExternal, reason: "weather API".into(), scope: vec!["api.open-meteo.com".into()] },
        Request { capability: Capability::SystemEnv, reason: "API key".into(), scope: vec!["OPENMETEO_KEY".into()] },
    ]);
    let block = md(concat!(
        "name: weather\n",
        "metadata:\n",
        "  sharkcage:\n",
        "    version: 1\n",
        "    capabilities:\n",
        "      - capability: network.external\n",
        "        reason: weather API\n",
        "        scope: [api.open-meteo.com]\n",
        "      - capability: system.env\n",
        "        reason: API key\n",
        "        scope:\n",
        "          - OPENMETEO_KEY\n",
    ));
    assert_eq!(manifest::parse_skill_md(&block, Path::new("SKILL.md")).unwrap().unwrap().capabilities, d.capabilities);
    // No sharkcage block, another tool's string metadata, no frontmatter: nothing declared.
    assert_eq!(manifest::parse_skill_md(&md("name: x\nmetadata: {\"openclaw\": {}}\n"), Path::new("SKILL.md")).unwrap(), None);
    assert_eq!(manifest::parse_skill_md(&md("name: x\nmetadata: other\n"), Path::new("SKILL.md")).unwrap(), None);
    assert_eq!(manifest::parse_skill_md("# no frontmatter\n", Path::new("SKILL.md")).unwrap(), None);
    // Zero capabilities, declared explicitly.
    let z = manifest::parse_skill_md(&md("metadata:\n  sharkcage: {version: 1, capabilities: []}\n"), Path::new("SKILL.md")).unwrap().unwrap();
    assert!(z.capabilities.is_empty());
}

fn block(caps: &str) -> String {
    format!("name: weather\nmetadata:\n  sharkcage:\n    version: 1\n    capabilities:\n{caps}")
}

#[test]
fn skill_md_errors_name_file_line_and_key() {
    // Bad YAML: lines are the file's, not the frontmatter's.
    let e = md_err("name: w\ndescription: 'unterminated\nmetadata: {\n");
    assert_eq!(e, "skills/weather/SKILL.md:5:1: description: found unexpected end of stream at line 5 column 1, while scanning a quoted scalar");
    // Unknown capability, with a suggestion.
    let e = md_err(&block("      - capability: network.extrenal\n        reason: x\n"));
    assert!(e.starts_with("skills/weather/SKILL.md:7:"), "{e}");
    assert!(e.contains("metadata.sharkcage.capabilities[0].capability: unknown capability \"network.extrenal\"; did you mean \"network.external\"?"), "{e}");
    // Missing reason.
    let e = md_err(&block("      - capability: system.exec\n"));
    assert!(e.contains("metadata.sharkcage.capabilities[0]: missing field `reason`"), "{e}");
    // Empty reason.
    let e = md_err(&block("      - capability: system.exec\n        reason: \"  \"\n"));
    assert!(e.contains("capabilities[0].reason: the reason is empty"), "{e}");
    // Wrong scope type.
    let e = md_err(&block("      - capability: network.external\n        reason: x\n        scope: api.example.com\n"));
    assert!(e.contains("metadata.sharkcage.capabilities[0].scope: invalid type: string \"api.example.com\", expected a list of strings"), "{e}");
    let e = md_err(&block("      - capability: network.external\n        reason: x\n        scope: [{a: 1}]\n"));
    assert!(e.contains("capabilities[0].scope[0]: invalid type"), "{e}");
    // Duplicate capability.
    let e = md_err(&block("      - {capability: system.exec, reason: a}\n      - {capability: system.exec, reason: b}\n"));
    assert!(e.contains("metadata.sharkcage.capabilities: entry 1 declares system.exec again (first at entry 0)"), "{e}");
    // Unknown keys, in the block and in an entry.
    let e = md_err("metadata:\n  sharkcage: {version: 1, capabilities: [], grants: []}\n");
    assert!(e.contains("metadata.sharkcage.grants: unknown field `grants`"), "{e}");
    let e = md_err(&block("      - {capability: system.exec, reason: a, scopes: []}\n"));
    assert!(e.contains("metadata.sharkcage.capabilities[0].scopes: unknown field `scopes`, expected one of `capability`, `reason`, `scope`"), "{e}");
    // Version.
    let e = md_err("metadata:\n  sharkcage: {version: 2, capabilities: []}\n");
    assert!(e.contains("metadata.sharkcage.version: unsupported version 2; this sharkcage reads version 1"), "{e}");
    let e = md_err("metadata:\n  sharkcage: {capabilities: []}\n");
    assert!(e.contains("missing field `version`"), "{e}");
    // A scope entry listed twice; a control character in a reason.
    let e = md_err(&block("      - {capability: system.env, reason: a, scope: [X, X]}\n"));
    assert!(e.contains("capabilities[0].scope: \"X\" is listed twice"), "{e}");
    let e = md_err(&block("      - {capability: system.exec, reason: \"ok\\u001b[2Jforged\"}\n"));
    assert!(e.contains("capabilities[0].reason: the reason contains a control character"), "{e}");
}

#[test]
fn sharkcage_json_errors_name_line_column_and_key() {
    let f = Path::new("sharkcage.json");
    let ok = r#"{"version": 1, "capabilities": [{"capability": "network.internal", "reason": "local db", "scope": ["db.internal:5432"]}]}"#;
    let d = manifest::parse_sharkcage_json(ok, f).unwrap();
    assert_eq!(d.format, Format::SharkcageJson);
    assert_eq!(d.capabilities[0].scope, vec!["db.internal:5432"]);
    let text = "{\n  \"version\": 1,\n  \"capabilities\": [\n    {\"capability\": \"sytem.exec\", \"reason\": \"x\"}\n  ]\n}";
    let e = manifest::parse_sharkcage_json(text, f).unwrap_err();
    assert_eq!(e.key(), Some("capabilities[0].capability"));
    let s = e.to_string();
    assert!(s.starts_with("sharkcage.json:4:"), "{s}");
    assert!(s.contains("did you mean \"system.exec\"?"), "{s}");
    let e = manifest::parse_sharkcage_json(r#"{"version": 1, "capabilities": [{"capability": "system.env", "reason": "x", "scope": {"A": 1}}]}"#, f).unwrap_err();
    assert_eq!(e.key(), Some("capabilities[0].scope"));
    assert!(e.to_string().contains("expected a list of strings"), "{e}");
    let e = manifest::parse_sharkcage_json(r#"{"version": 1, "capabilities": [], "extra": true}"#, f).unwrap_err();
    assert!(e.to_string().contains("unknown field `extra`"), "{e}");
}

#[test]
fn predecessor_plugin_json() {
    let f = Path::new("plugin.json");
    let text = r#"{"name": "meals", "version": "1.2.0", "type": "plugin", "main": "src/mod.ts", "runtime": "process",
        "description": "Meal planner", "tools": ["meals_list", "meals_add"], "author": "a", "license": "MIT",
        "capabilities": [{"capability": "data.meals", "reason": "read the pantry"},
                         {"capability": "network.external", "reason": "recipes", "scope": ["api.recipes.example"]}]}"#;
    let d = manifest::parse_plugin_json(text, f).unwrap();
    assert_eq!(d.format, Format::PluginJson);
    assert_eq!(d.name.as_deref(), Some("meals"));
    let l = d.legacy.unwrap();
    assert_eq!((l.main.as_str(), l.tools.len(), l.version.as_deref()), ("src/mod.ts", 2, Some("1.2.0")));
    assert_eq!(d.capabilities.len(), 2);
    let bad = |t: &str| manifest::parse_plugin_json(t, f).unwrap_err().to_string();
    assert!(bad(r#"{"name": "x/../y", "main": "a.js"}"#).contains("name: \"x/../y\": letters, digits"));
    assert!(bad(r#"{"name": "x"}"#).contains("missing field `main`"));
    assert!(bad(r#"{"name": "x", "main": "../a.js"}"#).contains("main: \"../a.js\": a path inside the skill directory"));
    assert!(bad(r#"{"name": "x", "main": "/bin/sh"}"#).contains("a path inside the skill directory"));
    assert!(bad(r#"{"name": "x", "main": "a.js", "type": "tool"}"#).contains("type: \"tool\": must be \"plugin\""));
    assert!(bad(r#"{"name": "x", "main": "a.js", "runtime": "docker"}"#).contains("never implemented"));
    assert!(bad(r#"{"name": "x", "main": "a.js", "tools": ["a b"]}"#).contains("tools: entry 0"));
    assert!(bad(r#"{"name": "x", "main": "a.js", "capabilities": [{"capability": "net", "reason": "r"}]}"#).contains("capabilities[0].capability: unknown capability"));
    assert!(bad(r#"{"name": "x", "main": "a.js", "permissions": []}"#).contains("unknown field `permissions`"));
}

#[test]
fn a_skill_directory_has_at_most_one_declaration() {
    let d = tempfile::tempdir().unwrap();
    assert!(manifest::load_dir(d.path()).unwrap().is_none());
    std::fs::write(d.path().join("SKILL.md"), md("name: w\n")).unwrap();
    assert!(manifest::load_dir(d.path()).unwrap().is_none(), "a SKILL.md without metadata.sharkcage declares nothing");
    std::fs::write(d.path().join("sharkcage.json"), r#"{"version": 1, "capabilities": []}"#).unwrap();
    assert_eq!(manifest::load_dir(d.path()).unwrap().unwrap().format, Format::SharkcageJson);
    std::fs::write(d.path().join("SKILL.md"), md("name: w\nmetadata:\n  sharkcage: {version: 1, capabilities: []}\n")).unwrap();
    let e = manifest::load_dir(d.path()).unwrap_err().to_string();
    assert!(e.contains("SKILL.md (metadata.sharkcage) and ") && e.contains("sharkcage.json both declare"), "{e}");
    // A manifest that is a symlink is refused (never followed).
    let d2 = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/hostname", d2.path().join("sharkcage.json")).unwrap();
    let e = manifest::load_dir(d2.path()).unwrap_err().to_string();
    assert!(e.contains("a symlink"), "{e}");
}

// ---- identity -------------------------------------------------------------------

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    std::fs::create_dir_all(r.join("scripts/lib")).unwrap();
    std::fs::write(r.join("SKILL.md"), "---\nname: w\n---\n").unwrap();
    std::fs::write(r.join("scripts/run.py"), "print('hi')\n").unwrap();
    std::fs::write(r.join("scripts/lib/util.py"), "X = 1\n").unwrap();
    set_exec(&r.join("scripts/run.py"), true);
    std::os::unix::fs::symlink("lib/util.py", r.join("scripts/util.py")).unwrap();
    d
}

fn set_exec(p: &Path, on: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(if on { 0o755 } else { 0o644 })).unwrap();
}

fn id(p: &Path) -> Identity {
    identity::identify(p).unwrap()
}

#[test]
fn same_tree_same_identity() {
    let (a, b) = (tree(), tree());
    let (ia, ib) = (id(a.path()), id(b.path()));
    assert_eq!(ia, ib, "identity depends on contents, not on where the tree is");
    assert!(ia.digest.starts_with("sha256:") && ia.digest.len() == 7 + 64);
    assert_eq!(id(a.path()).digest, ia.digest);
    let keys: Vec<&str> = ia.entries.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["SKILL.md", "scripts", "scripts/lib", "scripts/lib/util.py", "scripts/run.py", "scripts/util.py"]);
    assert!(matches!(&ia.entries["scripts/run.py"], Entry::File { exec: true, size: 12, .. }));
    assert_eq!(ia.entries["scripts/util.py"], Entry::Symlink { target: "lib/util.py".into() });
    assert!(identity::diff(&ia, &ib).is_empty());
}

/// Each kind of change: a new digest and the right diff.
#[test]
fn changes_change_the_identity_and_the_diff_says_what() {
    type Mutate = fn(&Path);
    let cases: Vec<(Mutate, Vec<Change>)> = vec![
        (|r| std::fs::write(r.join("scripts/lib/util.py"), "X = 2\n").unwrap(), vec![Change::Content { path: "scripts/lib/util.py".into() }]),
        (|r| set_exec(&r.join("scripts/run.py"), false), vec![Change::Exec { path: "scripts/run.py".into(), exec: false }]),
        (|r| set_exec(&r.join("SKILL.md"), true), vec![Change::Exec { path: "SKILL.md".into(), exec: true }]),
        (
            |r| std::fs::rename(r.join("scripts/run.py"), r.join("scripts/main.py")).unwrap(),
            vec![Change::Renamed { from: "scripts/run.py".into(), to: "scripts/main.py".into() }],
        ),
        (
            |r| {
                std::fs::remove_file(r.join("scripts/util.py")).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", r.join("scripts/util.py")).unwrap();
            },
            vec![Change::Retargeted { path: "scripts/util.py".into(), from: "lib/util.py".into(), to: "/etc/passwd".into() }],
        ),
        (|r| std::fs::create_dir(r.join("assets")).unwrap(), vec![Change::Added { path: "assets".into(), entry: Entry::Dir }]),
        (
            |r| {
                std::fs::remove_file(r.join("scripts/util.py")).unwrap();
                std::fs::write(r.join("scripts/util.py"), "lib/util.py").unwrap();
            },
            vec![Change::TypeChanged { path: "scripts/util.py".into(), from: "symlink", to: "file" }],
        ),
    ];
    for (i, (mutate, want)) in cases.into_iter().enumerate() {
        let d = tree();
        let before = id(d.path());
        mutate(d.path());
        let after = id(d.path());
        assert_ne!(before.digest, after.digest, "case {i}");
        assert_eq!(identity::diff(&before, &after), want, "case {i}");
    }
    // Added and removed files, described for a prompt.
    let d = tree();
    let before = id(d.path());
    std::fs::write(d.path().join("scripts/new.sh"), "#!/bin/sh\n").unwrap();
    set_exec(&d.path().join("scripts/new.sh"), true);
    std::fs::remove_file(d.path().join("scripts/lib/util.py")).unwrap();
    let after = id(d.path());
    let changes = identity::diff(&before, &after);
    assert_eq!(identity::describe(&changes, 10), "• removed file scripts/lib/util.py\n• added file scripts/new.sh (executable)");
    assert_eq!(identity::describe(&changes, 1), "• removed file scripts/lib/util.py\n… and 1 more");
}

#[test]
fn symlinks_are_never_followed() {
    let d = tree();
    std::os::unix::fs::symlink("/etc", d.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("passwd")).unwrap();
    let i = id(d.path());
    assert_eq!(i.entries["etc"], Entry::Symlink { target: "/etc".into() });
    assert_eq!(i.entries["passwd"], Entry::Symlink { target: "/etc/passwd".into() });
    assert!(!i.entries.keys().any(|k| k.starts_with("etc/")), "the walk never entered /etc");
    // The skill directory itself must not be a symlink.
    let l = tempfile::tempdir().unwrap();
    let link = l.path().join("skill");
    std::os::unix::fs::symlink(d.path(), &link).unwrap();
    assert!(matches!(identity::identify(&link), Err(identity::IdentityError::Open { .. })));
}

#[test]
fn the_walk_is_bounded_and_complete() {
    let d = tree();
    let small = identity::Limits { max_entries: 3, ..Default::default() };
    let e = identity::identify_with(d.path(), small).unwrap_err().to_string();
    assert!(e.contains("more than 3 entries"), "{e}");
    let small = identity::Limits { max_bytes: 10, ..Default::default() };
    let e = identity::identify_with(d.path(), small).unwrap_err().to_string();
    assert!(e.contains("more than 10 bytes"), "{e}");
    let small = identity::Limits { max_depth: 1, ..Default::default() };
    let e = identity::identify_with(d.path(), small).unwrap_err().to_string();
    assert!(e.contains("deeper than 1 levels") && e.contains("scripts/lib"), "{e}");
    // A FIFO is an error, not skipped (and never blocks the walk).
    nix::unistd::mkfifo(&d.path().join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let e = identity::identify(d.path()).unwrap_err().to_string();
    assert!(e.contains("pipe: a FIFO, socket or device"), "{e}");
}

#[test]
fn digest_has_record_boundaries() {
    use std::collections::BTreeMap;
    let f = |sha: &str| Entry::File { sha256: sha.into(), size: 1, exec: false };
    let a: BTreeMap<String, Entry> = [("ab".to_string(), f("x")), ("c".to_string(), f("y"))].into();
    let b: BTreeMap<String, Entry> = [("a".to_string(), f("x")), ("bc".to_string(), f("y"))].into();
    assert_ne!(identity::digest(&a), identity::digest(&b));
}
