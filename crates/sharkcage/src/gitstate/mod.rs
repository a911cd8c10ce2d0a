//! What a tool call may leave behind that would run later on the host —
//! the rule, in one place, for the launcher's scans before and after each
//! call (`launcher/protected.rs`, `launcher/quarantine.rs`) and for the
//! file bridge (`fsbridge.rs`), which refuses such writes as they happen.
//!
//! **Git state**, by rule and at any depth inside a writable root:
//! * a *git directory* is a directory named `.git`, or one that git would
//!   take config or hooks from: entries named `objects` and `refs` (a
//!   repository found by discovery, or the common directory a worktree's
//!   `commondir` names, which needs no `HEAD`), or `HEAD` and `commondir` (a
//!   worktree's). This is decided on names alone, never on file contents,
//!   so that rewriting a file (say an invalid `HEAD` made valid) cannot turn
//!   a directory into a repository behind a decision already taken;
//! * in every git directory (so also `.git/modules/**` and
//!   `.git/worktrees/*`, which are git directories themselves): `config`
//!   and `config.worktree` (what git obeys), `hooks` (what git runs),
//!   `commondir` (where a worktree's config and hooks are), `gitdir`;
//! * every `.git` that is not a directory (a gitfile or a symlink: it
//!   points git at a git directory);
//! * rebase and cherry-pick todo lists (`exec` lines run commands);
//! * what an *existing* config names: its `core.hooksPath` directory,
//!   included config files, and programs of executing keys, when they lie
//!   in a writable root (found by `launcher/protected.rs`).
//!
//! **Startup files** ([`STARTUP`]): shell, editor, terminal, agent and
//! package-manager files that run commands when a program starts.
//!
//! Existing entries stay read-only during a call. What is new or changed
//! after it is kept only when [`judge`] finds it *inert* — a config with
//! only safe keys (`config.rs`), a hooks directory holding only `*.sample`
//! files, a gitfile or `commondir` pointing inside a writable root, a todo
//! list without `exec` — and moved aside otherwise. Startup files are never
//! inert.

pub mod config;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::treewalk::Type;

/// Why an entry is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// A repository's `config` or `config.worktree`, or a file an existing config includes.
    GitConfig,
    /// A hooks directory: a git directory's `hooks`, or a `core.hooksPath`.
    GitHooks,
    /// A `.git` that is not a directory (gitfile or symlink).
    GitLink,
    /// A worktree's `commondir`.
    GitCommonDir,
    /// A worktree's `gitdir` (the path back to its checkout).
    GitDirBack,
    /// A rebase or cherry-pick todo list.
    GitTodo,
    /// A program an existing git config runs.
    GitProgram,
    /// A startup file of a shell, editor, terminal, agent or tool.
    Startup,
    /// A `denyWrite` path, or a secret path that must not appear.
    Deny,
}

impl Role {
    /// A few words for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Role::GitConfig => "git config",
            Role::GitHooks => "git hooks directory",
            Role::GitLink => "`.git` link",
            Role::GitCommonDir => "git commondir file",
            Role::GitDirBack => "git gitdir file",
            Role::GitTodo => "git rebase or cherry-pick state",
            Role::GitProgram => "program run by a git config",
            Role::Startup => "startup file",
            Role::Deny => "protected path",
        }
    }
}

