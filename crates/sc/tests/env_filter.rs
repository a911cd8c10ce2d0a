//! The sandbox's environment filter, from outside: secret-named variables
//! and credential-carrying values are withheld (absent from everything the
//! command can print) and reported by name and reason in `violations`;
//! certificate paths and variables the policy names exactly pass.

mod common;

use common::*;

/// Names withheld by a name rule.
const SECRET_NAMES: &[&str] = &[
    "DB_PASS", "SMTP_PWD", "GITLAB_PAT", "CI_JOB_JWT", "SENTRY_DSN", "MONGODB_URI", "POSTGRES_URL", "SLACK_WEBHOOK_URL",
    "REDIS_HOST", "AMQP_URL", "RABBITMQ_DEFAULT_PASS", "KAFKA_BROKERS", "CELERY_BROKER_URL", "HTTP_BEARER", "SERVICE_APIKEY",
    "TLS_CERT_KEY", "APP_DATABASE_NAME", "SSHPASS", "SMTPPASS", "LDAP_BINDPW", "REGISTRY_CREDS", "JENKINS_CREDS", "NONCE_SALT",
    "WP_LOGGED_IN_SALT", "DEPLOY_HMAC", "OTEL_EXPORTER_OTLP_HEADERS", "HF_TOKEN",
];

