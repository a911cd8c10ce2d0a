//! The kernel mechanisms a sandboxed call is built from, one per file.
//!
//! Each layer has a *prepare* side that runs in the launcher before any fork
//! (allocates, opens, compiles) and an *apply* side that runs after the fork
//! in the single-threaded child and only makes system calls on prepared data.
//!
//! | file | enforces |
//! |---|---|
//! | [`userns`] | the identity map of the new user namespace |
//! | [`mounts`] | the read-only host view, writable roots, hidden secrets, protected paths, private /tmp, /dev, /proc |
//! | [`landlock`] | a second, independent filesystem/network/scope layer |
//! | [`seccomp`] | the syscall filter (applied last, just before exec) |
//! | [`caps`] | no capabilities in any namespace, also for a root caller |
//! | [`limits`] | per-process rlimits (open files, memory fallback, file size, CPU, per-user counters); the effective limits on this host |
//! | [`cgroup`] | per-sandbox memory, process count and CPU share (a per-call cgroup) |
//! | [`quotas`] | per-user kernel quotas (inotify, fanotify) of the sandbox's user namespace |
//! | [`fds`] | no inherited descriptors beyond stdio |
//! | [`net`] | loopback-only network namespace; the proxy's listeners inside it |
//! | [`pty`] | `--pty`: the command's terminal, from the sandbox's own devpts; no terminal of the caller inside |
//! | [`host`] | can this host sandbox at all, and if not, why and how to fix it |

pub mod caps;
pub mod cgroup;
pub mod fds;
pub mod host;
pub mod landlock;
pub mod limits;
pub mod mounts;
pub mod net;
pub mod pty;
pub mod quotas;
pub mod seccomp;
pub mod sys;
pub mod userns;
