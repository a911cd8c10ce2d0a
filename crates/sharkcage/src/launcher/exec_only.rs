//! `filesystem.execOnly`: the only files a call may start (`execve`).
//!
//! Enforced by Landlock's `EXECUTE` right, which the kernel checks on the
//! program and on what the kernel itself opens to start it: an ELF file's
//! program interpreter (`PT_INTERP`, the dynamic loader) and a script's
//! `#!` interpreter. So each listed file brings those two along (one level:
//! `#!/usr/bin/env python3` brings `env`, not `python3`, which must be
//! listed). Shared libraries are mapped, not executed: Landlock does not
//! check them, and they need no entry. A directory lets everything below it
//! run. Every path is resolved (symlinks followed) when the call is
//! planned; a listed path that does not exist is an error, never a silently
//! narrower or wider list.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest `#!` line read.
const SHEBANG_MAX: usize = 256;

/// The files and directories a call may execute: each listed path, its
/// ELF interpreter and its `#!` interpreter, canonical, without duplicates.
pub fn resolve(listed: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for (i, l) in listed.iter().enumerate() {
        let c = std::fs::canonicalize(l).map_err(|e| format!("filesystem.execOnly[{i}] {l}: {e}"))?;
        if c.is_file() {
            for extra in interpreters(&c) {
                if let Ok(e) = std::fs::canonicalize(&extra) {
                    if let Some(loader) = elf_interpreter(&e) {
                        if let Ok(l) = std::fs::canonicalize(loader) {
                            push(l);
                        }
                    }
                    push(e);
                }
            }
        }
        push(c);
    }
    Ok(out)
}

/// What the kernel opens to start `file`: its ELF interpreter, or its `#!`
/// interpreter.
fn interpreters(file: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(i) = elf_interpreter(file) {
        v.push(i);
    }
    if let Some(i) = shebang(file) {
        v.push(i);
    }
    v
}

/// The `#!` interpreter of a script (its first word).
pub fn shebang(file: &Path) -> Option<PathBuf> {
    let mut buf = [0u8; SHEBANG_MAX];
    let n = read_prefix(file, &mut buf)?;
    let line = buf[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let first = text.split_ascii_whitespace().next()?;
    first.starts_with('/').then(|| PathBuf::from(first))
}

/// The argument of an `env` `#!` line (`#!/usr/bin/env python3` → `python3`).
pub fn shebang_env_target(file: &Path) -> Option<String> {
    let mut buf = [0u8; SHEBANG_MAX];
    let n = read_prefix(file, &mut buf)?;
    let line = buf[..n].strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
    let mut words = std::str::from_utf8(line).ok()?.split_ascii_whitespace();
    let interp = words.next()?;
    if Path::new(interp).file_name()? != "env" {
        return None;
    }
    words.find(|w| !w.starts_with('-')).map(str::to_string)
}

/// `PT_INTERP` of a little-endian ELF file (32 or 64 bit).
pub fn elf_interpreter(file: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(file).ok()?;
    let mut h = [0u8; 64];
    f.read_exact(&mut h).ok()?;
    if &h[..4] != b"\x7fELF" || h[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let wide = match h[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let (phoff, phentsize, phnum) = if wide { (u64_at(&h, 0x20), u16_at(&h, 0x36), u16_at(&h, 0x38)) } else { (u32_at(&h, 0x1c), u16_at(&h, 0x2a), u16_at(&h, 0x2c)) };
    if phnum > 512 || phentsize < if wide { 56 } else { 32 } || phentsize > 256 {
        return None;
    }
    use std::io::{Seek, SeekFrom};
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut ph).ok()?;
    for i in 0..phnum as usize {
        let p = &ph[i * phentsize as usize..];
        if u32_at(p, 0) != 3 {
            continue; // not PT_INTERP
        }
        let (off, size) = if wide { (u64_at(p, 8), u64_at(p, 32)) } else { (u32_at(p, 4), u32_at(p, 16)) };
        if size == 0 || size > 4096 {
            return None;
        }
        let mut s = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut s).ok()?;
        let s = s.split(|&b| b == 0).next()?;
        return std::str::from_utf8(s).ok().filter(|s| s.starts_with('/')).map(PathBuf::from);
    }
    None
}

fn read_prefix(file: &Path, buf: &mut [u8]) -> Option<usize> {
    let mut f = std::fs::File::open(file).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_brings_its_loader_and_a_script_its_interpreter() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let loader = elf_interpreter(&sh).expect("/bin/sh is a dynamic ELF program");
        let r = resolve(&["/bin/sh".into()]).unwrap();
        assert!(r.contains(&sh));
        assert!(r.contains(&std::fs::canonicalize(loader).unwrap()));
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("run");
        std::fs::write(&s, "#!/usr/bin/env python3\nprint(1)\n").unwrap();
        assert_eq!(shebang(&s), Some(PathBuf::from("/usr/bin/env")));
        assert_eq!(shebang_env_target(&s).as_deref(), Some("python3"));
        let r = resolve(&[s.display().to_string()]).unwrap();
        assert!(r.contains(&std::fs::canonicalize("/usr/bin/env").unwrap()));
        assert!(resolve(&["/nonexistent/x".into()]).unwrap_err().contains("execOnly[0]"));
    }
}