/// Startup files, as a name or `directory/name`, protected wherever they
/// appear in a writable root (any directory may be someone's home or
/// project). A symlink at the first part of a two-part name (say
/// `.config`) is protected too: it could lead to a directory full of them.
pub const STARTUP: &[&str] = &[
    // Shells.
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".bash_aliases",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".zlogout",
    ".kshrc",
    ".mkshrc",
    ".cshrc",
    ".tcshrc",
    ".bashrc.d",
    ".bash_completion",
    ".config/fish",
    ".oh-my-zsh",
    ".config/starship.toml",
    ".inputrc",
    ".editrc",
    ".config/direnv",
    ".direnvrc",
    ".local/bin",
    // Version managers and toolchains that shell rc files source or put
    // first on PATH.
    ".cargo/env",
    ".cargo/bin",
    ".pyenv",
    ".nvm",
    ".rbenv",
    ".asdf",
    ".volta",
    ".sdkman",
    ".deno",
    ".bun",
    ".pam_environment",
    // Git's global configs (besides every repository's, see the rule).
    ".gitconfig",
    ".config/git",
    // Editors and terminals.
    ".vimrc",
    ".gvimrc",
    ".exrc",
    ".vim",
    ".config/nvim",
    ".emacs",
    ".emacs.d",
    ".config/emacs",
    ".config/helix",
    ".tmux.conf",
    ".config/tmux",
    ".screenrc",
    // Pagers, debuggers, REPLs and database shells that run commands from
    // their startup files (less: `LESSOPEN` from lesskey runs on `git log`).
    ".lesskey",
    ".less",
    ".config/lesskey",
    ".gdbinit",
    ".config/gdb",
    ".pdbrc",
    ".ipython",
    ".jupyter",
    ".julia",
    ".irbrc",
    ".Rprofile",
    ".psqlrc",
    ".sqliterc",
    ".my.cnf",
    ".selected_editor",
    ".vscode",
    ".idea",
    ".config/Code",
    // Agents: hooks and MCP servers run commands.
    ".mcp.json",
    ".claude/commands",
    ".claude/agents",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".cursor/mcp.json",
    ".codex/config.toml",
    ".gemini/settings.json",
    // OpenClaw loads plugins found in a workspace's `.openclaw/extensions`
    // into the gateway (host code) once their id is enabled or allowed.
    ".openclaw/extensions",
    // Package managers and tools: settings that run programs.
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".npm-init.js",
    ".cargo/config.toml",
    ".cargo/config",
    // rustup runs the toolchain a project or the home names (a `path`
    // toolchain can be any directory).
    "rust-toolchain.toml",
    "rust-toolchain",
    ".rustup",
    ".terraformrc",
    // Mercurial runs hooks from its configs, as git does.
    ".hgrc",
    ".hg/hgrc",
    ".ripgreprc",
    // Session and service managers.
    ".config/systemd",
    ".config/autostart",
    ".config/environment.d",
    ".xprofile",
    ".xsessionrc",
    ".xinitrc",
    ".xsession",
];

/// Startup places that matter only in a home directory (elsewhere the names
/// are ordinary: a project's `bin/`), relative to it: a directory's path and
/// the entry name in it (`*` in the path: any name starting with the part
/// before it; a name `*.pth`: any name with that ending).
pub const HOME_STARTUP: &[(&str, &str)] = &[
    // Debian's and Ubuntu's `.profile` put `~/bin` first on PATH.
    ("", "bin"),
    ("go", "bin"),
    (".local/share", "bash-completion"),
    (".local/share", "systemd"),
    // Gradle runs init scripts from `~/.gradle/init.d` on every build, sbt
    // its global plugins; in a project these are caches.
    ("", ".gradle"),
    ("", ".sbt"),
    // Python runs the `import` lines of every `.pth` file in the user's
    // site-packages at each start, and imports `usercustomize` from there.
    (".local/lib/python*/site-packages", "*.pth"),
    (".local/lib/python*/site-packages", "usercustomize.py"),
    (".local/lib/python*/site-packages", "usercustomize"),
    (".local/lib/python*/site-packages", "sitecustomize.py"),
];

/// Does `rel_dir` (a directory relative to a home) and `name` match a
/// [`HOME_STARTUP`] entry? A symlink on the way to one counts too (a
/// `.local/lib` symlink could lead to a directory full of them).
pub fn home_startup(rel_dir: &Path, name: &[u8]) -> bool {
    home_startup_typed(rel_dir, name, Type::File)
}

