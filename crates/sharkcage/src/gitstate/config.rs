//! Git config files: a strict reader and the "inert" judgment.
//!
//! A config written by a sandboxed command is kept only if *every* key in it
//! is on [`SAFE_KEYS`] (with the value checks of [`value_ok`]): keys that
//! name a program, a shell command, another config file, a hooks directory
//! or a URL rewrite are not on it, so a config that sets any of them is not
//! inert. The reader follows git's syntax (`config.c`): sections
//! `[name]`, `[name "sub"]` and the old `[name.sub]`, a key-value pair on
//! the same line as its section header, quoting, the escapes `\\ \" \n \t
//! \b`, line continuations, `#`/`;` comments, CRLF, a leading UTF-8 BOM.
//! It **fails closed**: anything it does not fully understand (a NUL, an
//! unknown escape, a broken header, a key git would reject) makes the file
//! not inert — git either rejects such a file or might read it differently.
//!
//! The same reader finds, in *existing* configs (the user's own, which stay
//! as they are), what they make git run or read: `core.hooksPath`, included
//! files, and program paths in executing keys. Those places are protected
//! in turn when they lie in a writable root (see `launcher/protected.rs`).

/// One `section[.subsection].key = value` line, names as git compares them
/// (section and key lower case; the subsection as written, except for the
/// old `[section.sub]` form, which git lower-cases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub section: String,
    pub subsection: Option<String>,
    pub key: String,
    /// `None` for a bare key (boolean true).
    pub value: Option<String>,
}

impl Item {
    /// `section.key` or `section.subsection.key`.
    pub fn name(&self) -> String {
        match &self.subsection {
            Some(s) => format!("{}.{}.{}", self.section, s, self.key),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}

/// Why a config could not be read the way git reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Reader<'_> {
    /// The next character, with CRLF folded to LF (as git does).
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        if c == b'\r' && self.s.get(self.i) == Some(&b'\n') {
            self.i += 1;
            self.line += 1;
            return Some(b'\n');
        }
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }
    fn peek(&self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        if c == b'\r' && self.s.get(self.i + 1) == Some(&b'\n') {
            return Some(b'\n');
        }
        Some(c)
    }
    fn err(&self, what: &str) -> ParseError {
        ParseError { line: self.line, what: what.to_string() }
    }
    fn skip_comment(&mut self) {
        while let Some(c) = self.next() {
            if c == b'\n' {
                break;
            }
        }
    }
}

/// Read a whole config. Every key, in order.
pub fn parse(text: &[u8]) -> Result<Vec<Item>, ParseError> {
    let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    if body.contains(&0) {
        return Err(ParseError { line: 1, what: "a NUL byte".into() });
    }
    let mut r = Reader { s: body, i: 0, line: 1 };
    let mut items = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    while let Some(c) = r.peek() {
        match c {
            c if is_space(c) => {
                r.next();
            }
            b'#' | b';' => r.skip_comment(),
            b'[' => {
                r.next();
                section = Some(header(&mut r)?);
            }
            c if c.is_ascii_alphabetic() => {
                let Some((sec, sub)) = &section else { return Err(r.err("a key before any section")) };
                let key = key_name(&mut r)?;
                let value = value(&mut r)?;
                items.push(Item { section: sec.clone(), subsection: sub.clone(), key, value });
            }
            _ => return Err(r.err("unexpected character")),
        }
    }
    Ok(items)
}

