//! Reading what a skill declares it needs, from any of the three places it
//! may say so, into one [`Declaration`].
//!
//! * `SKILL.md` (OpenClaw): the `metadata.sharkcage` block of its YAML
//!   frontmatter. OpenClaw ignores unknown metadata keys, so the skill keeps
//!   working there; every other frontmatter key is OpenClaw's and ignored here.
//! * `sharkcage.json` beside it: the same block as a file.
//! * `plugin.json` (the predecessor's skills): `name`, `main`, `tools[]`,
//!   `capabilities[]`.
//!
//! The block is `{version: 1, capabilities: [{capability, reason, scope[]}]}`
//! (JSON Schema: `schema/skill.schema.json`). Parsing is strict, like the
//! policy's: unknown keys, unknown capability names (with a "did you mean"),
//! a missing or empty reason, a scope that is not a list of strings, a
//! capability declared twice and control characters (which could forge text
//! in an approval prompt) are errors naming the file, `line:column` and the
//! key path. Two declarations in one skill are an error, not a precedence
//! rule: the approval must show the one that is enforced.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use thiserror::Error;

use super::capabilities::{Capability, Request};

/// The declaration format version this code reads.
pub const VERSION: u32 = 1;

/// Largest manifest read (the frontmatter of a SKILL.md included).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Longest `reason` (the approval prompt shows every one).
pub const MAX_REASON_CHARS: usize = 300;

pub const SKILL_MD: &str = "SKILL.md";
pub const SHARKCAGE_JSON: &str = "sharkcage.json";
pub const PLUGIN_JSON: &str = "plugin.json";

/// Where a declaration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `metadata.sharkcage` in `SKILL.md`'s frontmatter.
    SkillMd,
    SharkcageJson,
    /// The predecessor's `plugin.json`.
    PluginJson,
}

/// What a skill declares it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub file: PathBuf,
    pub format: Format,
    /// The skill's name where the file gives one (`SKILL.md`'s `name`,
    /// `plugin.json`'s `name`).
    pub name: Option<String>,
    pub capabilities: Vec<Request>,
    /// The predecessor's entry and tools (`plugin.json` only).
    pub legacy: Option<Legacy>,
}

/// The parts of a predecessor `plugin.json` besides its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Legacy {
    pub version: Option<String>,
    /// The entry, relative to the skill directory.
    pub main: String,
    pub tools: Vec<String>,
    pub runtime: Option<String>,
    pub description: Option<String>,
}

/// A declaration that cannot be read or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid declaration.
    #[error("{file}{}: {}{message}", position(*line, *column), key_prefix(key))]
    Invalid {
        file: String,
        /// 1-based; 0 when the parser gave no position.
        line: usize,
        column: usize,
        /// Key path such as `metadata.sharkcage.capabilities[1].scope`.
        key: String,
        message: String,
    },
    #[error("{first} and {second} both declare what the skill needs; keep one")]
    Conflict { first: String, second: String },
}

impl ManifestError {
    /// The key path of an [`ManifestError::Invalid`] (for tests and tools).
    pub fn key(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Parsers append " at line L column C"; the position is printed in front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

// ---- the declaration block -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    #[serde(rename = "version", deserialize_with = "version")]
    _version: u32,
    #[serde(deserialize_with = "requests")]
    capabilities: Vec<Request>,
}

fn version<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u64::deserialize(d)?;
    if v != u64::from(VERSION) {
        return Err(de::Error::custom(format!("unsupported version {v}; this sharkcage reads version {VERSION}")));
    }
    Ok(VERSION)
}

/// One `{capability, reason, scope}`, checked as it is read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    capability: Capability,
    #[serde(deserialize_with = "reason")]
    reason: String,
    #[serde(default, deserialize_with = "scope")]
    scope: Vec<String>,
}

fn no_controls<E: de::Error>(what: &str, s: &str) -> Result<(), E> {
    if s.chars().any(char::is_control) {
        return Err(E::custom(format!("{what} contains a control character")));
    }
    Ok(())
}

fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let t = s.trim();
    if t.is_empty() {
        return Err(de::Error::custom("the reason is empty; say why the skill needs this (it is shown at approval)"));
    }
    if t.chars().count() > MAX_REASON_CHARS {
        return Err(de::Error::custom(format!("the reason is longer than {MAX_REASON_CHARS} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(de::Error::custom("the reason contains a control character (a line break included)"));
    }
    Ok(t.to_string())
}

fn scope<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings, such as [\"api.example.com\"]")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<String> = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                if s.is_empty() {
                    return Err(de::Error::custom(format!("entry {} is empty", out.len())));
                }
                no_controls::<A::Error>("a scope entry", &s)?;
                if out.contains(&s) {
                    return Err(de::Error::custom(format!("{s:?} is listed twice")));
                }
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

fn requests<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Request>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Request>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of {capability, reason, scope}")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<Request> = Vec::new();
            while let Some(r) = seq.next_element::<RawRequest>()? {
                if let Some(i) = out.iter().position(|o| o.capability == r.capability) {
                    return Err(de::Error::custom(format!(
                        "entry {} declares {} again (first at entry {i}); merge the scopes into one entry",
                        out.len(),
                        r.capability
                    )));
                }
                out.push(Request { capability: r.capability, reason: r.reason, scope: r.scope });
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

// ---- SKILL.md frontmatter ---------------------------------------------------

#[derive(Deserialize)]
struct FrontMatter {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

/// `metadata`: only its `sharkcage` key is ours; the rest is OpenClaw's.
#[derive(Default)]
struct Metadata(Option<RawBlock>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut block = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k == "sharkcage" {
                        block = Some(map.next_value::<RawBlock>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Metadata(block))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Metadata, E> {
                Ok(Metadata(None))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Metadata, E> {
                if s.contains("sharkcage") {
                    return Err(E::custom("metadata is a string; write metadata.sharkcage as a mapping"));
                }
                Ok(Metadata(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The frontmatter of a SKILL.md and the line it starts on, or `None`
/// when the file has none.
fn frontmatter(text: &str) -> Option<(&str, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n"))?;
    let mut off = 0;
    for line in rest.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        if l == "---" || l == "..." {
            return Some((&rest[..off], 2));
        }
        off += line.len();
    }
    None
}

/// The declaration in a SKILL.md, if its frontmatter has `metadata.sharkcage`.
pub fn parse_skill_md(text: &str, file: &Path) -> Result<Option<Declaration>, ManifestError> {
    let Some((yaml, first_line)) = frontmatter(text) else { return Ok(None) };
    let de = serde_yaml_ng::Deserializer::from_str(yaml);
    let fm: FrontMatter = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = inner.location().map_or((0, 0), |l| (l.line() + first_line - 1, l.column()));
        invalid(file, line, column, &key, &shift_lines(&inner.to_string(), first_line - 1))
    })?;
    Ok(fm.metadata.0.map(|b| Declaration { file: file.to_path_buf(), format: Format::SkillMd, name: fm.name, capabilities: b.capabilities, legacy: None }))
}

/// Line numbers inside a YAML message ("… at line 4 column 1, while …")
/// counted from the file's first line rather than the frontmatter's.
fn shift_lines(msg: &str, by: usize) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("at line ") {
        let (head, tail) = rest.split_at(i + "at line ".len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        match tail[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn invalid(file: &Path, line: usize, column: usize, key: &str, msg: &str) -> ManifestError {
    ManifestError::Invalid {
        file: file.display().to_string(),
        line,
        column,
        key: if key == "." { String::new() } else { key.to_string() },
        message: strip_path(key, &strip_position(msg)),
    }
}

/// serde_yaml_ng puts the parent key path in front of its messages; the
/// full path is printed in front already.
fn strip_path(key: &str, msg: &str) -> String {
    match msg.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && !head.contains(' ') && key.starts_with(head) => rest.to_string(),
        _ => msg.to_string(),
    }
}

fn from_json<'a, T: Deserialize<'a>>(text: &'a str, file: &Path) -> Result<T, ManifestError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let v: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        invalid(file, inner.line(), inner.column(), &key, &inner.to_string())
    })?;
    Ok(v)
}

/// A `sharkcage.json`.
pub fn parse_sharkcage_json(text: &str, file: &Path) -> Result<Declaration, ManifestError> {
    let b: RawBlock = from_json(text, file)?;
    Ok(Declaration { file: file.to_path_buf(), format: Format::SharkcageJson, name: None, capabilities: b.capabilities, legacy: None })
}

// ---- the predecessor's plugin.json -----------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    #[serde(deserialize_with = "plain_name")]
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "plugin_type")]
    _kind: Option<String>,
    #[serde(deserialize_with = "entry")]
    main: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "runtime")]
    runtime: Option<String>,
    #[serde(default, deserialize_with = "requests")]
    capabilities: Vec<Request>,
    #[serde(default, deserialize_with = "tool_names")]
    tools: Vec<String>,
    // Typed but unused by the predecessor; accepted so its files load.
    #[serde(default, rename = "signature")]
    _sig: Option<String>,
    #[serde(default, rename = "signer")]
    _signer: Option<String>,
    #[serde(default, rename = "author")]
    _author: Option<IgnoredAny>,
    #[serde(default, rename = "homepage")]
    _homepage: Option<String>,
    #[serde(default, rename = "license")]
    _license: Option<String>,
    #[serde(default, rename = "image")]
    _image: Option<IgnoredAny>,
    #[serde(default, rename = "mcp")]
    _mcp: Option<IgnoredAny>,
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn plain_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !is_plain_name(&s) {
        return Err(de::Error::custom(format!("{s:?}: letters, digits, _ and - only (1-128)")));
    }
    Ok(s)
}

fn plugin_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s != "plugin" {
        return Err(de::Error::custom(format!("{s:?}: must be \"plugin\"")));
    }
    Ok(Some(s))
}

fn entry<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let p = Path::new(&s);
    let inside = !s.is_empty() && p.is_relative() && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if !inside {
        return Err(de::Error::custom(format!("{s:?}: a path inside the skill directory (relative, no \"..\")")));
    }
    no_controls::<D::Error>("main", &s)?;
    Ok(s)
}

