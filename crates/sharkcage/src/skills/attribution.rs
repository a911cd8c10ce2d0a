//! Which skill a tool call belongs to (issue 12): the attribution rule.
//!
//! OpenClaw tells no hook which skill is active; a skill is instructions, and
//! the model runs the skill's scripts with an ordinary `exec` whose command it
//! writes itself. So the only evidence is the command. The rule:
//!
//! > **A call gets skill X's grants only if everything it executes is skill
//! > X's code.**
//!
//! [`attribute`] proves that for a small, shell-independent subset of
//! commands and answers [`Attribution::Baseline`] (the agent's baseline
//! policy) with a reason for everything else. It is the one implementation
//! both the gate (`before_tool_call`) and the backend (`buildExecSpec`) call,
//! so they cannot disagree.
//!
//! # What is accepted
//!
//! One simple command, `WORD (BLANK+ WORD)*`, with blanks being space or tab
//! and each word a concatenation of
//!
//! * unquoted characters from `A-Z a-z 0-9 _ - . / , : + = @ %` (no unquoted
//!   `=` in the first word — that is an assignment prefix such as
//!   `LD_PRELOAD=… cmd` — nor at the start of any word);
//! * single-quoted text `'…'` (literal; anything but control and format
//!   characters);
//! * double-quoted text `"…"` without `$`, `` ` ``, `\` or `!` (so nothing in
//!   it is expanded or escaped).
//!
//! The words after quote removal are the argv. Then either
//!
//! 1. **the program is the skill's file**: the first word contains `/` (an
//!    absolute path, or relative to an absolute `workdir`) and names a
//!    regular file inside a skill directory; or
//! 2. **an allowed interpreter runs the skill's script**: the first word is
//!    an interpreter below, by bare name (looked up in [`SYSTEM_BIN_DIRS`]
//!    only, never in the caller's `PATH`) or by absolute path in one of those
//!    directories, whose real file lies under `/usr/` or `/bin/`; it may be
//!    followed only by the options listed for it, then by the script
//!    operand, which must contain `/` and name a regular file inside a skill
//!    directory. Everything after the script is the script's arguments.
//!
//! | interpreter (names) | options allowed before the script |
//! |---|---|
//! | POSIX shell (`sh`, `dash`) | clusters of `-e -u -x -v -f -n`; `--` |
//! | `bash` | as `sh`, plus `--norc`, `--noprofile`, `--posix` |
//! | Python (`python3`, `python`) | clusters of `-I -E -s -S -P -B -u -O -q -b -R`; `--` |
//! | Node (`node`, `nodejs`) | `--no-warnings`, `--no-deprecation`, `--enable-source-maps`, `--trace-warnings`, `--trace-deprecation`, `--trace-uncaught`, `--max-old-space-size=<digits>`; `--` |
//! | `ruby` | `-w`, `-W0`, `-W1`, `-W2`; `--` |
//! | `perl` | clusters of `-w -W -X`; `--` |
//!
//! Every other option before the script is baseline: inline code (`-c`,
//! `-e`, `-E`, `--eval`, `-p`, `--print`), module or library loading (`-m`,
//! `-r`, `--require`, `--import`, `--loader`, `-I`dir for Ruby/Perl, `-M`,
//! `-W` warning categories for Python, which import modules, `-X`
//! `pycache_prefix=`), reading code from elsewhere (`-s`/`-i` for shells,
//! `-i` for Python, `--env-file`, `--run`, `--test`, `-S` PATH search for
//! Ruby/Perl, `-x` for Perl/Ruby, `-C`/`--conditions`), debuggers
//! (`--inspect*`, `-d`), login or rc files (`-l`, `--login`, `--rcfile`,
//! `-O`/`-o` shell options), and anything not listed: unknown means
//! baseline. A script operand `-` (standard input) or none at all is
//! baseline. Not on the list at all: `env`, `exec`, `command`, `builtin`,
//! `eval`, `source`, `.`, `xargs`, `nohup`, `timeout`, `sudo`, `nice` (they
//! run another program the model chose), `zsh` (reads `~/.zshenv` even
//! non-interactively), `deno`/`uv run`/`npx`/`php` (they resolve projects,
//! configs, remote imports or ini files: more than the script runs).
//!
//! # Paths
//!
//! * A path is made absolute against `workdir` (which must be absolute) and
//!   normalised lexically: `.` and repeated `/` are dropped. A `..`
//!   component, anywhere, is baseline: the kernel resolves `..` after
//!   symlinks (`dir/link/..` is not `dir`), so a lexical answer could differ
//!   from what runs. A trailing `/` is baseline.
//! * A skill has one or more roots ([`SkillRoot`]): how a command names the
//!   directory (`written`: the host `baseDir`, or a sandbox path such as
//!   `/workspace/skills/<dir>` or `/workspace/.openclaw/sandbox-skills/skills/<dir>`)
//!   and where that directory is on the host (`host`). The written path is
//!   matched against `written` by whole components, translated to the host,
//!   and resolved through the caller's [`Resolve`] (every symlink followed).
//!   The result must be a regular file strictly inside the root's resolved
//!   host directory: a symlink in the skill that points outside is not the
//!   skill's code. A path that names no skill root is not skill code, even
//!   if it is a symlink into one.
//! * Several skills: the innermost written root decides (nested skills); two
//!   different skills with that same root are ambiguous (baseline); and the
//!   innermost resolved host root holding the file must be the same skill
//!   (a symlink from skill A's directory into nested skill B's is baseline).
//!
//! # Why everything else is baseline
//!
//! The command runs under `/bin/sh -c`, in whatever shell that is. Every
//! character that any POSIX shell (or bash/dash as `sh`) gives a meaning —
//! `;` `&` `|` newline (lists, pipelines, background), `$` `` ` `` (parameter,
//! arithmetic and command substitution, `${…}`), `<` `>` (redirections,
//! here-docs, `>|`, `<(…)`/`>(…)`), `(` `)` (subshells), `*` `?` `[` `]`
//! (globs), `{` `}` (brace expansion, groups), `~` (tilde expansion), `#`
//! (comments), `\` (escapes), `!` (negation, history), `^` (old Bourne pipe)
//! — could run a program, read a file the model chose, or change what the
//! words are. Rejecting them unquoted, and limiting quoted text to what is
//! literal in every shell, leaves a language where the words are the same in
//! every shell, so the argv proven here is the argv that runs. Bare program
//! names go through `PATH`, which is not the skill's; wrappers and `eval`-like
//! builtins run programs the model named. Control characters, NUL, non-UTF-8,
//! commands over [`MAX_COMMAND_BYTES`] or over [`MAX_WORDS`] words: baseline.
//!
//! # Why not `shlex` or `shell-words`
//!
//! Both split words (backslashes, both quote kinds) but neither reports which
//! characters were quoted, so every operator and expansion would have to be
//! found again by a second, quote-aware scan — which *is* a tokenizer. The
//! accepted language above is small enough that one scanner that refuses
//! everything else is shorter and easier to audit than a crate plus that
//! second scan; and a crate that accepts more (backslash escapes) is a place
//! where the two could disagree.
//!
//! # What the rule does not cover (the caller's part)
//!
//! * **Environment.** OpenClaw forwards `params.env` (model-written) into the
//!   command's environment. Variables such as `LD_PRELOAD`, `BASH_ENV`,
//!   `PYTHONPATH`, `NODE_OPTIONS`, `PERL5OPT` or `PATH` make other code run
//!   inside the skill's process, and far too many others do (`OPENSSL_CONF`,
//!   a library's own `*_CONF`): [`env_name_kept_for_skill`] keeps only the
//!   locale and the terminal's shape; the caller drops the rest.
//! * **The sandbox must see what was checked.** A written path is checked
//!   on the host, through its root's `host` directory. That proves what runs
//!   only if, inside the sandbox, the written root *is* that directory: the
//!   backend must mount each attributed skill's directory read-only at its
//!   written path for the call (not trust a copy whose parent directories,
//!   or a home layer over a host `baseDir`, the sandboxed side could have
//!   changed or shadowed in an earlier call).
//! * **Running exactly this argv.** The safest backend executes
//!   [`Attribution::Skill`]'s `program` with its `argv` directly, without a
//!   shell (no exported shell functions, no `sh` differences).
//! * **What the skill's code loads.** The rule proves the entry point. What
//!   that code then imports (Node walks `node_modules` up through parent
//!   directories; Python reads user site-packages under `HOME`) must not be
//!   writable by the model, and a skill whose entry point evaluates its
//!   arguments hands its grants to whoever writes them.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// Commands longer than this (bytes) are baseline.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// Commands with more words than this are baseline.
pub const MAX_WORDS: usize = 256;
/// Where a bare interpreter name is looked up, in this order (never the
/// caller's `PATH`), and the directories an absolute interpreter path may name.
pub const SYSTEM_BIN_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin"];
/// The real (symlink-resolved) file of an interpreter must lie under one of these.
pub const SYSTEM_REAL_PREFIXES: &[&str] = &["/usr/", "/bin/"];

