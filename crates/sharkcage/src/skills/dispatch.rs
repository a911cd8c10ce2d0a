//! The predecessor's skills (`plugin.json` with `main` and `tools[]`) run
//! through one declared OpenClaw tool, `sharkcage_run {skill, tool, args}`
//! (OpenClaw's tool names are static): the skill is named, not attributed,
//! and what runs is always that skill's own entry, under that skill's
//! grants, so naming another skill gains nothing. This module finds the
//! entry and the argv that starts it; the request goes on stdin as JSON
//! (`{tool, args}`) and the result is read from stdout.

use std::path::{Path, PathBuf};

use super::attribution::SYSTEM_BIN_DIRS;
use super::call::{self, Inputs, Judgement};
use super::manifest::{self, Legacy};

/// How to start one legacy skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry file (real path, inside the skill's directory).
    pub file: PathBuf,
    /// The program started (the interpreter, or the entry itself).
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub tools: Vec<String>,
}

/// The entry of the legacy skill in `dir` and the argv that runs it.
pub fn entry(dir: &Path, legacy: &Legacy) -> Result<Entry, String> {
    let main = Path::new(&legacy.main);
    if main.is_absolute() || main.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("plugin.json main {:?}: must be a path inside the skill, without `..`", legacy.main));
    }
    let real_dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = std::fs::canonicalize(dir.join(main)).map_err(|e| format!("plugin.json main {:?}: {e}", legacy.main))?;
    if !file.starts_with(&real_dir) || !file.is_file() {
        return Err(format!("plugin.json main {:?}: not a regular file inside the skill", legacy.main));
    }
    let runtime = legacy.runtime.as_deref().map(str::to_ascii_lowercase);
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let interpreter = match (runtime.as_deref(), ext) {
        (Some("node" | "nodejs" | "deno" | "bun"), _) | (None, "js" | "mjs" | "cjs") => Some("node"),
        (Some("python" | "python3"), _) | (None, "py") => Some("python3"),
        (Some("bash"), _) => Some("bash"),
        (Some("sh" | "shell"), _) | (None, "sh") => Some("sh"),
        (Some("binary" | "exec" | "native"), _) | (None, _) => None,
        (Some(other), _) => return Err(format!("plugin.json runtime {other:?}: not one sharkcage can start (node, python, sh, bash, binary)")),
    };
    let file_s = file.display().to_string();
    let (program, argv) = match interpreter {
        Some(name) => {
            let p = SYSTEM_BIN_DIRS.iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file()).ok_or_else(|| format!("{name} is not installed in {}", SYSTEM_BIN_DIRS.join(", ")))?;
            (p.clone(), vec![p.display().to_string(), file_s])
        }
        None => (file.clone(), vec![file_s]),
    };
    Ok(Entry { file, program, argv, tools: legacy.tools.clone() })
}

/// Judge a `sharkcage_run` call of `skill`'s `tool` (steps 2–5 of
/// [`call`]'s header: the skill is named, so there is no attribution).
pub fn judge(skill: &str, tool: &str, inputs: &Inputs) -> Result<(Judgement, Entry), String> {
    let Some(known) = inputs.skills.iter().find(|s| s.name == skill) else {
        return Err(format!("no skill named {skill:?} (sharkcage_run runs skills with a plugin.json)"));
    };
    let decl = manifest::load_dir(&known.dir).map_err(|e| e.to_string())?;
    let Some(legacy) = decl.and_then(|d| d.legacy) else {
        return Err(format!("skill {skill:?} has no plugin.json with a main entry; run its scripts with exec"));
    };
    if !legacy.tools.iter().any(|t| t == tool) {
        return Err(format!("skill {skill:?} has no tool {tool:?} (it has: {})", legacy.tools.join(", ")));
    }
    let e = entry(&known.dir, &legacy)?;
    let mut c = call::judge_skill(known, e.file.clone(), inputs);
    c.program = e.program.clone();
    c.argv = e.argv.clone();
    c.code_at = e.argv.len() - 1;
    Ok((Judgement::Skill(Box::new(c)), e))
}

/// The string a one-time approval of a `sharkcage_run` call is bound to.
pub fn binding(skill: &str, tool: &str, args: &serde_json::Value) -> String {
    format!("sharkcage_run {skill} {tool} {args}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(main: &str, runtime: Option<&str>) -> Legacy {
        Legacy { version: None, main: main.into(), tools: vec!["t".into()], runtime: runtime.map(Into::into), description: None }
    }

    #[test]
    fn the_entry_is_the_skills_own_file_run_by_its_interpreter() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("main.py"), "print(1)").unwrap();
        let e = entry(t.path(), &legacy("main.py", None)).unwrap();
        assert!(e.argv[0].ends_with("/python3") && e.argv[1].ends_with("/main.py"), "{e:?}");
        assert!(entry(t.path(), &legacy("../x.py", None)).unwrap_err().contains("without `..`"));
        assert!(entry(t.path(), &legacy("/etc/passwd", None)).is_err());
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("link.py")).unwrap();
        assert!(entry(t.path(), &legacy("link.py", None)).unwrap_err().contains("inside the skill"));
        assert!(entry(t.path(), &legacy("main.py", Some("cobol"))).unwrap_err().contains("runtime"));
    }
}
