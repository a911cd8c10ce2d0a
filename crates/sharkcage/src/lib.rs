//! sharkcage core: a per-call Linux kernel sandbox for AI-agent tool calls.
//!
//! Architecture (one concern per module):
//! * [`policy`]: the JSON policy (srt-compatible keys plus ours), strict parsing.
//! * [`launcher`]: turns a policy into a [`launcher::plan::Plan`] (everything
//!   computed and allocated before any fork), runs it, supervises the call.
//! * [`layers`]: the kernel mechanisms, one file each: user namespace and
//!   id maps, mounts, Landlock, seccomp, limits, capabilities, fds.
//! * [`proxy`]: the network proxy (HTTP, CONNECT, SOCKS5) the sandbox's
//!   loopback listeners lead to, with the domain policy and SSRF guard.
//! * [`audit`]: the tamper-evident audit log (hash chain, signed
//!   checkpoints, group commit) and its verifier.
//! * [`doctor`]: a real smoke test of every layer.
//! * [`callspec`]: the secret part of a call (environment values, policy,
//!   network ticket), passed to the launcher off its command line.
//! * [`fsbridge`]: file operations under the same rules, for OpenClaw's file tools.
//! * [`skills`]: skill declarations, capabilities and their policy, skill identity.
//! * [`secretshape`]: what a secret looks like (names, values), for the
//!   environment filter and the audit redaction alike.

pub mod audit;
pub mod callspec;
pub mod doctor;
pub mod fileio;
pub mod fsbridge;
pub mod gate;
pub mod gitstate;
pub mod launcher;
pub mod layers;
pub mod policy;
pub mod proxy;
pub mod secretshape;
pub mod skills;
pub mod treewalk;