/// Credential-carrying value shapes, each under a harmless name; `{}` is
/// replaced by the test's marker so the value is unique (`{43}`: the marker
/// padded to 43 characters).
const SECRET_VALUES: &[(&str, &str)] = &[
    ("PIP_INDEX_URL", "https://user:{}@pypi.example/simple"),
    ("VAL_A", "postgres://u:{}@db.example/app"),
    ("VAL_B", "ghp_{}abcdefghijklmnopqrstuvwxyz"),
    ("VAL_C", "glpat-{}abcdefghijklmn"),
    ("VAL_D", "xoxb-{}-abcdefghij"),
    ("VAL_E", "sk-proj-{}abcdefghijklmnop"),
    ("VAL_F", "sk-ant-api03-{}abcdefghij"),
    ("VAL_G", "sk_live_{}abcdefghijklmnop"),
    ("VAL_H", "npm_{}abcdefghijklmnopqrstuvwxyz0123456789"),
    ("VAL_I", "AIza{}abcdefghijklmnopqrstuvwxyz01234"),
    ("VAL_J", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.{}"),
    ("VAL_K", "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----"),
    ("VAL_L", "Authorization=Basic {}"),
    ("VAL_M", "Authorization: Basic {}"),
    ("VAL_N", "x-honeycomb-team={}"),
    ("VAL_O", "-Xmx1g -Dapi.password={} -Dfile.encoding=UTF-8"),
    ("VAL_P", "host=db user=app password={}"),
    ("VAL_Q", "Server=x;Database=y;User Id=sa;Password={};"),
    ("VAL_R", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={}=="),
    ("VAL_S", "url=https://github.com username=x password={}"),
    ("VAL_T", "https://user%3A{}@host/"),
    ("VAL_U", "https://host/path;password={}"),
    ("VAL_V", "https://host/?pwd={}"),
    ("VAL_W", "https://host/#access_token={}"),
    ("VAL_X", "app:{}@db.internal:5432/app"),
    ("VAL_Y", "xoxe.xoxp-1-{}Mi0yLTEyMzQ1Njc4OTAtMTIz"),
    ("VAL_Z", "SG.abcdefghijklmnopqrstuv.{43}"),
    ("VAL_AA", "whsec_{}abcdefghijklmnopqrstuvwxyz"),
    ("VAL_AB", "glsoat-{}abcdefghijklmnopqrst"),
];

/// Everyday variables that only look secret: they pass (set for the call).
const LOOK_ALIKES: &[(&str, &str)] = &[
    ("DO_NOT_TRACK", "1"), ("GOPRIVATE", "github.com/acme/*"), ("TOKENIZERS_PARALLELISM", "false"), ("HF_HOME", "/tmp/hf"),
    ("KEYMAP", "us"), ("KEYCLOAK_URL", "https://kc.example"), ("TERM_SESSION_ID", "w0t0p0"), ("XDG_SESSION_TYPE", "x11"),
    ("XDG_SESSION_ID", "3"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"), ("GIT_AUTHOR_NAME", "Alice"),
    ("OLDPWD", "/tmp"), ("SSH_TTY", "/dev/pts/0"), ("KEYBOARD_LAYOUT", "de"), ("GIT_ASKPASS", "/usr/bin/true"),
];

const CERT_NAMES: &[&str] = &[
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE", "PIP_CERT", "CARGO_HTTP_CAINFO",
];

fn env_violations(o: &Out) -> Vec<String> {
    o.j()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == "env")
        .map(|v| {
            assert_eq!(v["refused"], true, "{v}");
            v["detail"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn secret_names_and_credential_values_are_withheld_and_reported() {
    let _g = shared();
    let t = T::new();
    // The AWS family is listed by prefix: the CA bundle passes, the key does not.
    let policy = serde_json::json!({ "env": ["PIP_*", "AWS_*", "DB_PASS", "EXACT_URL"] }).to_string();
    let val = |tag: &str| format!("SCENV{tag}{}", t.id.replace('x', ""));
    let mut run = t.sc().policy(&policy);
    // Inherited: only what the policy lists is a candidate.
    run = run.env("PIP_INDEX_URL", &SECRET_VALUES[0].1.replace("{}", &val("pip")));
    run = run.env("AWS_SECRET_ACCESS_KEY", &val("awskey"));
    run = run.env("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt");
    // An exactly named variable passes whatever its name or value.
    run = run.env("DB_PASS", &val("exactpass"));
    run = run.env("EXACT_URL", &format!("https://u:{}@h/", val("exacturl")));
    for n in SECRET_NAMES.iter().filter(|n| **n != "DB_PASS") {
        run = run.opt("--env").opt(format!("{n}={}", val(n)));
    }
    for (n, v) in &SECRET_VALUES[1..] {
        let m = val(n);
        run = run.opt("--env").opt(format!("{n}={}", v.replace("{43}", &format!("{m:a<43}")).replace("{}", &m)));
    }
    for n in CERT_NAMES.iter().filter(|n| **n != "AWS_CA_BUNDLE") {
        run = run.opt("--env").opt(format!("{n}=/etc/ssl/certs/{n}.pem"));
    }
    for (n, v) in LOOK_ALIKES {
        run = run.opt("--env").opt(format!("{n}={v}"));
    }
    let o = run.sh("env; echo end").run();
    o.assert_ok();
    assert!(o.out().contains("end"), "control: {}", o.all());
    // Nothing withheld is anywhere: not in the environment, not in the report.
    for n in SECRET_NAMES.iter().filter(|n| **n != "DB_PASS") {
        o.assert_absent(&val(n));
    }
    for (n, _) in SECRET_VALUES {
        o.assert_absent(&val(if *n == "PIP_INDEX_URL" { "pip" } else { n }));
    }
    o.assert_absent(&val("awskey"));
    // Each withheld variable is reported once, by name and why.
    let lines = env_violations(&o);
    let line_of = |n: &str| lines.iter().find(|l| l.starts_with(&format!("variable {n} withheld:"))).unwrap_or_else(|| panic!("{n} not reported: {lines:#?}"));
    for n in SECRET_NAMES.iter().filter(|n| **n != "DB_PASS").chain(["AWS_SECRET_ACCESS_KEY"].iter()) {
        assert!(line_of(n).contains("its name matches the secret rule"), "{}", line_of(n));
    }
    for (n, _) in SECRET_VALUES {
        assert!(line_of(n).contains("its value carries a credential"), "{}", line_of(n));
    }
    assert_eq!(lines.len(), SECRET_NAMES.len() - 1 + SECRET_VALUES.len() + 1, "{lines:#?}");
    // What passes.
    let env = o.out();
    for n in CERT_NAMES {
        assert!(env.lines().any(|l| l.starts_with(&format!("{n}="))), "{n} missing:\n{env}");
    }
    for (n, v) in LOOK_ALIKES {
        assert!(env.lines().any(|l| l == format!("{n}={v}")), "{n} missing:\n{env}");
    }
    assert!(env.lines().any(|l| l == format!("DB_PASS={}", val("exactpass"))), "{env}");
    assert!(env.contains(&val("exacturl")), "{env}");
}