/// `[section]`, `[section "sub"]` or `[section.sub]`, after the `[`.
fn header(r: &mut Reader) -> Result<(String, Option<String>), ParseError> {
    let mut name = String::new();
    loop {
        match r.next() {
            Some(b']') => break,
            Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' => name.push(c.to_ascii_lowercase() as char),
            Some(b' ') | Some(b'\t') => {
                // `[section "sub"]`
                while matches!(r.peek(), Some(b' ') | Some(b'\t')) {
                    r.next();
                }
                if r.next() != Some(b'"') {
                    return Err(r.err("bad section header"));
                }
                let mut sub = Vec::new();
                loop {
                    match r.next() {
                        Some(b'"') => break,
                        Some(b'\\') => match r.next() {
                            Some(b'\n') | None => return Err(r.err("bad section header")),
                            Some(c) => sub.push(c),
                        },
                        Some(b'\n') | None => return Err(r.err("bad section header")),
                        Some(c) => sub.push(c),
                    }
                }
                if r.next() != Some(b']') || name.is_empty() || name.contains('.') {
                    return Err(r.err("bad section header"));
                }
                let sub = String::from_utf8(sub).map_err(|_| r.err("subsection is not UTF-8"))?;
                return Ok((name, Some(sub)));
            }
            _ => return Err(r.err("bad section header")),
        }
    }
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') {
        return Err(r.err("bad section header"));
    }
    // The old form `[section.sub]`: git lower-cases the subsection too.
    Ok(match name.split_once('.') {
        Some((s, sub)) => (s.to_string(), Some(sub.to_string())),
        None => (name, None),
    })
}

/// A key name: a letter, then letters, digits and `-`.
fn key_name(r: &mut Reader) -> Result<String, ParseError> {
    let mut k = String::new();
    while let Some(c) = r.peek() {
        if c.is_ascii_alphanumeric() || c == b'-' {
            k.push(c.to_ascii_lowercase() as char);
            r.next();
        } else {
            break;
        }
    }
    Ok(k)
}

/// C's `isspace`, as git uses it.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// After a key: ` = value` or nothing (a bare boolean), to the end of the
/// line — git's `get_value` and `parse_value`, step for step.
fn value(r: &mut Reader) -> Result<Option<String>, ParseError> {
    let mut c = r.next();
    while matches!(c, Some(b' ') | Some(b'\t')) {
        c = r.next();
    }
    match c {
        None | Some(b'\n') => return Ok(None),
        Some(b'=') => {}
        _ => return Err(r.err("bad key")),
    }
    let mut out: Vec<u8> = Vec::new();
    let (mut quote, mut comment) = (false, false);
    // Where unquoted trailing whitespace starts, if the value ends now.
    let mut trim_len: Option<usize> = None;
    loop {
        // End of file reads as the end of the line.
        let c = r.next().unwrap_or(b'\n');
        if c == b'\n' {
            if quote {
                return Err(r.err("newline inside quotes"));
            }
            if let Some(t) = trim_len {
                out.truncate(t);
            }
            break;
        }
        if comment {
            continue;
        }
        if is_space(c) && !quote {
            trim_len.get_or_insert(out.len());
            if !out.is_empty() {
                out.push(c);
            }
            continue;
        }
        if !quote && (c == b';' || c == b'#') {
            comment = true;
            continue;
        }
        trim_len = None;
        match c {
            b'\\' => {
                let e = match r.next() {
                    Some(b'\n') => continue,
                    Some(b't') => b'\t',
                    Some(b'b') => 8,
                    Some(b'n') => b'\n',
                    Some(b'\\') => b'\\',
                    Some(b'"') => b'"',
                    _ => return Err(r.err("unknown escape")),
                };
                out.push(e);
            }
            b'"' => quote = !quote,
            c => out.push(c),
        }
    }
    String::from_utf8(out).map(Some).map_err(|_| r.err("value is not UTF-8"))
}