/// One way a skill's directory is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillRoot {
    /// The directory as commands name it: the host `baseDir`, or the
    /// sandbox's path of the skill's copy (`/workspace/skills/<dir>`).
    pub written: PathBuf,
    /// The same directory on the host, where [`Resolve`] can look at it.
    pub host: PathBuf,
}

impl SkillRoot {
    /// A directory named by its host path (no mapping).
    pub fn host(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self { written: dir.clone(), host: dir }
    }

    /// A sandbox path (`written`) whose files are at `host` on the host.
    pub fn mapped(written: impl Into<PathBuf>, host: impl Into<PathBuf>) -> Self {
        Self { written: written.into(), host: host.into() }
    }
}

/// A skill and every directory its code may be named by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillPaths {
    pub name: String,
    pub roots: Vec<SkillRoot>,
}

/// What a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Other,
}

/// A path with every symlink resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    pub kind: FileKind,
}

/// Resolves a host path: its real path (every symlink followed) and kind,
/// or `None` when it does not exist or cannot be resolved. Tests pass a fake
/// filesystem; a closure `Fn(&Path) -> Option<Resolved>` works too.
pub trait Resolve {
    fn resolve(&self, path: &Path) -> Option<Resolved>;
}

impl<F: Fn(&Path) -> Option<Resolved>> Resolve for F {
    fn resolve(&self, path: &Path) -> Option<Resolved> {
        self(path)
    }
}

/// The host's filesystem through `realpath`. It is only as good as the tree
/// is stable: a caller whose skill directories or their parents are
/// writable by the sandboxed side needs a resolver that refuses symlinks
/// there, or an answer can change between this check and the exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFs;

impl Resolve for HostFs {
    fn resolve(&self, path: &Path) -> Option<Resolved> {
        let real = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        let kind = if meta.is_file() {
            FileKind::File
        } else if meta.is_dir() {
            FileKind::Dir
        } else {
            FileKind::Other
        };
        Some(Resolved { path: real, kind })
    }
}

/// An allowed interpreter family (see the module header for its options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Sh,
    Bash,
    Python,
    Node,
    Ruby,
    Perl,
}

impl Interpreter {
    /// The family of an interpreter's file name, if it is on the allowlist.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sh" | "dash" => Self::Sh,
            "bash" => Self::Bash,
            "python3" | "python" => Self::Python,
            "node" | "nodejs" => Self::Node,
            "ruby" => Self::Ruby,
            "perl" => Self::Perl,
            _ => return None,
        })
    }

    /// Whether `opt` (a word starting with `-`, not `--` or `-`) may stand
    /// before the script: it neither supplies code nor changes what is loaded.
    fn option_allowed(self, opt: &str) -> bool {
        let cluster = |set: &str| {
            opt.strip_prefix('-')
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('-') && rest.chars().all(|c| set.contains(c)))
        };
        match self {
            Self::Sh => cluster("euxvfn"),
            Self::Bash => cluster("euxvfn") || matches!(opt, "--norc" | "--noprofile" | "--posix"),
            Self::Python => cluster("IEsSPBuOqbR"),
            Self::Node => {
                matches!(
                    opt,
                    "--no-warnings"
                        | "--no-deprecation"
                        | "--enable-source-maps"
                        | "--trace-warnings"
                        | "--trace-deprecation"
                        | "--trace-uncaught"
                ) || opt
                    .strip_prefix("--max-old-space-size=")
                    .is_some_and(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
            }
            Self::Ruby => matches!(opt, "-w" | "-W0" | "-W1" | "-W2"),
            Self::Perl => cluster("wWX"),
        }
    }
}

/// Which policy a call runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribution {
    /// Everything the command executes is this skill's code.
    Skill {
        /// The skill's name ([`SkillPaths::name`]).
        name: String,
        /// The file to execute, absolute and normalised, as the command's
        /// side sees it: the skill's program, or the interpreter found in
        /// [`SYSTEM_BIN_DIRS`].
        program: PathBuf,
        /// The interpreter, when `program` is one.
        interpreter: Option<Interpreter>,
        /// The interpreter's script (absolute, normalised, as written).
        script: Option<PathBuf>,
        /// Where the skill's file is in `argv`: 0 for the program, else the
        /// script operand's position.
        code_at: usize,
        /// The real host file of the skill's code (program or script): what
        /// a grant's tree hash should cover.
        host_file: PathBuf,
        /// The words after quote removal; `argv[0]` as written.
        argv: Vec<String>,
    },
    /// The agent's baseline policy, and why.
    Baseline { reason: String },
}

impl Attribution {
    fn baseline(reason: impl Into<String>) -> Self {
        Self::Baseline { reason: reason.into() }
    }

    /// The skill's name, if the call is attributed to one.
    pub fn skill(&self) -> Option<&str> {
        match self {
            Self::Skill { name, .. } => Some(name),
            Self::Baseline { .. } => None,
        }
    }
}

/// Attributes an `exec` command (as OpenClaw passes it: `params.command`
/// and `params.workdir`) to at most one skill. See the module header.
pub fn attribute(command: &str, workdir: Option<&Path>, skills: &[SkillPaths], fs: &dyn Resolve) -> Attribution {
    match attribute_inner(command, workdir, skills, fs) {
        Ok(a) => a,
        Err(reason) => Attribution::baseline(reason),
    }
}

/// [`attribute`] for a command that arrived as bytes: non-UTF-8 is baseline.
pub fn attribute_bytes(command: &[u8], workdir: Option<&Path>, skills: &[SkillPaths], fs: &dyn Resolve) -> Attribution {
    match std::str::from_utf8(command) {
        Ok(s) => attribute(s, workdir, skills, fs),
        Err(_) => Attribution::baseline("the command is not valid UTF-8"),
    }
}

