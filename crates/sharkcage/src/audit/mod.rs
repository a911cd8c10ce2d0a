//! The tamper-evident audit log: what the AI did, and what was blocked.
//!
//! * [`record`]: one JSON line per event, its canonical form and hash;
//!   records form a chain (`prev` = the previous record's `hash`), keyed
//!   with HMAC-SHA256 by default so that nobody without the key can rebuild
//!   a valid chain.
//! * [`writer`]: one writer per directory (a lock file), fed through a
//!   channel; group commit; crash recovery; rotation; signed checkpoints.
//! * [`caps`]: every string of a record capped (plus a digest of the whole)
//!   before it is chained.
//! * [`aggregate`]: floods of refusals counted in summary records, within
//!   budgets per sandbox and per session.
//! * [`retention`]: which old segments rotation may delete; history newer
//!   than the last exported checkpoint is kept, or dropped only loudly.
//! * [`verify`]: recomputes every hash and link, checks checkpoints, and
//!   names the first damage (`edited`, `deleted`, `inserted`, `reordered`,
//!   `truncated`, `bad-signature`, `torn-tail`, `checkpoint-rotated-away`,
//!   `exported-checkpoint-missing`).
//! * [`query`]: filtered reading for `sc audit` and the addon.
//! * [`display`]: record text made safe for a terminal.
//! * [`redact`]: secrets out of parameters before anything is written.
//! * [`store`]: the directory's files and keys.
//! * [`events`]: records made from finished calls and proxy decisions.
//!
//! The directory is sharkcage's state directory's `audit/` (hidden from
//! every sandbox), or `sc exec --audit-dir DIR`.

pub mod aggregate;
pub mod caps;
pub mod display;
pub mod events;
pub mod query;
pub mod record;
pub mod redact;
pub mod retention;
pub mod store;
pub mod verify;
pub mod writer;

use std::path::PathBuf;

pub use record::Record;
pub use verify::{Checkpoint, Damage, DamageKind, VerifyReport};
pub use writer::{Audit, AuditConfig, Durability};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not part of an audit log (unexpected file in the audit directory)")]
    Foreign(PathBuf),
    #[error("{0}: corrupt: {1}")]
    Corrupt(PathBuf, String),
    #[error("{0}: no audit log here")]
    NoLog(PathBuf),
    #[error("{0}: the audit log is in use by another writer ({1})")]
    InUse(PathBuf, String),
    #[error("refusing to append: the chain's head does not verify: {} at seq {} in {}: {}", .0.kind.name(), .0.seq, .0.segment, .0.detail)]
    Broken(Damage),
    #[error("the audit writer failed: {0}")]
    Write(String),
    #[error("the audit writer is closed")]
    Closed,
    #[error("{0}")]
    Other(String),
}

/// The default audit directory: `<state dir>/audit`.
pub fn default_dir() -> Option<PathBuf> {
    crate::fileio::state_dir().map(|d| d.join("audit"))
}