/// Keys a config written in the sandbox may set and still be kept, as
/// `section.key` (no subsection) or `section.*.key` (any subsection). A
/// `section.**` entry allows every key of the section, with or without a
/// subsection: only sections whose every key is a display setting.
pub const SAFE_KEYS: &[&str] = &[
    // Repository format and checkout behaviour.
    "core.repositoryformatversion",
    "core.filemode",
    "core.bare",
    "core.logallrefupdates",
    "core.ignorecase",
    "core.precomposeunicode",
    "core.symlinks",
    "core.autocrlf",
    "core.eol",
    "core.safecrlf",
    "core.quotepath",
    "core.abbrev",
    "core.compression",
    "core.loosecompression",
    "core.sparsecheckout",
    "core.sparsecheckoutcone",
    "core.checkstat",
    "core.trustctime",
    "core.untrackedcache",
    "core.splitindex",
    "core.preloadindex",
    "core.commitgraph",
    "core.multipackindex",
    "core.bigfilethreshold",
    "core.protecthfs",
    "core.protectntfs",
    "core.longpaths",
    "core.worktree", // checked: inside a writable root
    "extensions.objectformat",
    "extensions.refstorage",
    "extensions.worktreeconfig",
    "extensions.partialclone",
    "extensions.preciousobjects",
    "extensions.noop",
    // Remotes and branches (URLs checked).
    "remote.*.url",
    "remote.*.pushurl",
    "remote.*.fetch",
    "remote.*.push",
    "remote.*.tagopt",
    "remote.*.mirror",
    "remote.*.prune",
    "remote.*.prunetags",
    "remote.*.promisor",
    "remote.*.partialclonefilter",
    "remote.*.skipdefaultupdate",
    "remote.*.skipfetchall",
    "branch.*.remote",
    "branch.*.merge",
    "branch.*.rebase",
    "branch.*.pushremote",
    "branch.*.description",
    "branch.*.vscode-merge-base",
    "branch.autosetupmerge",
    "branch.autosetuprebase",
    "branch.sort",
    "submodule.*.url",
    "submodule.*.active",
    "submodule.*.branch",
    "submodule.*.update", // checked: never `!command`
    "submodule.*.fetchrecursesubmodules",
    "submodule.*.ignore",
    "submodule.*.shallow",
    "submodule.recurse",
    "submodule.active",
    // Identity and everyday defaults.
    "user.name",
    "user.email",
    "user.signingkey",
    "user.useconfigonly",
    "author.name",
    "author.email",
    "committer.name",
    "committer.email",
    "init.defaultbranch",
    "pull.rebase",
    "pull.ff",
    "push.default",
    "push.autosetupremote",
    "push.followtags",
    "fetch.prune",
    "fetch.prunetags",
    "fetch.recursesubmodules",
    "fetch.writecommitgraph",
    "merge.ff",
    "merge.conflictstyle",
    "rebase.autosquash",
    "rebase.autostash",
    "rebase.updaterefs",
    "commit.gpgsign",
    "tag.gpgsign",
    "tag.sort",
    "diff.renames",
    "diff.algorithm",
    "diff.mnemonicprefix",
    "diff.noprefix",
    "diff.colormoved",
    "diff.submodule",
    "status.showuntrackedfiles",
    "status.submodulesummary",
    "status.short",
    "status.branch",
    "log.date",
    "log.decorate",
    "rerere.enabled",
    "rerere.autoupdate",
    "help.autocorrect",
    "gc.auto",
    "gc.autodetach",
    "gc.autopacklimit",
    "gc.writecommitgraph",
    "maintenance.auto",
    "maintenance.strategy",
    "receive.denycurrentbranch",
    "receive.denynonfastforwards",
    "index.version",
    "feature.manyfiles",
    "lfs.repositoryformatversion",
    "lfs.*.access",
    "worktree.guessremote",
    "safe.directory",
    "column.ui",
    "color.**",
    "advice.**",
];

fn safe_name(it: &Item) -> bool {
    SAFE_KEYS.iter().any(|pat| {
        let parts: Vec<&str> = pat.split('.').collect();
        match parts.as_slice() {
            [s, "**"] => *s == it.section,
            [s, k] => *s == it.section && it.subsection.is_none() && *k == it.key,
            [s, "*", k] => *s == it.section && it.subsection.is_some() && *k == it.key,
            _ => false,
        }
    })
}

/// A URL git fetches from without running a helper program: http(s), ssh,
/// git, file, ftp(s), scp-like `user@host:path`, or a plain path. Not
/// `ext::` (runs a command), not other `<helper>::` transports (run
/// `git-remote-<helper>`).
pub fn url_ok(v: &str) -> bool {
    let v = v.trim();
    if v.starts_with('-') || v.contains("::") {
        return false;
    }
    match v.split_once("://") {
        Some((scheme, _)) => matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https" | "ssh" | "git" | "file" | "ftp" | "ftps" | "git+ssh" | "ssh+git"),
        None => true,
    }
}

