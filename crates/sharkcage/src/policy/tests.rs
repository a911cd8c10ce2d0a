use super::*;

fn err(text: &str) -> String {
    Policy::from_json(text, "p.json").unwrap_err().to_string()
}

#[test]
fn empty_policy_is_strict_defaults() {
    let p = Policy::from_json("{}", "p.json").unwrap();
    assert!(p.filesystem.allow_write.is_empty());
    assert!(p.network.allowed_domains.is_empty());
    assert_eq!(p.limits.timeout_ms, 600_000);
}

#[test]
fn srt_settings_file_loads() {
    let text = r#"{
      "network": {"allowedDomains": ["github.com", "*.npmjs.org"], "deniedDomains": [], "allowLocalBinding": false, "allowUnixSockets": []},
      "filesystem": {"denyRead": ["~/.ssh", {"path": "/tmp/[x]", "literal": true}], "allowRead": [], "allowWrite": ["/tmp/work/**"], "denyWrite": ["~/.bashrc"]},
      "ignoreViolations": {"*": ["/usr/bin"]},
      "mandatoryDenySearchDepth": 4,
      "ripgrep": {"command": "rg"}
    }"#;
    let p = Policy::from_json(text, "p.json").unwrap();
    assert_eq!(p.filesystem.allow_write[0].path, "/tmp/work");
    assert!(p.filesystem.deny_read[1].literal);
    assert_eq!(p.mandatory_deny_search_depth, Some(4));
    assert_eq!(p.ignored_keys(), vec!["ignoreViolations", "mandatoryDenySearchDepth", "ripgrep"]);
}

#[test]
fn unknown_key_names_position_and_path() {
    let e = err("{\n  \"filesystem\": {\n    \"alowWrite\": []\n  }\n}");
    assert!(e.starts_with("p.json:3:"), "{e}");
    assert!(e.contains("filesystem"), "{e}");
    assert!(e.contains("alowWrite"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let e = err(r#"{"limits": {"timeoutMs": "soon"}}"#);
    assert!(e.contains("limits.timeoutMs"), "{e}");
    assert!(e.starts_with("p.json:1:"), "{e}");
}

#[test]
fn relative_path_is_an_error_with_index() {
    let e = err("{\"filesystem\": {\"allowWrite\": [\"/ok\",\n \"rel/dir\"]}}");
    assert!(e.contains("filesystem.allowWrite[1]"), "{e}");
    assert!(e.contains("relative"), "{e}");
    assert!(e.starts_with("p.json:2:"), "{e}");
}

#[test]
fn write_globs_and_weakening_options_refused() {
    assert!(err(r#"{"filesystem": {"allowWrite": ["/a/*.txt"]}}"#).contains("glob"));
    assert!(err(r#"{"allowNestedUserNamespaces": true}"#).contains("weakens"));
    assert!(err(r#"{"network": {"allowAllUnixSockets": true}}"#).contains("weakens"));
    assert!(err(r#"{"network": {"httpProxyPort": 8080}}"#).contains("not supported"));
    assert!(err(r#"{"network": {"allowUnixSockets": ["run/x.sock"]}}"#).contains("relative"));
    assert!(err(r#"{"network": {"allowUnixSockets": ["/run/*.sock"]}}"#).contains("globs"));
    assert!(Policy::from_json(r#"{"network": {"allowUnixSockets": ["/run/x.sock", "~/app.sock"]}}"#, "p").is_ok());
    assert!(err(r#"{"limits": {"maxProcesses": 0}}"#).contains("greater than 0"));
    assert!(err(r#"{"env": ["BAD-NAME"]}"#).contains("BAD-NAME"));
    assert!(err(r#"{"network": {"allowedDomains": ["https://x.com/"]}}"#).contains("URL"));
}

#[test]
fn syntax_error_has_position() {
    let e = err("{\n  \"limits\": {,}\n}");
    assert!(e.starts_with("p.json:2:"), "{e}");
}

/// The JSON Schema in the repo and the parser accept exactly the same keys.
#[test]
fn schema_keys_match_parser() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../schema/policy.schema.json")).unwrap();
    let expected_by_parser = |wrap: &dyn Fn(&str) -> String| -> Vec<String> {
        let e = Policy::from_json(&wrap("zzUnknownKey"), "p.json").unwrap_err().to_string();
        let list = e.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{e}"));
        let mut v: Vec<String> = list.split(", ").map(|s| s.trim().trim_matches('`').to_string()).collect();
        v.sort();
        v
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(expected_by_parser(&|k| format!(r#"{{"{k}": 1}}"#)), keys(&schema));
    for sect in ["filesystem", "network", "limits"] {
        assert_eq!(
            expected_by_parser(&|k| format!(r#"{{"{sect}": {{"{k}": 1}}}}"#)),
            keys(&schema["properties"][sect]),
            "section {sect}"
        );
    }
}
