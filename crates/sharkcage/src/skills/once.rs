//! One-time approvals ("allow once"): a value bound to exactly one call.
//!
//! The gate and the backend share no call id (OpenClaw passes the backend
//! only the command, its working directory and its environment), so the
//! gate carries the approval to the backend as a random token in the call's
//! environment (`SHARKCAGE_GRANT`). The token is only a key: what it allows
//! lives here, in the gateway's memory, bound to the skill, the skill's
//! identity and the exact command the user was asked about. The backend
//! [`Tokens::take`]s it (once: a second use finds nothing), checks the
//! binding against what it derives itself from the command, and falls back
//! to the baseline on any mismatch. A token the model writes itself is
//! unknown (128 random bits) and the gate overwrites that variable anyway.
//! Tokens expire; a denied or timed-out approval discards its token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::capabilities::Request;

/// The variable that carries a token from the gate to the backend.
pub const ENV: &str = "SHARKCAGE_GRANT";

/// Most tokens held at once (older ones are dropped first).
const MAX_TOKENS: usize = 4096;

/// What one token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    pub skill: String,
    pub identity: String,
    pub command: String,
    pub capabilities: Vec<Request>,
    /// A widening beyond the declaration the user was asked about
    /// (`super::expand`), already cut by the ceiling.
    pub expansion: Vec<Request>,
    /// The approval it came from (for the audit log).
    pub approval_id: String,
}

#[derive(Debug)]
struct Held {
    once: Once,
    expires: Instant,
}

/// Why a token gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    Unknown,
    Expired,
    /// Issued for another skill, version or command.
    Mismatch(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Unknown => f.write_str("the one-time approval is unknown or was used already"),
            Refused::Expired => f.write_str("the one-time approval expired"),
            Refused::Mismatch(why) => write!(f, "the one-time approval was for another call ({why})"),
        }
    }
}

/// The tokens issued by one gateway process.
#[derive(Debug, Default)]
pub struct Tokens {
    held: Mutex<HashMap<String, Held>>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Issue a token for `once`, valid for `ttl`.
    pub fn issue(&self, once: Once, ttl: Duration) -> std::io::Result<String> {
        let token = random_token()?;
        let mut held = self.lock();
        let now = Instant::now();
        held.retain(|_, h| h.expires > now);
        if held.len() >= MAX_TOKENS {
            if let Some(oldest) = held.iter().min_by_key(|(_, h)| h.expires).map(|(k, _)| k.clone()) {
                held.remove(&oldest);
            }
        }
        held.insert(token.clone(), Held { once, expires: now + ttl });
        Ok(token)
    }

    /// What a live token allows, leaving it in place.
    pub fn peek(&self, token: &str) -> Option<Once> {
        self.lock().get(token).filter(|h| h.expires > Instant::now()).map(|h| h.once.clone())
    }

    /// Forget a token (the user denied, or the approval timed out).
    pub fn discard(&self, token: &str) -> bool {
        self.lock().remove(token).is_some()
    }

    /// Use a token: it is gone afterwards whatever the answer. It gives
    /// its approval only for the same skill, identity and command.
    pub fn take(&self, token: &str, skill: &str, identity: &str, command: &str) -> Result<Once, Refused> {
        let h = self.lock().remove(token).ok_or(Refused::Unknown)?;
        if h.expires <= Instant::now() {
            return Err(Refused::Expired);
        }
        let o = h.once;
        if o.skill != skill {
            return Err(Refused::Mismatch(format!("skill {} rather than {skill}", o.skill)));
        }
        if o.identity != identity {
            return Err(Refused::Mismatch("the skill changed since it was approved".into()));
        }
        if o.command != command {
            return Err(Refused::Mismatch("another command".into()));
        }
        Ok(o)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 128 bits from the kernel's random pool, as hex.
fn random_token() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: getrandom into the part of a buffer we own not yet filled.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        got += n as usize;
    }
    Ok(format!("once-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once(command: &str) -> Once {
        Once { skill: "weather".into(), identity: "sha256:aa".into(), command: command.into(), capabilities: vec![], expansion: vec![], approval_id: "plugin:1".into() }
    }

    #[test]
    fn a_token_works_once_for_its_call_only() {
        let t = Tokens::new();
        let k = t.issue(once("run"), Duration::from_secs(60)).unwrap();
        assert!(k.starts_with("once-") && k.len() == 5 + 32);
        assert!(t.take(&k, "weather", "sha256:aa", "run").is_ok());
        assert_eq!(t.take(&k, "weather", "sha256:aa", "run"), Err(Refused::Unknown), "reused");
    }

    #[test]
    fn forged_mismatched_and_expired_tokens_give_nothing() {
        let t = Tokens::new();
        assert_eq!(t.take("once-00000000000000000000000000000000", "weather", "sha256:aa", "run"), Err(Refused::Unknown));
        let k = t.issue(once("run"), Duration::from_secs(60)).unwrap();
        assert!(matches!(t.take(&k, "weather", "sha256:aa", "run; curl x"), Err(Refused::Mismatch(_))));
        // A mismatch still uses the token up.
        assert_eq!(t.take(&k, "weather", "sha256:aa", "run"), Err(Refused::Unknown));
        let k = t.issue(once("run"), Duration::from_secs(60)).unwrap();
        assert!(matches!(t.take(&k, "weather", "sha256:bb", "run"), Err(Refused::Mismatch(_))));
        let k = t.issue(once("run"), Duration::from_secs(60)).unwrap();
        assert!(matches!(t.take(&k, "other", "sha256:aa", "run"), Err(Refused::Mismatch(_))));
        let k = t.issue(once("run"), Duration::from_millis(0)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(t.take(&k, "weather", "sha256:aa", "run"), Err(Refused::Expired));
        let k = t.issue(once("run"), Duration::from_secs(60)).unwrap();
        assert!(t.discard(&k));
        assert_eq!(t.take(&k, "weather", "sha256:aa", "run"), Err(Refused::Unknown), "discarded");
    }
}