/// Value checks for keys that are safe only with some values. `inside`
/// answers whether a path (relative paths are relative to the git
/// directory) lies inside a writable root.
fn value_ok(it: &Item, inside: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let v = it.value.as_deref().unwrap_or("");
    match (it.section.as_str(), it.key.as_str()) {
        ("remote", "url" | "pushurl") | ("submodule", "url") if !url_ok(v) => Err(format!("{} = {v:?} runs a transport helper", it.name())),
        ("submodule", "update") if v.trim_start().starts_with('!') => Err(format!("{} runs a command", it.name())),
        ("core", "worktree") if !inside(v) => Err(format!("{} points outside the writable roots", it.name())),
        _ => Ok(()),
    }
}

/// Inert: every key safe (see the module header). `Err` names the first
/// key that is not, in words for the person reading the report.
pub fn judge(text: &[u8], inside: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let items = parse(text).map_err(|e| format!("not a config git reads plainly ({e})"))?;
    for it in &items {
        if it.section == "alias" {
            // `!cmd` runs a shell command; without it, options (`-c`,
            // `--exec-path`) and subcommands (`grep -O`, `log --output`) can
            // still run programs or write files, and a repository's alias
            // overrides the user's own of the same name.
            return Err(format!("defines the alias {}, which can run commands", it.name()));
        }
        if !safe_name(it) {
            return Err(format!("sets {}, which is not on the safe-key list (it may run or load something)", it.name()));
        }
        value_ok(it, inside)?;
    }
    Ok(())
}

/// Keys of an existing config whose values are programs or commands git
/// runs (paths in them that lie in a writable root are protected).
const EXEC_KEYS: &[&str] = &[
    "core.fsmonitor",
    "core.sshcommand",
    "core.pager",
    "core.editor",
    "core.askpass",
    "core.gitproxy",
    "core.alternaterefscommand",
    "sequence.editor",
    "gpg.program",
    "gpg.*.program",
    "credential.helper",
    "credential.*.helper",
    "filter.*.clean",
    "filter.*.smudge",
    "filter.*.process",
    "diff.*.textconv",
    "diff.*.command",
    "diff.external",
    "merge.*.driver",
    "pager.*",
    "alias.*",
    "uploadpack.packobjectshook",
    "remote.*.uploadpack",
    "remote.*.receivepack",
    "difftool.*.cmd",
    "mergetool.*.cmd",
    "submodule.*.update",
];

fn matches(pat: &str, it: &Item) -> bool {
    let p: Vec<&str> = pat.split('.').collect();
    match p.as_slice() {
        [s, "*"] => *s == it.section && it.subsection.is_none(),
        [s, k] => *s == it.section && it.subsection.is_none() && *k == it.key,
        [s, "*", k] => *s == it.section && it.subsection.is_some() && *k == it.key,
        _ => false,
    }
}

/// What an existing config makes git run or read, as raw values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    /// `core.hooksPath` values.
    pub hooks_paths: Vec<String>,
    /// `include.path` and `includeIf.*.path` values.
    pub includes: Vec<String>,
    /// Words of executing values that look like paths (contain `/`).
    pub programs: Vec<String>,
}