/// [`home_startup`] for an entry of type `ty`.
pub fn home_startup_typed(rel_dir: &Path, name: &[u8], ty: Type) -> bool {
    let mut comps: Vec<&[u8]> = rel_dir.components().map(|c| c.as_os_str().as_bytes()).collect();
    comps.push(name);
    let part_ok = |p: &str, c: &[u8]| match p.strip_prefix('*') {
        Some(suffix) => c.ends_with(suffix.as_bytes()),
        None => match p.strip_suffix('*') {
            Some(prefix) => c.starts_with(prefix.as_bytes()),
            None => p.as_bytes() == c,
        },
    };
    HOME_STARTUP.iter().any(|(dir, n)| {
        let mut pat: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        pat.push(n);
        let exact = pat.len() == comps.len() && pat.iter().zip(&comps).all(|(p, c)| part_ok(p, c));
        let symlink_on_the_way = ty == Type::Symlink && comps.len() < pat.len() && pat.iter().zip(&comps).all(|(p, c)| part_ok(p, c));
        exact || symlink_on_the_way
    })
}

/// Names that have a meaning inside a git directory.
const GIT_DIR_ROLES: &[(&str, Role)] = &[
    ("config", Role::GitConfig),
    ("config.worktree", Role::GitConfig),
    ("hooks", Role::GitHooks),
    ("commondir", Role::GitCommonDir),
    ("gitdir", Role::GitDirBack),
];

/// Is a directory named `base`, holding entries for which `has` is true, a
/// git directory? By names only (see the module header): named `.git`; or
/// `objects` and `refs` (a repository, or the common directory a worktree's
/// `commondir` names — git takes config and hooks from there without a
/// `HEAD`); or `HEAD` and `commondir` (a worktree's own).
pub fn is_git_dir(base: &[u8], has: impl Fn(&[u8]) -> bool) -> bool {
    base == b".git" || (has(b"objects") && has(b"refs")) || (has(b"HEAD") && has(b"commondir"))
}

/// The role of the entry `name` (of type `ty`) in a directory named `base`
/// that is (`git_dir`) or is not a git directory.
pub fn role_of(base: &[u8], git_dir: bool, name: &[u8], ty: Type) -> Option<Role> {
    if name == b".git" {
        return (ty != Type::Dir).then_some(Role::GitLink);
    }
    if git_dir {
        if let Some((_, r)) = GIT_DIR_ROLES.iter().find(|(n, _)| n.as_bytes() == name) {
            return Some(*r);
        }
    }
    // What `git rebase/cherry-pick --continue` obeys (todo lists, the merge strategy).
    if git_dir && matches!(name, b"rebase-merge" | b"rebase-apply" | b"sequencer") {
        return Some(Role::GitTodo);
    }
    startup_role(base, name, ty)
}

/// A startup name split once: (first part, second part if any).
type Parts = (&'static [u8], Option<&'static [u8]>);

/// The [`STARTUP`] names without a leading dot.
const DOTLESS_STARTUP: &[&[u8]] = &[b"rust-toolchain.toml", b"rust-toolchain"];

/// [`STARTUP`] split once into its parts.
fn startup_parts() -> &'static [Parts] {
    static PARTS: std::sync::OnceLock<Vec<Parts>> = std::sync::OnceLock::new();
    PARTS.get_or_init(|| {
        STARTUP
            .iter()
            .map(|s| match s.split_once('/') {
                Some((a, b)) => (a.as_bytes(), Some(b.as_bytes())),
                None => (s.as_bytes(), None),
            })
            .collect()
    })
}

fn startup_role(base: &[u8], name: &[u8], ty: Type) -> Option<Role> {
    // Startup names start with a dot but these; most entries do not.
    if name.first() != Some(&b'.') && base.first() != Some(&b'.') && !DOTLESS_STARTUP.contains(&name) {
        return None;
    }
    startup_parts()
        .iter()
        .any(|(first, second)| match second {
            None => *first == name,
            Some(second) => (*first == base && *second == name) || (*first == name && ty == Type::Symlink),
        })
        .then_some(Role::Startup)
}

/// Is a name (or `parent/name`) a first part of a two-part startup name?
pub fn is_startup_parent(name: &[u8]) -> bool {
    startup_parts().iter().any(|(f, s)| s.is_some() && *f == name)
}

