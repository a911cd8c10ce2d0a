//! The services sharkcage holds for skills (`sc config add-service`): the
//! `home.*`, `data.*`, `fleet.*`, `notify.*` and `cost.*` capabilities reach
//! a configured service's endpoint, with its credentials injected into the
//! skill's sandbox only.
//!
//! Stored in `<state>/services.json` beside the grant store: mode 0600 in the
//! state directory (0700, hidden from every sandbox), never in
//! `openclaw.json`. Read strictly (a file that does not parse is an error
//! naming `line:column`, never "no services"), written whole and atomically
//! under the grant store's lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::capabilities::Service;
use super::grants::GrantError;
use crate::fileio;

pub const FILE: &str = "services.json";
pub const VERSION: u32 = 1;
const MAX_BYTES: u64 = 1024 * 1024;

/// One service as stored: what the capability mapping needs, plus the
/// credential values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StoredService {
    pub name: String,
    pub family: String,
    pub endpoint: String,
    /// Variable name → value, injected into the sandbox of a skill granted
    /// a capability this service serves.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
}

impl StoredService {
    pub fn service(&self) -> Service {
        Service { name: self.name.clone(), family: self.family.clone(), endpoint: self.endpoint.clone(), credential_env: self.credentials.keys().cloned().collect() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub version: u32,
    #[serde(default)]
    pub services: Vec<StoredService>,
}

impl Default for Services {
    fn default() -> Self {
        Services { version: VERSION, services: vec![] }
    }
}

impl Services {
    /// What the capability mapping sees.
    pub fn list(&self) -> Vec<Service> {
        self.services.iter().map(StoredService::service).collect()
    }

    /// The credential values of service `name`.
    pub fn credentials(&self, name: &str) -> BTreeMap<String, String> {
        self.services.iter().find(|s| s.name == name).map(|s| s.credentials.clone()).unwrap_or_default()
    }

    /// Every service valid, names unique.
    pub fn check(&self) -> Result<(), String> {
        for (i, s) in self.services.iter().enumerate() {
            super::grants::valid_skill_name(&s.name).map_err(|e| format!("services[{i}]: {}", e.replace("skill name", "service name")))?;
            if self.services[..i].iter().any(|o| o.name == s.name) {
                return Err(format!("services[{i}]: service {:?} is listed twice", s.name));
            }
            super::capabilities::check_service(&s.service()).map_err(|e| format!("services[{i}]: {e}"))?;
        }
        Ok(())
    }
}

/// The services file in a directory (normally the state directory).
#[derive(Debug, Clone)]
pub struct ServiceStore {
    dir: PathBuf,
}

impl ServiceStore {
    pub fn at(dir: impl Into<PathBuf>) -> ServiceStore {
        ServiceStore { dir: dir.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The services now; no file is no services.
    pub fn load(&self) -> Result<Services, GrantError> {
        let path = self.path();
        let text = match read_private(&path)? {
            Some(t) => t,
            None => return Ok(Services::default()),
        };
        parse(&text, &path.display().to_string())
    }

    /// Load, change, check and save under the grant store's lock.
    pub fn update<T>(&self, f: impl FnOnce(&mut Services) -> Result<T, String>) -> Result<T, GrantError> {
        super::grants::GrantStore::at(&self.dir).locked(|| {
            let mut s = self.load()?;
            let out = f(&mut s).map_err(GrantError::Invalid)?;
            s.check().map_err(GrantError::Invalid)?;
            let mut text = serde_json::to_string_pretty(&s).map_err(|e| GrantError::Invalid(e.to_string()))?;
            text.push('\n');
            let path = self.path();
            fileio::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| GrantError::Write { path: path.display().to_string(), source: e })?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| GrantError::Write { path: path.display().to_string(), source: e })?;
            Ok(out)
        })
    }
}

fn read_private(path: &Path) -> Result<Option<String>, GrantError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display().to_string();
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GrantError::Read { path: name, source: e }),
    };
    let mut text = String::new();
    f.take(MAX_BYTES + 1).read_to_string(&mut text).map_err(|e| GrantError::Read { path: name.clone(), source: e })?;
    if text.len() as u64 > MAX_BYTES {
        return Err(GrantError::TooLarge { path: name });
    }
    Ok(Some(text))
}

/// Parse the file's text strictly.
pub fn parse(text: &str, name: &str) -> Result<Services, GrantError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let s: Services = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        GrantError::Corrupt { path: name.to_string(), line: inner.line(), column: inner.column(), message: if at.is_empty() || at == "." { msg } else { format!("{at}: {msg}") } }
    })?;
    if s.version != VERSION {
        return Err(GrantError::Version { path: name.to_string(), found: s.version });
    }
    s.check().map_err(|m| GrantError::Corrupt { path: name.to_string(), line: 0, column: 0, message: m })?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn svc(name: &str) -> StoredService {
        StoredService { name: name.into(), family: "home".into(), endpoint: "ha.lan:8123".into(), credentials: BTreeMap::from([("HA_TOKEN".into(), "t0k3n".into())]) }
    }

    #[test]
    fn stored_0600_strict_and_checked() {
        let t = tempfile::tempdir().unwrap();
        let st = ServiceStore::at(t.path());
        assert!(st.load().unwrap().services.is_empty());
        st.update(|s| {
            s.services.push(svc("ha"));
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::metadata(st.path()).unwrap().permissions().mode() & 0o777, 0o600);
        let l = st.load().unwrap();
        assert_eq!(l.list()[0].credential_env, vec!["HA_TOKEN".to_string()]);
        assert_eq!(l.credentials("ha")["HA_TOKEN"], "t0k3n");
        // A duplicate or a bad endpoint changes nothing.
        assert!(st.update(|s| { s.services.push(svc("ha")); Ok(()) }).is_err());
        assert!(st.update(|s| { let mut b = svc("b"); b.endpoint = "ha.lan".into(); s.services.push(b); Ok(()) }).is_err());
        assert_eq!(st.load().unwrap().services.len(), 1);
        // A corrupt file is an error naming the position, never "no services".
        std::fs::write(st.path(), "{\"version\": 1, \"services\": [{\"name\": \"x\",}]}").unwrap();
        let e = st.load().unwrap_err().to_string();
        assert!(e.contains("services.json") && e.contains(":1:"), "{e}");
    }
}