fn attribute_inner(command: &str, workdir: Option<&Path>, skills: &[SkillPaths], fs: &dyn Resolve) -> Result<Attribution, String> {
    if command.len() > MAX_COMMAND_BYTES {
        return Err(format!("the command is longer than {MAX_COMMAND_BYTES} bytes"));
    }
    let workdir = match workdir {
        None => None,
        Some(w) => Some(normalise_dir(w).map_err(|e| format!("working directory: {e}"))?),
    };
    let argv = split_words(command)?;
    let Some(first) = argv.first() else {
        return Err("empty command".into());
    };
    let index = SkillIndex::new(skills, fs);

    let (program, interpreter) = if first.contains('/') {
        let path = absolute(first, workdir.as_deref())?;
        match index.locate(&path, fs)? {
            Some((name, host_file)) => {
                return Ok(Attribution::Skill { name, program: path, interpreter: None, script: None, code_at: 0, host_file, argv });
            }
            None => match system_interpreter_path(&path, fs)? {
                Some(interp) => (path, interp),
                None => return Err(format!("program `{}` is not inside any skill directory", path.display())),
            },
        }
    } else {
        let Some(interp) = Interpreter::from_name(first) else {
            return Err(format!(
                "`{first}` is a bare program name (found through PATH, not a skill's file) and not an allowed interpreter"
            ));
        };
        (find_system_interpreter(first, fs)?, interp)
    };

    let script_at = script_index(interpreter, &argv[1..])? + 1;
    let script_word = &argv[script_at];
    if script_word == "-" {
        return Err("the interpreter would read its program from standard input (`-`)".into());
    }
    if !script_word.contains('/') {
        return Err(format!(
            "script operand `{script_word}` has no `/` (write it as a path: bare words can mean other things to an interpreter)"
        ));
    }
    let script = absolute(script_word, workdir.as_deref())?;
    match index.locate(&script, fs)? {
        Some((name, host_file)) => Ok(Attribution::Skill {
            name,
            program,
            interpreter: Some(interpreter),
            script: Some(script),
            code_at: script_at,
            host_file,
            argv,
        }),
        None => Err(format!("script `{}` is not inside any skill directory", script.display())),
    }
}

/// The index in `args` (the words after the interpreter) of the script operand.
fn script_index(interp: Interpreter, args: &[String]) -> Result<usize, String> {
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            return if i + 1 < args.len() {
                Ok(i + 1)
            } else {
                Err("the interpreter has no script operand (it would read code from standard input)".into())
            };
        }
        if a.starts_with('-') && a != "-" {
            if !interp.option_allowed(a) {
                return Err(format!(
                    "interpreter option `{a}` before the script is not allowed (inline code, module loading, or not known to be harmless)"
                ));
            }
            continue;
        }
        return Ok(i);
    }
    Err("the interpreter has no script operand (it would read code from standard input)".into())
}

/// An absolute path written in the command that names an allowed
/// interpreter in a system directory: its family.
fn system_interpreter_path(path: &Path, fs: &dyn Resolve) -> Result<Option<Interpreter>, String> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(None);
    };
    let Some(interp) = Interpreter::from_name(name) else {
        return Ok(None);
    };
    if !SYSTEM_BIN_DIRS.iter().any(|d| Path::new(d) == dir) {
        return Ok(None);
    }
    check_system_file(path, fs)?;
    Ok(Some(interp))
}

/// A bare interpreter name: its file in [`SYSTEM_BIN_DIRS`] (first found).
fn find_system_interpreter(name: &str, fs: &dyn Resolve) -> Result<PathBuf, String> {
    for dir in SYSTEM_BIN_DIRS {
        let candidate = Path::new(dir).join(name);
        if fs.resolve(&candidate).is_some() {
            check_system_file(&candidate, fs)?;
            return Ok(candidate);
        }
    }
    Err(format!("interpreter `{name}` is not in {}", SYSTEM_BIN_DIRS.join(", ")))
}

fn check_system_file(path: &Path, fs: &dyn Resolve) -> Result<(), String> {
    match fs.resolve(path) {
        Some(r) if r.kind == FileKind::File => {
            let real = r.path.to_string_lossy();
            if SYSTEM_REAL_PREFIXES.iter().any(|p| real.starts_with(p)) && normalise_dir(&r.path).is_ok() {
                Ok(())
            } else {
                Err(format!("interpreter `{}` resolves outside the system directories ({real})", path.display()))
            }
        }
        Some(_) => Err(format!("interpreter `{}` is not a regular file", path.display())),
        None => Err(format!("interpreter `{}` does not exist", path.display())),
    }
}

/// Every skill root, checked and resolved once per call.
struct SkillIndex<'a> {
    /// (skill name, written root, host root, resolved host root)
    roots: Vec<(&'a str, &'a Path, &'a Path, PathBuf)>,
}

impl<'a> SkillIndex<'a> {
    fn new(skills: &'a [SkillPaths], fs: &dyn Resolve) -> Self {
        let mut roots = Vec::new();
        for s in skills {
            for r in &s.roots {
                // A root that is not absolute and clean, or not a directory,
                // holds nothing.
                if normalise_dir(&r.written).ok().as_deref() != Some(r.written.as_path())
                    || normalise_dir(&r.host).is_err()
                    || r.written == Path::new("/")
                {
                    continue;
                }
                if let Some(res) = fs.resolve(&r.host) {
                    if res.kind == FileKind::Dir && res.path != Path::new("/") {
                        roots.push((s.name.as_str(), r.written.as_path(), r.host.as_path(), res.path));
                    }
                }
            }
        }
        Self { roots }
    }

    /// `Ok(Some((skill, real host file)))` when `path` (absolute, normalised,
    /// as written) is a regular file of exactly one skill; `Ok(None)` when
    /// it names no skill root; `Err` when it does but cannot be proven.
    fn locate(&self, path: &Path, fs: &dyn Resolve) -> Result<Option<(String, PathBuf)>, String> {
        // The innermost written root(s) containing the path.
        let depth = |p: &Path| p.components().count();
        let matching: Vec<_> = self.roots.iter().filter(|r| path.starts_with(r.1)).collect();
        let Some(max) = matching.iter().map(|r| depth(r.1)).max() else {
            return Ok(None);
        };
        let innermost: Vec<_> = matching.into_iter().filter(|r| depth(r.1) == max).collect();
        let name = innermost[0].0;
        if innermost.iter().any(|r| r.0 != name) {
            return Err(format!("`{}` is in a directory claimed by more than one skill", path.display()));
        }
        let mut host_file = None;
        for (_, written, host, real_root) in innermost {
            let rel = path.strip_prefix(written).map_err(|_| "internal: prefix".to_string())?;
            if rel.as_os_str().is_empty() {
                return Err(format!("`{}` is a skill directory, not a file", path.display()));
            }
            let res = fs
                .resolve(&host.join(rel))
                .ok_or_else(|| format!("`{}` does not exist (or cannot be resolved) in skill `{name}`", path.display()))?;
            if res.kind != FileKind::File {
                return Err(format!("`{}` is not a regular file", path.display()));
            }
            if !res.path.starts_with(real_root) || res.path == *real_root {
                return Err(format!(
                    "`{}` resolves outside skill `{name}`'s directory (to {})",
                    path.display(),
                    res.path.display()
                ));
            }
            match &host_file {
                None => host_file = Some(res.path),
                Some(prev) if *prev == res.path => {}
                Some(_) => return Err(format!("`{}` resolves to different files for skill `{name}`", path.display())),
            }
        }
        let host_file = host_file.ok_or_else(|| "internal: no root".to_string())?;
        // The innermost resolved root holding the real file must be the same skill.
        let holders: Vec<_> = self.roots.iter().filter(|r| host_file.starts_with(&r.3) && host_file != r.3).collect();
        let inner = holders.iter().map(|r| depth(&r.3)).max().unwrap_or(0);
        let mut owners: HashMap<&str, ()> = HashMap::new();
        for r in holders.iter().filter(|r| depth(&r.3) == inner) {
            owners.insert(r.0, ());
        }
        if owners.len() != 1 || !owners.contains_key(name) {
            return Err(format!(
                "`{}` is skill `{name}`'s path but its file {} belongs to another skill's directory",
                path.display(),
                host_file.display()
            ));
        }
        Ok(Some((name.to_string(), host_file)))
    }
}