/// A relative `core.hooksPath` from a global config, as the path it names
/// below whichever worktree git runs in, lexically normalised (`./.githooks`
/// is `.githooks`; `../hooks` leaves the worktree, so it is `hooks` — any
/// directory of that name, which covers the parent's). Components joined by
/// `/`; None when nothing is left.
pub fn hooks_suffix(v: &str) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in Path::new(v.trim()).components() {
        match c {
            Component::Normal(n) => parts.push(n.as_bytes()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join(&b'/'))
}

/// Is `name` in the directory `dir` a hooks directory by one of `suffixes`
/// (see [`hooks_suffix`]): `name` is the suffix's last component and `dir`
/// ends with the ones before it (`.github/hooks` marks `hooks` in any
/// `.github`, not every `.github`).
pub fn named_hooks(suffixes: &[Vec<u8>], dir: &Path, name: &[u8]) -> bool {
    suffixes.iter().any(|s| {
        let (head, last) = match s.iter().rposition(|&b| b == b'/') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (&s[..0], &s[..]),
        };
        last == name && dir.ends_with(Path::new(OsStr::from_bytes(head)))
    })
}

/// The first ancestor of `p` (itself included) that is a hooks directory
/// by one of `suffixes`.
pub fn under_named_hooks<'p>(suffixes: &[Vec<u8>], p: &'p Path) -> Option<&'p Path> {
    if suffixes.is_empty() {
        return None;
    }
    let mut found = None;
    for a in p.ancestors() {
        if let (Some(dir), Some(name)) = (a.parent(), a.file_name()) {
            if named_hooks(suffixes, dir, name.as_bytes()) {
                found = Some(a);
            }
        }
    }
    found
}

/// Where the writable roots are, for judging paths that entries point to.
pub struct Roots<'a> {
    pub writable: &'a [PathBuf],
    pub hidden: &'a [PathBuf],
}

impl Roots<'_> {
    /// `p` (absolute, or relative to `base`) resolves inside a writable
    /// root and outside every hidden path. Existing symlinks on the way are
    /// resolved; what does not exist yet is taken lexically.
    pub fn inside(&self, base: &Path, p: &str) -> bool {
        let p = p.trim();
        if p.is_empty() {
            return false;
        }
        let joined = if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let Some(r) = resolve_physical(&joined) else { return false };
        self.writable.iter().any(|w| r.starts_with(w)) && !self.hidden_at(&r)
    }

    /// Under a hidden path that no deeper writable root re-exposes (the
    /// workspace in a hidden `~/.openclaw` is not hidden), as in the mounts.
    pub fn hidden_at(&self, r: &Path) -> bool {
        self.hidden.iter().any(|h| r.starts_with(h) && !self.writable.iter().any(|w| w.starts_with(h) && w != h && r.starts_with(w)))
    }
}

/// Where `p` leads as the kernel resolves it: `..` after the symlink before
/// it, not lexically. The longest existing prefix is canonicalised; a rest
/// that does not exist yet is appended only if it has no `.` or `..` (else
/// None: where it would lead cannot be known now).
pub fn resolve_physical(p: &Path) -> Option<PathBuf> {
    let mut cur = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let mut out = c;
            for r in rest.iter().rev() {
                if r == ".." || r == "." {
                    return None;
                }
                out.push(r);
            }
            return Some(out);
        }
        let name = cur.file_name()?.to_os_string();
        rest.push(name);
        if !cur.pop() {
            return None;
        }
    }
}

/// Largest file [`judge`] reads; a bigger config or list is not inert.
const MAX_READ: u64 = 1 << 20;

fn read_small(p: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err("is not a regular file".into());
    }
    let mut v = Vec::new();
    f.take(MAX_READ + 1).read_to_end(&mut v).map_err(|e| format!("cannot be read ({e})"))?;
    if v.len() as u64 > MAX_READ {
        return Err("is larger than 1 MiB".into());
    }
    Ok(v)
}

