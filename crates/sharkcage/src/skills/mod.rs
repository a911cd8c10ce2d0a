//! Skills: what a skill declares it needs, what each capability grants in
//! the sandbox policy, which exact version of a skill a grant is for, and
//! which skill a tool call belongs to.
//!
//! * [`manifest`]: `SKILL.md` frontmatter `metadata.sharkcage`,
//!   `sharkcage.json` and the predecessor's `plugin.json`, read strictly
//!   into one [`Declaration`].
//! * [`capabilities`]: the 19 capability names, their risk, and the exact
//!   policy a granted set means (or an error when it cannot be expressed).
//! * [`identity`]: the hash of a skill's whole directory and the diff
//!   between two versions, so a changed skill loses its grants.
//! * [`grants`]: the user's decisions (`<state>/grants.json`), each pinned
//!   to a skill identity.
//! * [`attribution`]: a call gets a skill's grants only if everything it
//!   executes is that skill's code (one rule for the gate and the backend).
//! * [`call`]: which policy one call runs with (attribution, identity,
//!   declaration, ceiling, grants), for the gate and the backend alike.
//! * [`once`]: one-time approvals bound to exactly one call.
//! * [`prompt`]: the approval prompt's words.
//! * [`services`]: the services skills reach (`sc config add-service`).
//! * [`snapshot`], [`copy`]: a skill call runs a verified copy of the
//!   skill, never the live directory.
//! * [`dispatch`]: the predecessor's skills through `sharkcage_run`.
//! * [`expand`]: widening a grant after a refusal.
//! * [`exec`]: one `exec` call as the backend builds it (policy, injected
//!   variables, notices).
//!
//! Pure but for [`grants`], which reads and writes the grant store: nothing
//! here starts a process.

pub mod attribution;
pub mod call;
pub mod capabilities;
pub mod copy;
pub mod dispatch;
pub mod exec;
pub mod expand;
pub mod grants;
pub mod identity;
pub mod manifest;
pub mod once;
pub mod prompt;
pub mod services;
pub mod snapshot;

pub use capabilities::{Capability, CapabilityError, Grant, Request, Risk, Service};
pub use identity::{Identity, IdentityError};
pub use manifest::{Declaration, ManifestError};

#[cfg(test)]
mod tests;