/// A written path made absolute against `workdir` and normalised.
fn absolute(word: &str, workdir: Option<&Path>) -> Result<PathBuf, String> {
    if word.ends_with('/') {
        return Err(format!("path `{word}` ends with `/`"));
    }
    let joined = if word.starts_with('/') {
        PathBuf::from(word)
    } else {
        match workdir {
            Some(w) => w.join(word),
            None => return Err(format!("relative path `{word}` without a working directory")),
        }
    };
    normalise_dir(&joined).map_err(|e| format!("path `{word}`: {e}"))
}

/// An absolute path with `.` and repeated `/` dropped; `..` refused.
fn normalise_dir(p: &Path) -> Result<PathBuf, String> {
    if !p.is_absolute() {
        return Err(format!("`{}` is not absolute", p.display()));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err("`..` in a path (the kernel resolves it after symlinks, so the lexical answer could differ)".into())
            }
            Component::Normal(s) => out.push(s),
            Component::Prefix(_) => return Err("path prefix".into()),
        }
    }
    Ok(out)
}

/// Why an unquoted character is refused.
fn unquoted_reason(c: char) -> String {
    let what = match c {
        ';' | '&' | '|' | '\n' | '\r' => "a command list, pipeline or background operator",
        '$' => "an expansion (parameter, arithmetic or command substitution)",
        '`' => "command substitution",
        '<' | '>' => "a redirection or process substitution",
        '(' | ')' => "a subshell or process substitution",
        '*' | '?' | '[' | ']' => "a glob",
        '{' | '}' => "brace expansion or a command group",
        '~' => "tilde expansion",
        '#' => "a comment",
        '\\' => "a backslash escape",
        '!' => "pipeline negation or history expansion",
        '^' => "a pipe in the old Bourne shell",
        '=' => "an environment assignment (or `=` expansion)",
        _ if c.is_control() => "a control character",
        _ => "a character outside the accepted set",
    };
    format!("unquoted {} ({what})", show(c))
}

fn show(c: char) -> String {
    if !c.is_ascii_graphic() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

fn safe_unquoted(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '+' | '=' | '@' | '%')
}

/// A character that may appear inside quotes: printable, not a format
/// character (bidi overrides, zero-width joiners make a path look like another).
fn quotable(c: char) -> bool {
    !c.is_control()
        && !matches!(
            unicode_general_category::get_general_category(c),
            unicode_general_category::GeneralCategory::Format
                | unicode_general_category::GeneralCategory::LineSeparator
                | unicode_general_category::GeneralCategory::ParagraphSeparator
        )
}

/// Splits the accepted language into words (see the module header), or
/// says why the command is outside it.
fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                    if words.len() > MAX_WORDS {
                        return Err(format!("more than {MAX_WORDS} words"));
                    }
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err("unbalanced single quote".into()),
                        Some('\'') => break,
                        Some(q) if quotable(q) => w.push(q),
                        Some(q) => return Err(format!("{} inside single quotes", show(q))),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err("unbalanced double quote".into()),
                        Some('"') => break,
                        Some(q @ ('$' | '`' | '\\' | '!')) => {
                            return Err(format!("`{q}` inside double quotes (expanded or escaped there; use single quotes)"))
                        }
                        Some(q) if quotable(q) => w.push(q),
                        Some(q) => return Err(format!("{} inside double quotes", show(q))),
                    }
                }
            }
            '=' if words.is_empty() || cur.is_none() => return Err(unquoted_reason('=')),
            c if safe_unquoted(c) => cur.get_or_insert_with(String::new).push(c),
            c => return Err(unquoted_reason(c)),
        }
    }
    if let Some(w) = cur.take() {
        words.push(w);
    }
    if words.len() > MAX_WORDS {
        return Err(format!("more than {MAX_WORDS} words"));
    }
    Ok(words)
}