fn runtime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "deno" | "node" | "process" => Ok(Some(s)),
        "docker" => Err(de::Error::custom("\"docker\" was never implemented; use node, deno or process")),
        _ => Err(de::Error::custom(format!("unknown runtime {s:?}; expected node, deno or process"))),
    }
}

fn tool_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for (i, t) in v.iter().enumerate() {
        if !is_plain_name(t) {
            return Err(de::Error::custom(format!("entry {i} {t:?}: letters, digits, _ and - only")));
        }
        if v[..i].contains(t) {
            return Err(de::Error::custom(format!("entry {i} {t:?} is listed twice")));
        }
    }
    Ok(v)
}

/// A predecessor `plugin.json`.
pub fn parse_plugin_json(text: &str, file: &Path) -> Result<Declaration, ManifestError> {
    let p: RawPlugin = from_json(text, file)?;
    Ok(Declaration {
        file: file.to_path_buf(),
        format: Format::PluginJson,
        name: Some(p.name),
        capabilities: p.capabilities,
        legacy: Some(Legacy { version: p.version, main: p.main, tools: p.tools, runtime: p.runtime, description: p.description }),
    })
}

// ---- a skill directory -----------------------------------------------------

/// Read a manifest without following a symlink at its name, at most
/// [`MAX_MANIFEST_BYTES`]. `None` if it does not exist.
fn read_manifest(path: &Path) -> Result<Option<String>, ManifestError> {
    let err = |e: std::io::Error| ManifestError::Read { file: path.display().to_string(), source: e };
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(err(std::io::Error::other("a symlink; a skill's manifest must be a regular file")));
        }
        Err(e) => return Err(err(e)),
    };
    if !f.metadata().map_err(err)?.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    let mut text = String::new();
    f.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text).map_err(err)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(err(std::io::Error::other(format!("larger than {MAX_MANIFEST_BYTES} bytes"))));
    }
    Ok(Some(text))
}

/// The declaration of the skill in `dir`: from `SKILL.md`'s
/// `metadata.sharkcage`, `sharkcage.json` or `plugin.json`. `None` when
/// the skill declares nothing (it then gets no capability). Two of them
/// declaring is [`ManifestError::Conflict`].
pub fn load_dir(dir: &Path) -> Result<Option<Declaration>, ManifestError> {
    let mut found: Vec<Declaration> = Vec::new();
    let md = dir.join(SKILL_MD);
    if let Some(t) = read_manifest(&md)? {
        found.extend(parse_skill_md(&t, &md)?);
    }
    let sj = dir.join(SHARKCAGE_JSON);
    if let Some(t) = read_manifest(&sj)? {
        found.push(parse_sharkcage_json(&t, &sj)?);
    }
    let pj = dir.join(PLUGIN_JSON);
    if let Some(t) = read_manifest(&pj)? {
        found.push(parse_plugin_json(&t, &pj)?);
    }
    if found.len() > 1 {
        let d = |i: usize| match found[i].format {
            Format::SkillMd => format!("{} (metadata.sharkcage)", found[i].file.display()),
            _ => found[i].file.display().to_string(),
        };
        return Err(ManifestError::Conflict { first: d(0), second: d(1) });
    }
    Ok(found.pop())
}