/// The single path a `gitdir: <path>` file, `commondir` or `gitdir` holds.
fn one_path(text: &[u8], prefix: &str) -> Option<String> {
    let s = std::str::from_utf8(text).ok()?;
    let s = s.strip_prefix(prefix)?;
    // As git reads them: only line ends are dropped (a trailing space is
    // part of the path).
    let s = s.trim_end_matches(['\n', '\r']);
    (!s.is_empty() && !s.contains('\n') && !s.contains('\0')).then(|| s.to_string())
}

/// Is the entry at `path` (with `role`) inert? `Err` says why not, in words.
/// Reads nothing through a symlink.
pub fn judge(role: Role, path: &Path, roots: &Roots) -> Result<(), String> {
    let meta = path.symlink_metadata().map_err(|e| format!("cannot be examined ({e})"))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let is_link = meta.file_type().is_symlink();
    // A file with a second name can be changed later through that name,
    // which no scan watches.
    if meta.is_file() && std::os::unix::fs::MetadataExt::nlink(&meta) > 1 && !matches!(role, Role::Startup | Role::Deny | Role::GitProgram) {
        return Err("has another hard link, through which it could be changed later".into());
    }
    // git reads these as files: a directory by that name runs nothing.
    if meta.is_dir() && matches!(role, Role::GitConfig | Role::GitCommonDir | Role::GitDirBack) {
        return Ok(());
    }
    match role {
        Role::GitConfig => {
            if is_link {
                return Err("is a symlink".into());
            }
            let text = read_small(path)?;
            config::judge(&text, &|v: &str| roots.inside(dir, v))
        }
        Role::GitHooks => {
            if is_link {
                return Err("is a symlink".into());
            }
            if !meta.is_dir() {
                return Ok(()); // git runs nothing from a file named `hooks`
            }
            for e in std::fs::read_dir(path).map_err(|e| format!("cannot be listed ({e})"))? {
                let e = e.map_err(|e| format!("cannot be listed ({e})"))?;
                let name = e.file_name();
                let ft = e.file_type().map_err(|e| format!("cannot be examined ({e})"))?;
                if !ft.is_file() || !name.to_string_lossy().ends_with(".sample") {
                    return Err(format!("holds the hook {:?} (only *.sample files are inert)", name.to_string_lossy()));
                }
            }
            Ok(())
        }
        Role::GitLink => {
            if is_link {
                let t = std::fs::read_link(path).map_err(|e| format!("cannot be read ({e})"))?;
                return if roots.inside(dir, &t.to_string_lossy()) { Ok(()) } else { Err(format!("is a symlink to {} outside the writable roots", t.display())) };
            }
            if !meta.is_file() {
                return Err("is neither a directory, a file nor a symlink".into());
            }
            let text = read_small(path)?;
            match one_path(&text, "gitdir: ") {
                Some(t) if roots.inside(dir, &t) => Ok(()),
                Some(t) => Err(format!("points git at {t}, outside the writable roots")),
                None => Err("is not a `gitdir: <path>` file".into()),
            }
        }
        Role::GitCommonDir => {
            if is_link {
                return Err("is a symlink".into());
            }
            let text = read_small(path)?;
            match one_path(&text, "") {
                Some(t) if roots.inside(dir, &t) => Ok(()),
                Some(t) => Err(format!("points git at {t}, outside the writable roots")),
                None => Err("does not hold one path".into()),
            }
        }
        Role::GitDirBack => {
            if is_link {
                return Err("is a symlink".into());
            }
            let text = read_small(path)?;
            one_path(&text, "").map(|_| ()).ok_or_else(|| "does not hold one path".into())
        }
        Role::GitTodo => {
            if is_link {
                return Err("is a symlink".into());
            }
            if meta.is_dir() {
                return judge_sequencer_dir(path);
            }
            judge_todo(&read_small(path)?)
        }
        Role::GitProgram => Err("is run by an existing git config".into()),
        Role::Startup => Err("runs commands when a shell, editor, agent or tool starts".into()),
        Role::Deny => Err("may not be created or changed by the sandbox".into()),
    }
}

/// A todo list is inert without `exec` lines (`x`, `exec`).
fn judge_todo(text: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(text);
    match s.lines().find(|l| matches!(l.split_whitespace().next(), Some("x") | Some("exec"))) {
        Some(l) => Err(format!("has the command line {:?}", l.trim())),
        None => Ok(()),
    }
}