/// Whether a variable from the call (the model's `params.env`) stays in a
/// call that runs with a skill's grants. By rule, not by a list of known
/// dangers: variables that change what code runs or what it loads are far
/// too many (`LD_*`, `PYTHON*`, `NODE_OPTIONS`, `OPENSSL_CONF`, `GCONV_PATH`,
/// `PERL5OPT`, a library's own `*_CONF`, …), so only the locale and the
/// terminal's shape pass; everything else a skill needs comes from its
/// declaration (`system.env`) or its arguments.
pub fn env_name_kept_for_skill(name: &str) -> bool {
    matches!(name, "LANG" | "LANGUAGE" | "TZ" | "TERM" | "COLORTERM" | "NO_COLOR" | "FORCE_COLOR" | "COLUMNS" | "LINES")
        || (name.starts_with("LC_") && name.len() > 3 && name[3..].bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W_HOST: &str = "/home/u/.openclaw/skills/weather";
    const W_RO: &str = "/workspace/skills/weather";
    const W_RO_HOST: &str = "/srv/sandboxes/s1/skills/weather";
    const W_RW: &str = "/workspace/.openclaw/sandbox-skills/skills/weather";
    const W_RW_HOST: &str = "/home/u/ws/.openclaw/sandbox-skills/skills/weather";
    const NOTES: &str = "/home/u/.openclaw/skills/notes";
    const INNER: &str = "/home/u/.openclaw/skills/notes/vendor/inner";

    /// A fake host filesystem: path → what it resolves to.
    #[derive(Default)]
    struct FakeFs(HashMap<PathBuf, Resolved>);

    impl FakeFs {
        fn file(&mut self, p: &str) {
            self.link(p, p, FileKind::File);
        }
        fn dir(&mut self, p: &str) {
            self.link(p, p, FileKind::Dir);
        }
        fn link(&mut self, p: &str, target: &str, kind: FileKind) {
            self.0.insert(PathBuf::from(p), Resolved { path: PathBuf::from(target), kind });
        }
    }

    impl Resolve for FakeFs {
        fn resolve(&self, path: &Path) -> Option<Resolved> {
            self.0.get(path).cloned()
        }
    }

    fn world() -> (FakeFs, Vec<SkillPaths>) {
        let mut fs = FakeFs::default();
        for root in [W_HOST, W_RO_HOST, W_RW_HOST] {
            fs.dir(root);
            fs.dir(&format!("{root}/scripts"));
            for f in ["run.sh", "scripts/fetch.py", "index.js", "main.rb", "main.pl", "bin/tool", "odd name.sh", "inspect"] {
                fs.file(&format!("{root}/{f}"));
            }
            fs.link(&format!("{root}/link-out.sh"), "/tmp/evil.sh", FileKind::File);
            fs.link(&format!("{root}/link-in.sh"), &format!("{root}/run.sh"), FileKind::File);
            fs.link(&format!("{root}/link-notes.sh"), &format!("{NOTES}/run.sh"), FileKind::File);
            fs.link(&format!("{root}/fifo"), &format!("{root}/fifo"), FileKind::Other);
        }
        fs.dir(NOTES);
        fs.dir("/srv/sandboxes/s1/skills/notes");
        fs.file(&format!("{NOTES}/run.sh"));
        fs.dir(INNER);
        fs.file(&format!("{INNER}/run.sh"));
        fs.link(&format!("{NOTES}/link-inner.sh"), &format!("{INNER}/run.sh"), FileKind::File);
        // A skill directory that is itself a symlink.
        fs.link("/home/u/.openclaw/skills/linked", "/data/linked", FileKind::Dir);
        fs.link("/home/u/.openclaw/skills/linked/run.sh", "/data/linked/run.sh", FileKind::File);
        // Two skills claiming one directory.
        fs.dir("/opt/skills/twin");
        fs.file("/opt/skills/twin/run.sh");
        fs.file("/tmp/evil.sh");
        fs.file("/tmp/evil.py");
        // System interpreters.
        fs.file("/usr/local/bin/node");
        fs.file("/usr/bin/node");
        fs.link("/usr/bin/python3", "/usr/bin/python3.12", FileKind::File);
        fs.link("/usr/bin/python", "/opt/conda/bin/python", FileKind::File);
        fs.link("/bin/sh", "/usr/bin/dash", FileKind::File);
        fs.link("/usr/bin/sh", "/usr/bin/dash", FileKind::File);
        fs.file("/usr/bin/dash");
        fs.file("/usr/bin/bash");
        fs.link("/bin/bash", "/usr/bin/bash", FileKind::File);
        fs.file("/usr/bin/ruby");
        fs.file("/usr/bin/perl");
        fs.file("/usr/bin/env");
        fs.file("/home/u/bin/python3");

        let skills = vec![
            SkillPaths {
                name: "weather".into(),
                roots: vec![SkillRoot::host(W_HOST), SkillRoot::mapped(W_RO, W_RO_HOST), SkillRoot::mapped(W_RW, W_RW_HOST)],
            },
            SkillPaths {
                name: "notes".into(),
                roots: vec![SkillRoot::host(NOTES), SkillRoot::mapped("/workspace/skills/notes", "/srv/sandboxes/s1/skills/notes")],
            },
            SkillPaths { name: "inner".into(), roots: vec![SkillRoot::host(INNER)] },
            SkillPaths { name: "linked".into(), roots: vec![SkillRoot::host("/home/u/.openclaw/skills/linked")] },
            SkillPaths { name: "twin-a".into(), roots: vec![SkillRoot::host("/opt/skills/twin")] },
            SkillPaths { name: "twin-b".into(), roots: vec![SkillRoot::host("/opt/skills/twin")] },
            SkillPaths { name: "ghost".into(), roots: vec![SkillRoot::host("/home/u/.openclaw/skills/ghost")] },
            // Roots that are not clean absolute paths hold nothing.
            SkillPaths { name: "sloppy".into(), roots: vec![SkillRoot::host("relative/skills/x"), SkillRoot::host("/")] },
        ];
        (fs, skills)
    }

    enum Exp {
        /// Attributed to this skill.
        S(&'static str),
        /// Baseline, with a reason containing this text.
        B(&'static str),
    }
    use Exp::{B, S};

    /// (command, workdir, expected) — each with the reason it is what it is.
    #[rustfmt::skip]
    fn table() -> Vec<(&'static str, Option<&'static str>, Exp)> {
        vec![
            // ---- positive: the program is the skill's file ----
            ("/home/u/.openclaw/skills/weather/run.sh", None, S("weather")),                  // host baseDir path
            ("/home/u/.openclaw/skills/weather/run.sh Berlin --days=3", None, S("weather")),  // arguments are the skill's input
            ("/workspace/skills/weather/run.sh", None, S("weather")),                         // sandbox path (workspaceAccess none/ro)
            ("/workspace/.openclaw/sandbox-skills/skills/weather/run.sh", None, S("weather")), // sandbox path (rw)
            ("./run.sh", Some(W_RO), S("weather")),                                            // relative with `/`, against workdir
            ("scripts/fetch.py", Some(W_RO), S("weather")),                                    // relative subdirectory
            ("skills/weather/run.sh", Some("/workspace"), S("weather")),                       // relative from the workspace
            ("/workspace//skills/./weather/run.sh", None, S("weather")),                       // `//` and `.` normalised away
            ("/workspace/skills/weather/link-in.sh", None, S("weather")),                      // symlink staying inside the skill
            ("/home/u/.openclaw/skills/notes/vendor/inner/run.sh", None, S("inner")),          // nested skill: innermost wins
            ("/home/u/.openclaw/skills/notes/run.sh", None, S("notes")),                       // the outer skill's own file
            ("/workspace/skills/notes/run.sh", None, B("does not exist")),                     // mapped copy without that file
            ("/home/u/.openclaw/skills/linked/run.sh", None, S("linked")),                     // skill dir itself a symlink
            ("'/workspace/skills/weather/odd name.sh'", None, S("weather")),                   // quoted path with a space
            ("\"/workspace/skills/weather/run.sh\" \"Berlin, DE\"", None, S("weather")),       // double quotes without expansions
            ("/workspace/skills/weather/run.sh 'a;b|c$(d)`e`>f'", None, S("weather")),         // metacharacters are literal in '…'
            ("/workspace/skills/weather/run.sh \"it's fine\"", None, S("weather")),            // ' inside "…" is literal
            ("/workspace/skills/weather/run.sh key=value", None, S("weather")),                // `=` inside a later word
            ("/workspace/skills/weather/run.sh ''", None, S("weather")),                       // empty argument
            ("\t/workspace/skills/weather/run.sh\t x  ", None, S("weather")),                  // tabs and spaces are blanks
            ("/workspace/skills/weather/run.sh 'Zürich'", None, S("weather")),                 // non-ASCII inside quotes
            ("/workspace/skills/weather/run.sh a,b:c+d@e%f", None, S("weather")),              // the whole unquoted set
            ("/workspace/skills/weather/run.s'h'", None, S("weather")),                        // quotes mid-word concatenate
            // ---- positive: an allowed interpreter runs the skill's script ----
            ("python3 /workspace/skills/weather/scripts/fetch.py --city Berlin", None, S("weather")),
            ("python3 -I -B /workspace/skills/weather/scripts/fetch.py", None, S("weather")),  // isolation options only reduce loading
            ("python3 -IsB /workspace/skills/weather/scripts/fetch.py", None, S("weather")),   // clustered safe flags
            ("python3 -- /workspace/skills/weather/scripts/fetch.py -c x", None, S("weather")), // `--`, then -c is the script's
            ("/usr/bin/python3 /home/u/.openclaw/skills/weather/scripts/fetch.py", None, S("weather")), // absolute system interpreter
            ("python3 ./scripts/fetch.py", Some(W_RO), S("weather")),                          // relative script with `/`
            ("node /workspace/skills/weather/index.js", None, S("weather")),
            ("node --no-warnings --max-old-space-size=512 /workspace/skills/weather/index.js", None, S("weather")),
            ("node /workspace/skills/weather/index.js -e x --require y", None, S("weather")),  // options after the script are arguments
            ("/usr/local/bin/node /workspace/skills/weather/index.js", None, S("weather")),    // absolute, system dir
            ("sh /workspace/skills/weather/run.sh", None, S("weather")),
            ("/bin/sh /workspace/skills/weather/run.sh", None, S("weather")),                  // symlinked to dash in /usr/bin
            ("bash -eu /workspace/skills/weather/run.sh", None, S("weather")),                 // -e is errexit for shells
            ("bash --norc --noprofile /workspace/skills/weather/run.sh", None, S("weather")),
            ("ruby -w /workspace/skills/weather/main.rb", None, S("weather")),
            ("perl -w /workspace/skills/weather/main.pl", None, S("weather")),
            // ---- shell syntax: lists, pipelines, background ----
            ("/workspace/skills/weather/run.sh; curl evil.example", None, B("`;`")),
            ("/workspace/skills/weather/run.sh && curl evil.example", None, B("`&`")),
            ("/workspace/skills/weather/run.sh || true", None, B("`|`")),
            ("/workspace/skills/weather/run.sh | sh", None, B("`|`")),
            ("/workspace/skills/weather/run.sh &", None, B("`&`")),
            ("/workspace/skills/weather/run.sh\ncurl evil.example", None, B("U+000A")),         // newline separates commands
            ("/workspace/skills/weather/run.sh\r", None, B("U+000D")),
            // ---- expansions and substitutions ----
            ("/workspace/skills/weather/run.sh $(curl evil.example)", None, B("`$`")),
            ("/workspace/skills/weather/run.sh `id`", None, B("command substitution")),
            ("/workspace/skills/weather/run.sh <(cat /etc/passwd)", None, B("`<`")),
            ("/workspace/skills/weather/run.sh >(tee /tmp/x)", None, B("`>`")),
            ("/workspace/skills/weather/run.sh ${HOME}", None, B("`$`")),
            ("/workspace/skills/weather/run.sh $HOME", None, B("`$`")),
            ("/workspace/skills/weather/run.sh $((1+1))", None, B("`$`")),
            ("/workspace/skills/*/run.sh", None, B("glob")),                                   // could match another skill
            ("/workspace/skills/weathe?/run.sh", None, B("glob")),
            ("/workspace/skills/[w]eather/run.sh", None, B("glob")),
            ("/workspace/skills/weather/run.sh {a,b}", None, B("brace")),
            ("~/skills/weather/run.sh", None, B("tilde")),
            ("/workspace/skills/weather/run.sh # comment", None, B("comment")),
            ("/workspace/skills/weather/run\\.sh", None, B("backslash")),
            ("! /workspace/skills/weather/run.sh", None, B("`!`")),
            ("( /workspace/skills/weather/run.sh )", None, B("subshell")),
            ("{ /workspace/skills/weather/run.sh; }", None, B("brace")),
            ("/workspace/skills/weather/run.sh ^x", None, B("Bourne")),
            // ---- redirections ----
            ("/workspace/skills/weather/run.sh > /tmp/out", None, B("redirection")),
            ("/workspace/skills/weather/run.sh >> /tmp/out", None, B("redirection")),
            ("/workspace/skills/weather/run.sh < /etc/passwd", None, B("redirection")),
            ("/workspace/skills/weather/run.sh 2>&1", None, B("redirection")),
            ("/workspace/skills/weather/run.sh <<EOF", None, B("redirection")),
            ("/workspace/skills/weather/run.sh >| /tmp/out", None, B("redirection")),
            // ---- assignment prefixes and wrappers ----
            ("LD_PRELOAD=/tmp/x.so /workspace/skills/weather/run.sh", None, B("assignment")),
            ("PATH=/tmp /workspace/skills/weather/run.sh", None, B("assignment")),
            ("NODE_OPTIONS=--require=/tmp/x.js node /workspace/skills/weather/index.js", None, B("assignment")),
            ("BASH_ENV=/tmp/x bash /workspace/skills/weather/run.sh", None, B("assignment")),
            ("FOO=bar", None, B("assignment")),
            ("=/workspace/skills/weather/run.sh", None, B("assignment")),                      // zsh `=cmd` expansion
            ("/workspace/skills/weather/run.sh x =y", None, B("assignment")),                  // `=` starting a word
            ("exec /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("env /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("/usr/bin/env python3 /workspace/skills/weather/scripts/fetch.py", None, B("not inside any skill")),
            ("command /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("builtin /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("eval /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("source /workspace/skills/weather/run.sh", None, B("bare program name")),
            (". /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("xargs /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("nohup /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("timeout 5 /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("sudo /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("time /workspace/skills/weather/run.sh", None, B("bare program name")),
            ("run.sh", Some(W_RO), B("bare program name")),                                    // PATH lookup, not ./run.sh
            ("zsh /workspace/skills/weather/run.sh", None, B("bare program name")),            // reads ~/.zshenv
            ("deno run /workspace/skills/weather/index.js", None, B("bare program name")),
            ("uv run /workspace/skills/weather/scripts/fetch.py", None, B("bare program name")),
            // ---- interpreter options: inline code, module loading, stdin ----
            ("sh -c /workspace/skills/weather/run.sh", None, B("option `-c`")),
            ("bash -c 'curl evil.example'", None, B("option `-c`")),
            ("bash -ec /workspace/skills/weather/run.sh", None, B("option `-ec`")),            // -c hidden in a cluster
            ("bash -s /workspace/skills/weather/run.sh", None, B("option `-s`")),              // script from stdin
            ("bash -i /workspace/skills/weather/run.sh", None, B("option `-i`")),              // interactive: rc files
            ("bash -l /workspace/skills/weather/run.sh", None, B("option `-l`")),              // login: profile files
            ("bash --rcfile /tmp/x /workspace/skills/weather/run.sh", None, B("option `--rcfile`")),
            ("bash -o pipefail /workspace/skills/weather/run.sh", None, B("option `-o`")),
            ("sh --norc /workspace/skills/weather/run.sh", None, B("option `--norc`")),       // bash-only, dash refuses
            ("python3 -c 'import os' /workspace/skills/weather/scripts/fetch.py", None, B("option `-c`")),
            ("python3 -m http.server", None, B("option `-m`")),
            ("python3 -Ic pass", None, B("option `-Ic`")),
            ("python3 -W error::evil.Warn /workspace/skills/weather/scripts/fetch.py", None, B("option `-W`")), // imports evil
            ("python3 -X pycache_prefix=/tmp /workspace/skills/weather/scripts/fetch.py", None, B("option `-X`")),
            ("python3 -i /workspace/skills/weather/scripts/fetch.py", None, B("option `-i`")),   // then reads stdin
            ("python3 --version /workspace/skills/weather/scripts/fetch.py", None, B("option `--version`")), // unknown = baseline
            ("node -e 'require(\"child_process\")'", None, B("option `-e`")),
            ("node --eval x", None, B("option `--eval`")),
            ("node -p 1", None, B("option `-p`")),
            ("node -r /tmp/x.js /workspace/skills/weather/index.js", None, B("option `-r`")),
            ("node --require=/tmp/x.js /workspace/skills/weather/index.js", None, B("option `--require=/tmp/x.js`")),
            ("node --import=/tmp/x.mjs /workspace/skills/weather/index.js", None, B("option `--import")),
            ("node --loader /tmp/x.mjs /workspace/skills/weather/index.js", None, B("option `--loader`")),
            ("node --inspect /workspace/skills/weather/index.js", None, B("option `--inspect`")),  // a debugger port runs any code
            ("node --inspect-brk=0 /workspace/skills/weather/index.js", None, B("option `--inspect-brk=0`")),
            ("node --env-file=/tmp/e /workspace/skills/weather/index.js", None, B("option `--env-file")), // NODE_OPTIONS from a file
            ("node --run build", None, B("option `--run`")),
            ("node --test", None, B("option `--test`")),
            ("node --max-old-space-size=1e9 /workspace/skills/weather/index.js", None, B("option")),
            ("ruby -e 'system(1)'", None, B("option `-e`")),
            ("ruby -I/tmp /workspace/skills/weather/main.rb", None, B("option `-I/tmp`")),
            ("ruby -rjson /workspace/skills/weather/main.rb", None, B("option `-rjson`")),
            ("ruby -S main.rb", Some(W_RO), B("option `-S`")),
            ("perl -e 'exec 1'", None, B("option `-e`")),
            ("perl -Mstrict /workspace/skills/weather/main.pl", None, B("option `-Mstrict`")),
            ("perl -I/tmp /workspace/skills/weather/main.pl", None, B("option `-I/tmp`")),
            ("perl -d:Trace /workspace/skills/weather/main.pl", None, B("option `-d:Trace`")),
            ("sh", None, B("no script operand")),                                               // reads stdin
            ("python3 -", None, B("standard input")),
            ("python3 --", None, B("no script operand")),
            ("python3 -B", None, B("no script operand")),
            ("python3 run.py", Some("/workspace/skills/weather/scripts"), B("has no `/`")),   // written as a path, please
            ("node inspect /tmp/x.js", Some(W_RO), B("has no `/`")),                          // `node inspect` is the debugger
            ("sh run.sh", Some(W_RO), B("has no `/`")),                                        // shells search PATH for it
            ("python3 /tmp/evil.py", None, B("script `/tmp/evil.py` is not inside")),
            ("python3 /workspace/skills/weather/scripts", None, B("not a regular file")),     // a directory's __main__
            ("python /workspace/skills/weather/scripts/fetch.py", None, B("outside the system directories")), // /usr/bin/python → conda
            ("nodejs /workspace/skills/weather/index.js", None, B("is not in")),              // no such interpreter
            ("/usr/local/bin/python3 /workspace/skills/weather/scripts/fetch.py", None, B("does not exist")),
            ("/home/u/bin/python3 /workspace/skills/weather/scripts/fetch.py", None, B("not inside any skill")), // not a system dir
            ("/usr/lib/python3 /workspace/skills/weather/scripts/fetch.py", None, B("not inside any skill")),
            // ---- paths and symlinks ----
            ("/workspace/skills/weather/link-out.sh", None, B("resolves outside skill `weather`")),
            ("/home/u/.openclaw/skills/weather/link-notes.sh", None, B("resolves outside skill `weather`")),
            ("/home/u/.openclaw/skills/notes/link-inner.sh", None, B("another skill")),       // notes' path, inner's file
            ("/workspace/skills/weather/../notes/run.sh", None, B("`..`")),
            ("/workspace/skills/weather/scripts/../run.sh", None, B("`..`")),                 // even staying inside
            ("../run.sh", Some("/workspace/skills/weather/scripts"), B("`..`")),
            ("./run.sh", None, B("without a working directory")),
            ("./run.sh", Some("relative/dir"), B("working directory")),
            ("/workspace/skills/weather/run.sh", Some("/workspace/../etc"), B("working directory")),
            ("/workspace/skills/weather/run.sh/", None, B("ends with `/`")),
            ("/workspace/skills/weather/missing.sh", None, B("does not exist")),
            ("/workspace/skills/weather", None, B("a skill directory, not a file")),
            ("/workspace/skills/weather/fifo", None, B("not a regular file")),
            ("/opt/skills/twin/run.sh", None, B("more than one skill")),                      // ambiguous
            ("/home/u/.openclaw/skills/ghost/run.sh", None, B("not inside any skill")),       // root missing on the host
            ("/tmp/evil.sh", None, B("not inside any skill")),
            ("/workspace/skills/weatherman/run.sh", None, B("not inside any skill")),         // prefix by characters, not components
            // ---- quoting ----
            ("'/workspace/skills/weather/run.sh", None, B("unbalanced single quote")),
            ("\"/workspace/skills/weather/run.sh", None, B("unbalanced double quote")),
            ("/workspace/skills/weather/run.sh \"$HOME\"", None, B("`$` inside double quotes")),
            ("/workspace/skills/weather/run.sh \"`id`\"", None, B("inside double quotes")),
            ("/workspace/skills/weather/run.sh \"a\\\"b\"", None, B("`\\` inside double quotes")),
            ("/workspace/skills/weather/run.sh \"!x\"", None, B("`!` inside double quotes")),
            ("/workspace/skills/weather/run.sh 'a\0b'", None, B("U+0000")),                   // NUL
            ("/workspace/skills/weather/run.sh 'a\nb'", None, B("U+000A inside single quotes")),
            ("/workspace/skills/weather/run.sh '\u{202e}hs.nur'", None, B("U+202E")),         // bidi override
            ("/workspace/skills/weather/run.sh Zürich", None, B("U+00FC (a character outside the accepted set")),  // non-ASCII unquoted
            ("/workspace/skills/weather/run.sh\u{a0}x", None, B("outside the accepted set")),  // NBSP is not a blank
            ("", None, B("empty command")),
            ("   ", None, B("empty command")),
            ("''", None, B("bare program name")),                                               // an empty program name
        ]
    }

    #[test]
    fn table_cases() {
        let (fs, skills) = world();
        let mut failures = Vec::new();
        for (cmd, wd, exp) in table() {
            let got = attribute(cmd, wd.map(Path::new), &skills, &fs);
            let ok = match (&exp, &got) {
                (S(name), Attribution::Skill { name: got, .. }) => name == got,
                (B(frag), Attribution::Baseline { reason }) => reason.contains(frag),
                _ => false,
            };
            if !ok {
                let want = match exp {
                    S(n) => format!("skill {n}"),
                    B(f) => format!("baseline containing {f:?}"),
                };
                failures.push(format!("{cmd:?} (workdir {wd:?}): want {want}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
        assert!(table().len() >= 60);
    }

    #[test]
    fn skill_fields() {
        let (fs, skills) = world();
        let got = attribute("python3 -B ./scripts/fetch.py --city 'New York'", Some(Path::new(W_RW)), &skills, &fs);
        assert_eq!(
            got,
            Attribution::Skill {
                name: "weather".into(),
                program: "/usr/bin/python3".into(),
                interpreter: Some(Interpreter::Python),
                script: Some(format!("{W_RW}/scripts/fetch.py").into()),
                code_at: 2,
                host_file: format!("{W_RW_HOST}/scripts/fetch.py").into(),
                argv: ["python3", "-B", "./scripts/fetch.py", "--city", "New York"].map(String::from).to_vec(),
            }
        );
        let got = attribute("/workspace/skills/weather/link-in.sh", None, &skills, &fs);
        let Attribution::Skill { program, script, host_file, interpreter, .. } = got else { panic!("{got:?}") };
        assert_eq!(program, Path::new("/workspace/skills/weather/link-in.sh"));
        assert_eq!((script, interpreter), (None, None));
        assert_eq!(host_file, Path::new(&format!("{W_RO_HOST}/run.sh")), "the real file, for the tree hash");
        // node is found in /usr/local/bin first.
        let got = attribute("node /workspace/skills/weather/index.js", None, &skills, &fs);
        assert!(matches!(got, Attribution::Skill { ref program, .. } if program == Path::new("/usr/local/bin/node")), "{got:?}");
    }

    #[test]
    fn bounds_and_bytes() {
        let (fs, skills) = world();
        let long = format!("/workspace/skills/weather/run.sh {}", "a".repeat(MAX_COMMAND_BYTES));
        assert!(attribute(&long, None, &skills, &fs).skill().is_none());
        let many = format!("/workspace/skills/weather/run.sh{}", " a".repeat(MAX_WORDS));
        let Attribution::Baseline { reason } = attribute(&many, None, &skills, &fs) else { panic!() };
        assert!(reason.contains("words"), "{reason}");
        let fits = format!("/workspace/skills/weather/run.sh{}", " a".repeat(MAX_WORDS - 1));
        assert_eq!(attribute(&fits, None, &skills, &fs).skill(), Some("weather"));
        let bad = b"/workspace/skills/weather/run.sh \xff";
        let Attribution::Baseline { reason } = attribute_bytes(bad, None, &skills, &fs) else { panic!() };
        assert!(reason.contains("UTF-8"));
        assert_eq!(attribute_bytes(b"/workspace/skills/weather/run.sh", None, &skills, &fs).skill(), Some("weather"));
        // No skills at all: nothing is attributed.
        assert!(attribute("/workspace/skills/weather/run.sh", None, &[], &fs).skill().is_none());
    }

    /// Positive commands written without quotes, for the property tests.
    const PLAIN_POSITIVES: &[(&str, Option<&str>)] = &[
        ("/workspace/skills/weather/run.sh Berlin --days=3", None),
        ("python3 -B /workspace/skills/weather/scripts/fetch.py x", None),
        ("node /workspace/skills/weather/index.js", None),
        ("./run.sh a", Some(W_RO)),
        ("bash -eu /workspace/skills/weather/run.sh", None),
    ];

    const METAS: &[char] = &[
        ';', '&', '|', '\n', '\r', '$', '`', '<', '>', '(', ')', '*', '?', '[', ']', '{', '}', '~', '#', '\\', '!', '^', '\0',
        '"', '\'', '\u{7f}', '\u{85}', '\u{2028}',
    ];

    /// Any shell metacharacter (or a lone quote) inserted anywhere into a
    /// positive command makes it baseline.
    #[test]
    fn any_unquoted_metacharacter_anywhere_is_baseline() {
        let (fs, skills) = world();
        let mut checked = 0;
        for (cmd, wd) in PLAIN_POSITIVES {
            assert!(attribute(cmd, wd.map(Path::new), &skills, &fs).skill().is_some(), "{cmd}");
            for i in 0..=cmd.len() {
                for m in METAS {
                    for ins in [m.to_string(), format!(" {m}"), format!("{m} ")] {
                        let mutated = format!("{}{}{}", &cmd[..i], ins, &cmd[i..]);
                        let got = attribute(&mutated, wd.map(Path::new), &skills, &fs);
                        assert!(got.skill().is_none(), "{mutated:?} was attributed: {got:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000);
    }

    /// Appending an operator and a second command is always baseline.
    #[test]
    fn appended_second_command_is_baseline() {
        let (fs, skills) = world();
        for (cmd, wd) in PLAIN_POSITIVES {
            for op in [";", "&&", "||", "|", "&", "\n", ">", ">>", "<", "2>&1", "|&", ";;", "$(", "`"] {
                for sep in ["", " "] {
                    let mutated = format!("{cmd}{sep}{op} /workspace/skills/weather/run.sh");
                    assert!(attribute(&mutated, wd.map(Path::new), &skills, &fs).skill().is_none(), "{mutated:?}");
                }
            }
        }
    }

    /// How a real shell splits `cmd` into words (`set -- cmd`), if it is there.
    fn shell_words(shell: &str, cmd: &str) -> Option<Vec<String>> {
        if !Path::new(shell).exists() {
            return None;
        }
        let script = format!("set -- {cmd}\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done");
        let out = std::process::Command::new(shell).arg("-c").arg(script).env_clear().output().ok()?;
        assert!(out.status.success(), "{shell} failed on {cmd:?}");
        let text = String::from_utf8(out.stdout).ok()?;
        Some(text.split_terminator('\0').map(String::from).collect())
    }

    fn assert_same_words_as_shells(cmd: &str, argv: &[String]) {
        for shell in ["/bin/sh", "/bin/bash", "/bin/dash"] {
            if let Some(words) = shell_words(shell, cmd) {
                assert_eq!(words, argv, "{shell} splits {cmd:?} differently");
            }
        }
    }

    /// Every accepted command of the table splits into the same words in real shells.
    #[test]
    fn accepted_commands_split_like_real_shells() {
        let (fs, skills) = world();
        for (cmd, wd, _) in table() {
            if let Attribution::Skill { argv, .. } = attribute(cmd, wd.map(Path::new), &skills, &fs) {
                assert_same_words_as_shells(cmd, &argv);
            }
        }
    }

    /// Random mutations of positive commands: no panic, and whatever is still
    /// attributed splits into the same words in real shells and is a skill's file.
    #[test]
    fn random_mutations() {
        let (fs, skills) = world();
        let alphabet: Vec<char> = "abc/._-=@ '\"\t;&|$`<>()*?[]{}~#\\!^,:+%\n0é\u{0}".chars().collect();
        let seeded: &[(&str, Option<&str>)] = &[
            ("/workspace/skills/weather/run.sh 'a b' \"c d\"", None),
            ("python3 -I /workspace/skills/weather/scripts/fetch.py 'x;y'", None),
            ("node /workspace/skills/weather/index.js", None),
            ("./run.sh k=v", Some(W_RO)),
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut oracle_checks) = (0, 0);
        for round in 0..20_000 {
            let (base, wd) = seeded[round % seeded.len()];
            let mut chars: Vec<char> = base.chars().collect();
            for _ in 0..1 + next() % 3 {
                let pos = (next() as usize) % (chars.len() + 1);
                match next() % 3 {
                    0 if !chars.is_empty() && pos < chars.len() => {
                        chars.remove(pos);
                    }
                    _ => chars.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            let cmd: String = chars.into_iter().collect();
            if let Attribution::Skill { argv, host_file, .. } = attribute(&cmd, wd.map(Path::new), &skills, &fs) {
                accepted += 1;
                assert!(host_file.starts_with(W_RO_HOST), "{cmd:?} → {host_file:?}");
                if oracle_checks < 300 {
                    assert_same_words_as_shells(&cmd, &argv);
                    oracle_checks += 1;
                }
            }
        }
        assert!(accepted > 100, "the mutations should leave some commands accepted ({accepted})");
    }

    #[test]
    fn env_names() {
        for n in [
            "LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "BASH_FUNC_python3%%", "SHELLOPTS", "PS4", "PATH", "PYTHONPATH",
            "PYTHONSTARTUP", "PYTHONUSERBASE", "NODE_OPTIONS", "NODE_PATH", "RUBYOPT", "RUBYLIB", "PERL5OPT", "PERL5LIB",
            "GCONV_PATH", "HOME", "npm_config_node_options", "OPENSSL_CONF", "SOME_TOOL_CONF", "CITY", "LC_", "LC_all",
        ] {
            assert!(!env_name_kept_for_skill(n), "{n}");
        }
        for n in ["LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "COLORTERM", "NO_COLOR", "COLUMNS", "LINES"] {
            assert!(env_name_kept_for_skill(n), "{n}");
        }
    }

    /// The real resolver on a real tree: a symlink out of the skill is refused.
    #[test]
    fn host_fs() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let skill = root.join("skills/demo");
        std::fs::create_dir_all(skill.join("scripts")).unwrap();
        std::fs::write(skill.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(root.join("evil.sh"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(root.join("evil.sh"), skill.join("out.sh")).unwrap();
        std::os::unix::fs::symlink(skill.join("run.sh"), skill.join("in.sh")).unwrap();
        let skills = [SkillPaths { name: "demo".into(), roots: vec![SkillRoot::mapped("/workspace/skills/demo", &skill)] }];
        let a = |c: &str| attribute(c, Some(Path::new("/workspace")), &skills, &HostFs);
        assert_eq!(a("/workspace/skills/demo/run.sh").skill(), Some("demo"));
        assert_eq!(a("skills/demo/in.sh").skill(), Some("demo"));
        assert!(matches!(a("/workspace/skills/demo/out.sh"), Attribution::Baseline { ref reason } if reason.contains("outside")));
        assert!(a("/workspace/skills/demo/scripts").skill().is_none());
        assert!(a("/workspace/skills/demo/nope.sh").skill().is_none());
        // A closure works as a resolver too.
        let none = |_: &Path| None;
        assert!(attribute("/workspace/skills/demo/run.sh", None, &skills, &none).skill().is_none());
    }
}