/// Collect [`References`] from a config (unparseable: nothing to collect;
/// git would refuse the file).
pub fn references(text: &[u8]) -> References {
    let mut r = References::default();
    let Ok(items) = parse(text) else { return r };
    for it in &items {
        let v = it.value.clone().unwrap_or_default();
        if it.section == "core" && it.subsection.is_none() && it.key == "hookspath" {
            r.hooks_paths.push(v);
        } else if (it.section == "include" && it.subsection.is_none() && it.key == "path") || (it.section == "includeif" && it.subsection.is_some() && it.key == "path") {
            r.includes.push(v);
        } else if EXEC_KEYS.iter().any(|p| matches(p, it)) {
            for w in v.trim_start_matches('!').split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|' || c == '\'' || c == '"') {
                if w.contains('/') && !w.contains("://") {
                    r.programs.push(w.to_string());
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<String> {
        parse(t.as_bytes()).unwrap().iter().map(Item::name).collect()
    }

    #[test]
    fn reads_git_syntax() {
        let t = "\u{feff}# c\n[core]\n\trepositoryformatversion = 0\n\tbare\n[remote \"origin\"]\n  url = \"https://x/y.git\" ; c\n[Branch.Main]\r\n\tmerge = refs/heads/main\n[core] fsmonitor = evil\n";
        assert_eq!(names(t), vec!["core.repositoryformatversion", "core.bare", "remote.origin.url", "branch.main.merge", "core.fsmonitor"]);
        let items = parse(t.as_bytes()).unwrap();
        assert_eq!(items[1].value, None);
        assert_eq!(items[2].value.as_deref(), Some("https://x/y.git"));
        assert_eq!(items[4].value.as_deref(), Some("evil"));
        // Continuations and escapes.
        let items = parse(b"[a]\nk = one \\\n two\\t\"  q  \" # x\n").unwrap();
        assert_eq!(items[0].value.as_deref(), Some("one  two\t  q  "));
    }

    #[test]
    fn fails_closed_on_what_git_would_not_read_plainly() {
        for bad in ["k = v\n", "[core\nx=1\n", "[a]\nk = \"open\n", "[a]\nk = \\q\n", "[a]\n9k = 1\n", "[a]\nk v\n", "[a]\nk = x\0y\n", "[a \"s\"x]\n", "[.a]\n"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn judges_inert_and_not() {
        let inside = |_: &str| true;
        let init = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";
        assert!(judge(init.as_bytes(), &inside).is_ok());
        let clone = format!("{init}[remote \"origin\"]\n\turl = /srv/repo.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n[user]\n\temail = a@b\n");
        assert!(judge(clone.as_bytes(), &inside).is_ok());
        for (bad, why) in [
            ("[core]\nfsmonitor = sh -c x\n", "core.fsmonitor"),
            ("[core]\n\thooksPath = .githooks\n", "core.hookspath"),
            ("[CORE] FSMONITOR = x\n", "core.fsmonitor"),
            ("[core] sshCommand = x\n", "core.sshcommand"),
            ("[include]\npath = x\n", "include.path"),
            ("[includeIf \"gitdir:/\"]\npath = x\n", "includeif"),
            ("[filter \"a\"]\nclean = x\n", "filter.a.clean"),
            ("[diff \"a\"]\ntextconv = x\n", "diff.a.textconv"),
            ("[alias]\nst = !sh -c x\n", "alias.st"),
            ("[remote \"o\"]\nurl = ext::sh -c x\n", "remote.o.url"),
            ("[submodule \"s\"]\nupdate = !x\n", "submodule.s.update"),
            ("[credential]\nhelper = x\n", "credential.helper"),
            ("[url \"ext::sh\"]\ninsteadOf = https://\n", "url."),
            ("[core]\nrepositoryformatversion = 0\n[core \"x\"]\nfilemode = 1\n", "core.x.filemode"),
        ] {
            let e = judge(bad.as_bytes(), &inside).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(judge(b"[alias]\nst = status -s\n", &inside).is_err(), "a plain alias can still shadow the user's");
        assert!(judge(b"[alias]\nst = -c core.fsmonitor=x status\n", &inside).is_err());
        assert!(judge(b"[core]\nworktree = ../../x\n", &|_| false).is_err());
    }

    #[test]
    fn collects_what_existing_configs_run() {
        let r = references(b"[core]\nhooksPath = .husky\nfsmonitor = ./tools/fsmon --x\n[include]\npath = ../shared.gitconfig\n[diff \"pdf\"]\ntextconv = pdftotext\n");
        assert_eq!(r.hooks_paths, vec![".husky"]);
        assert_eq!(r.includes, vec!["../shared.gitconfig"]);
        assert_eq!(r.programs, vec!["./tools/fsmon"]);
    }
}