/// Merge strategies built into git (any other name runs `git-merge-<name>`).
const BUILTIN_STRATEGIES: &[&str] = &["ort", "recursive", "resolve", "octopus", "ours", "subtree"];

/// A rebase or cherry-pick state directory (`rebase-merge`, `rebase-apply`,
/// `sequencer`): what `--continue` will do. Inert when its todo lists have
/// no `exec` lines and every merge strategy it names is built into git.
fn judge_sequencer_dir(path: &Path) -> Result<(), String> {
    let rd = std::fs::read_dir(path).map_err(|e| format!("cannot be listed ({e})"))?;
    for e in rd {
        let e = e.map_err(|e| format!("cannot be listed ({e})"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        match name.as_str() {
            "git-rebase-todo" | "git-rebase-todo.backup" | "todo" => judge_todo(&read_small(&p)?).map_err(|w| format!("{name} {w}"))?,
            "strategy" => {
                let text = read_small(&p)?;
                let v = String::from_utf8_lossy(&text).trim().to_string();
                if !BUILTIN_STRATEGIES.contains(&v.as_str()) {
                    return Err(format!("names the merge strategy {v:?}, which runs a program"));
                }
            }
            "opts" => {
                let items = config::parse(&read_small(&p)?).map_err(|e| format!("opts is not a config git reads plainly ({e})"))?;
                if let Some(it) = items.iter().find(|it| it.key == "strategy" && !BUILTIN_STRATEGIES.contains(&it.value.as_deref().unwrap_or("").trim())) {
                    return Err(format!("names the merge strategy {:?}, which runs a program", it.value.as_deref().unwrap_or("")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refusal of the file bridge, which has no after-call check: why creating
/// or changing `rel` (below a writable root open as `root_fd`) would create
/// or change git or startup state, or `None`. `creating` is true when the
/// operation brings a new entry named like the last component into being
/// (write, create, mkdir, the target of a rename); `last` is the type of
/// what the last component is or will be (a symlink named `.cargo` or
/// `.claude` leads tools into another directory: a startup place).
pub fn bridge_refusal(root_fd: i32, rel: &Path, creating: bool, last_ty: Type) -> Option<String> {
    let comps: Vec<&[u8]> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes()),
            _ => None,
        })
        .collect();
    if comps.contains(&b".git".as_slice()) {
        return Some("a `.git` entry or something inside one (git runs and obeys what is there)".into());
    }
    let mut dir = PathBuf::new();
    for (i, name) in comps.iter().enumerate() {
        let base: &[u8] = dir.file_name().map(OsStrExt::as_bytes).unwrap_or(b"");
        let last = i + 1 == comps.len();
        let has = |n: &[u8]| exists_at(root_fd, &dir.join(OsStr::from_bytes(n)));
        let git_dir = is_git_dir(base, has);
        let ty = if last { last_ty } else { Type::Dir };
        if let Some(role) = role_of(base, git_dir, name, ty).or_else(|| (!last && is_startup_parent(name) && is_symlink_at(root_fd, &dir.join(OsStr::from_bytes(name)))).then_some(Role::Startup)) {
            return Some(format!("a {} ({})", role.describe(), role_reason(role)));
        }
        if last && creating && !git_dir && matches!(*name, b"HEAD" | b"objects" | b"refs" | b"commondir") {
            let would = is_git_dir(base, |n| n == *name || has(n));
            if would {
                return Some(format!("it would make {} a git repository", if dir.as_os_str().is_empty() { ".".to_string() } else { dir.display().to_string() }));
            }
        }
        dir.push(OsStr::from_bytes(name));
    }
    None
}

fn role_reason(role: Role) -> &'static str {
    match role {
        Role::GitConfig | Role::GitCommonDir | Role::GitDirBack | Role::GitLink => "git obeys it",
        Role::GitHooks | Role::GitProgram | Role::GitTodo => "git runs it",
        Role::Startup => "it runs commands when a shell, editor, agent or tool starts",
        Role::Deny => "the policy protects it",
    }
}

fn lstat_at(root_fd: i32, rel: &Path) -> Option<libc::stat> {
    let p = if rel.as_os_str().is_empty() { std::ffi::CString::new(".").ok()? } else { std::ffi::CString::new(rel.as_os_str().as_bytes()).ok()? };
    // SAFETY: fstatat into a zeroed struct; the path is below our root fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatat(root_fd, p.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0).then_some(st)
}

fn exists_at(root_fd: i32, rel: &Path) -> bool {
    lstat_at(root_fd, rel).is_some()
}

fn is_symlink_at(root_fd: i32, rel: &Path) -> bool {
    lstat_at(root_fd, rel).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_dirs_by_names() {
        let has = |set: &'static [&'static str]| move |n: &[u8]| set.iter().any(|s| s.as_bytes() == n);
        assert!(is_git_dir(b".git", has(&[])));
        assert!(is_git_dir(b"x.git", has(&["HEAD", "objects", "refs"])));
        assert!(is_git_dir(b"wt", has(&["HEAD", "commondir"])));
        assert!(!is_git_dir(b"x", has(&["HEAD", "objects"])));
        // A worktree's common directory needs no HEAD: git reads its config.
        assert!(is_git_dir(b"common", has(&["objects", "refs", "config"])));
        assert!(!is_git_dir(b"x", has(&["objects", "config"])));
    }

    #[test]
    fn physical_resolution_takes_dotdot_after_the_symlink() {
        let d = tempfile::tempdir().unwrap();
        let w = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(w.join("ws/repo")).unwrap();
        std::fs::create_dir_all(w.join("out/x")).unwrap();
        std::os::unix::fs::symlink(w.join("out/x"), w.join("ws/lnk")).unwrap();
        assert_eq!(resolve_physical(&w.join("ws/lnk/../repo")), Some(w.join("out/repo")));
        assert_eq!(resolve_physical(&w.join("ws/repo/new/file")), Some(w.join("ws/repo/new/file")));
        assert_eq!(resolve_physical(&w.join("ws/missing/../repo")), None);
        let roots = Roots { writable: &[w.join("ws")], hidden: &[] };
        assert!(!roots.inside(&w.join("ws"), "lnk/../repo"), "lexical `..` would say inside");
        assert!(roots.inside(&w.join("ws"), "repo/.git"));
    }

    #[test]
    fn rebase_and_sequencer_directories_are_judged_by_what_they_hold() {
        let d = tempfile::tempdir().unwrap();
        let w = std::fs::canonicalize(d.path()).unwrap();
        let roots = Roots { writable: std::slice::from_ref(&w), hidden: &[] };
        for dir in ["rebase-merge", "sequencer", "rebase-apply"] {
            let p = w.join(dir);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("git-rebase-todo"), "pick abc c1\n").unwrap();
            std::fs::write(p.join("strategy"), "ort\n").unwrap();
            assert_eq!(judge(Role::GitTodo, &p, &roots), Ok(()), "{dir}");
            std::fs::write(p.join("strategy"), "/x\n").unwrap();
            assert!(judge(Role::GitTodo, &p, &roots).is_err(), "{dir}: a strategy that runs a program");
            std::fs::write(p.join("strategy"), "ort\n").unwrap();
            std::fs::write(p.join("todo"), "pick abc\nexec touch /tmp/x\n").unwrap();
            assert!(judge(Role::GitTodo, &p, &roots).is_err(), "{dir}: an exec line");
        }
        // The same names as plain files (git reads the todo of `rebase -i` from a directory only).
        std::fs::write(w.join("todo-file"), "x echo\n").unwrap();
        assert!(judge(Role::GitTodo, &w.join("todo-file"), &roots).is_err());
    }

    #[test]
    fn home_relative_startup_places() {
        assert!(home_startup(Path::new(""), b"bin"));
        assert!(home_startup(Path::new("go"), b"bin"));
        assert!(home_startup(Path::new(".local/lib/python3.11/site-packages"), b"zz.pth"));
        assert!(!home_startup(Path::new(".local/lib/python3.11/site-packages"), b"zz.py"));
        assert!(!home_startup(Path::new("proj"), b"bin"));
        assert!(home_startup(Path::new(".local/share"), b"systemd"));
        assert!(home_startup(Path::new(".local/lib/python3.11/site-packages"), b"usercustomize.py"));
        assert!(home_startup_typed(Path::new(".local"), b"lib", Type::Symlink));
        assert!(home_startup_typed(Path::new(""), b"go", Type::Symlink));
        assert!(!home_startup_typed(Path::new(""), b"go", Type::Dir));
        assert!(!home_startup_typed(Path::new(""), b"proj", Type::Symlink));
    }

    #[test]
    fn every_startup_name_starts_with_a_dot_or_is_listed_without() {
        // `startup_role` skips names without a leading dot on this promise.
        for s in STARTUP {
            assert!(s.starts_with('.') || DOTLESS_STARTUP.contains(&s.as_bytes()), "{s}");
        }
        assert_eq!(role_of(b"proj", false, b"rust-toolchain.toml", Type::File), Some(Role::Startup));
    }

    #[test]
    fn roles() {
        assert_eq!(role_of(b".git", true, b"config", Type::File), Some(Role::GitConfig));
        assert_eq!(role_of(b"sub", true, b"hooks", Type::Dir), Some(Role::GitHooks));
        assert_eq!(role_of(b"sub", false, b"config", Type::File), None);
        assert_eq!(role_of(b"x", false, b".git", Type::File), Some(Role::GitLink));
        assert_eq!(role_of(b"x", false, b".git", Type::Dir), None);
        assert_eq!(role_of(b".claude", false, b"settings.json", Type::File), Some(Role::Startup));
        assert_eq!(role_of(b"x", false, b"settings.json", Type::File), None);
        assert_eq!(role_of(b"x", false, b".config", Type::Symlink), Some(Role::Startup));
        assert_eq!(role_of(b"x", false, b".config", Type::Dir), None);
        assert_eq!(role_of(b".local", false, b"bin", Type::Dir), Some(Role::Startup));
        assert_eq!(role_of(b".git", true, b"rebase-merge", Type::Dir), Some(Role::GitTodo));
        assert_eq!(role_of(b"x", false, b"rebase-merge", Type::Dir), None);
    }
}

#[cfg(test)]
mod hooks_suffix_tests {
    use super::*;

    #[test]
    fn relative_hooks_paths_become_suffixes() {
        let s = |v: &str| hooks_suffix(v).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(s("./.githooks").as_deref(), Some(".githooks"));
        assert_eq!(s("../hooks").as_deref(), Some("hooks"));
        assert_eq!(s(".github/hooks").as_deref(), Some(".github/hooks"));
        assert_eq!(s("a/../b/./c").as_deref(), Some("b/c"));
        assert_eq!(s("."), None);
        assert_eq!(s(".."), None);
    }

    #[test]
    fn a_suffix_marks_its_last_name_below_the_ones_before_it() {
        let n = vec![b".github/hooks".to_vec(), b".githooks".to_vec()];
        assert!(named_hooks(&n, Path::new("/ws/repo/.github"), b"hooks"));
        assert!(!named_hooks(&n, Path::new("/ws/repo/.github"), b"workflows"));
        assert!(!named_hooks(&n, Path::new("/ws/repo"), b"hooks"));
        assert!(!named_hooks(&n, Path::new("/ws/repo/x.github"), b"hooks"));
        assert!(named_hooks(&n, Path::new("/ws/anything"), b".githooks"));
        assert_eq!(under_named_hooks(&n, Path::new("/ws/r/.github/hooks/pre-commit")), Some(Path::new("/ws/r/.github/hooks")));
        assert_eq!(under_named_hooks(&n, Path::new("/ws/r/.github/workflows/ci.yml")), None);
        assert_eq!(under_named_hooks(&n, Path::new("/ws/.githooks/a/.github/hooks")), Some(Path::new("/ws/.githooks")));
    }
}
