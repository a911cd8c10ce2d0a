//! The syscall filter: compiled in the launcher before the fork, applied as
//! the very last step before `execve` (after Landlock and the capability
//! drop), with `no_new_privs` set.
//!
//! Denied (EPERM unless noted):
//! * `socket` for any family but AF_INET, AF_INET6 and AF_NETLINK — so no
//!   AF_UNIX (host daemons' sockets), AF_VSOCK (the hypervisor), AF_PACKET…;
//!   `socketpair(AF_UNIX)` only for SOCK_STREAM/SOCK_SEQPACKET, since a
//!   datagram pair can be re-targeted with `connect(AF_UNSPEC)`;
//! * `io_uring_*` (it opens files and sockets without these syscalls);
//!   `io_setup` gets ENOSYS: Linux AIO contexts count against one host-wide
//!   limit (`fs.aio-max-nr`) a sandbox could use up; without it, AIO users
//!   (databases) fall back to threads;
//! * `ptrace`, `process_vm_readv/writev`, `bpf`, `perf_event_open`,
//!   `userfaultfd`, `keyctl`, `add_key`, `request_key`;
//! * the mount family, `pivot_root`, `chroot`, `setns`; `unshare` and `clone`
//!   with any namespace flag; `clone3` gets ENOSYS (its flags sit in memory
//!   where a filter cannot read them, and libc falls back to `clone`);
//! * `kexec_*`, `init_module` family, `reboot`, `swapon/off`, `acct`,
//!   `open_by_handle_at`, `name_to_handle_at`, `lookup_dcookie`;
//! * `ioctl` TIOCSTI and TIOCLINUX, comparing only the low 32 bits of the
//!   request (the kernel ignores the high bits, so must we);
//! * set-user-ID/set-group-ID mode bits in `chmod`, `fchmod`, `fchmodat(2)`,
//!   `open`/`openat`/`creat` and `mknod(at)` (a root caller's sandbox owns
//!   root-owned files; a setuid-root file left in a workspace would be a way
//!   out for anyone on the host); `openat2` gets ENOSYS (its mode is in
//!   memory) so libc falls back to `openat`;
//! * with `filesystem.execOnly`: `memfd_create`, `memfd_secret` and
//!   `execveat` (a memory file is on an internal mount Landlock's `EXECUTE`
//!   rules do not cover, and could be started by descriptor);
//! * every x32 syscall number (bit 30 set) and any non-x86-64 ABI (i386 via
//!   `int 0x80` kills the process): the arch check comes first.
//!
//! * `seccomp` with `SECCOMP_FILTER_FLAG_NEW_LISTENER`: a listener of the
//!   command's own could answer "continue" for calls sent to ours.
//!
//! Unix sockets: without `network.allowUnixSockets` no AF_UNIX socket can be
//! created at all. With it, AF_UNIX stream/seqpacket sockets may be created
//! (never datagram ones, which `sendto` can aim anywhere), and every
//! `connect` is sent to the launcher through a user-notification listener.
//! A filter cannot read the address (it is in memory), so the launcher's
//! broker (`launcher/unix_broker.rs`) reads it once, decides, and performs the
//! connect itself on a copy of the command's socket — the command can change
//! its memory after the check, but not what the launcher connects to.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Errors from building the filter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    #[error("seccomp filter could not be built: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("seccomp filter could not be compiled: {0}")]
    Compile(#[from] seccompiler::Error),
    #[error("seccomp filtering is only implemented for x86_64 here")]
    UnsupportedArch,
}

const CLONE_NS_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

fn c(arg: u8, len: Len, op: Op, val: u64) -> Result<Cond, SeccompError> {
    Ok(Cond::new(arg, len, op, val)?)
}

/// Rules matching a namespace flag in argument `arg`: one rule per bit,
/// because a BPF rule can only test "masked == value".
fn ns_flag_rules(arg: u8) -> Result<Vec<SeccompRule>, SeccompError> {
    CLONE_NS_FLAGS
        .iter()
        .map(|&f| Ok(SeccompRule::new(vec![c(arg, Len::Qword, Op::MaskedEq(f), f)?])?))
        .collect()
}

/// Rules matching a set-user-ID or set-group-ID bit in mode argument `arg`.
fn setid_mode_rules(arg: u8) -> Result<Vec<SeccompRule>, SeccompError> {
    let suid = libc::S_ISUID as u64;
    let sgid = libc::S_ISGID as u64;
    Ok(vec![
        SeccompRule::new(vec![c(arg, Len::Dword, Op::MaskedEq(suid), suid)?])?,
        SeccompRule::new(vec![c(arg, Len::Dword, Op::MaskedEq(sgid), sgid)?])?,
    ])
}

/// What the filter must make room for.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterOptions {
    /// `network.allowUnixSockets` is not empty: AF_UNIX stream/seqpacket
    /// sockets may be created, and every `connect` goes to the launcher's
    /// broker (`launcher/unix_broker.rs`) through a user-notification listener.
    pub unix_broker: bool,
    /// `filesystem.execOnly` is set: programs start only from paths Landlock
    /// judges, so `memfd_create`, `memfd_secret` and `execveat` are denied
    /// (an anonymous memory file lives on an internal mount Landlock does
    /// not see, and `execveat` can start one by descriptor).
    pub exec_only: bool,
}

/// The `SECCOMP_RET_TRACE` data value used as a placeholder for
/// `SECCOMP_RET_USER_NOTIF`, which seccompiler cannot express; `patch_notify`
/// rewrites it. Tracing itself is impossible here (ptrace is denied).
const NOTIFY_PLACEHOLDER: u32 = 0x5c;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 1 << 3;

/// Build the filter program.
#[cfg(target_arch = "x86_64")]
pub fn build(opts: FilterOptions) -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let deny_always = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_lookup_dcookie,
        libc::SYS_quotactl,
        libc::SYS_vhangup,
        libc::SYS_syslog,
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
    ];
    for nr in deny_always {
        rules.insert(nr, vec![]);
    }
    // open_tree_attr (6.15+) is not in every libc yet.
    rules.insert(467, vec![]);

    // socket(): only AF_INET, AF_INET6, AF_NETLINK — and, with the unix
    // broker, AF_UNIX stream/seqpacket sockets (which can only be used
    // through `connect`, which the broker performs).
    let mut socket_rules = vec![];
    let mut not_allowed = vec![
        c(0, Len::Dword, Op::Ne, libc::AF_INET as u64)?,
        c(0, Len::Dword, Op::Ne, libc::AF_INET6 as u64)?,
        c(0, Len::Dword, Op::Ne, libc::AF_NETLINK as u64)?,
    ];
    if opts.unix_broker {
        not_allowed.push(c(0, Len::Dword, Op::Ne, libc::AF_UNIX as u64)?);
        for ty in [libc::SOCK_DGRAM, libc::SOCK_RAW, libc::SOCK_RDM, 10 /* SOCK_PACKET */] {
            socket_rules.push(SeccompRule::new(vec![
                c(0, Len::Dword, Op::Eq, libc::AF_UNIX as u64)?,
                c(1, Len::Dword, Op::MaskedEq(0xf), ty as u64)?,
            ])?);
        }
    }
    socket_rules.push(SeccompRule::new(not_allowed)?);
    rules.insert(libc::SYS_socket, socket_rules);
    // A filter of the command's own with a notification listener could
    // answer "continue" for calls ours sends to the broker: no listeners.
    rules.insert(
        libc::SYS_seccomp,
        vec![SeccompRule::new(vec![c(1, Len::Qword, Op::MaskedEq(SECCOMP_FILTER_FLAG_NEW_LISTENER), SECCOMP_FILTER_FLAG_NEW_LISTENER)?])?],
    );
    // socketpair(): no datagram or raw pairs (type's low 4 bits).
    rules.insert(
        libc::SYS_socketpair,
        vec![
            SeccompRule::new(vec![c(1, Len::Dword, Op::MaskedEq(0xf), libc::SOCK_DGRAM as u64)?])?,
            SeccompRule::new(vec![c(1, Len::Dword, Op::MaskedEq(0xf), libc::SOCK_RAW as u64)?])?,
            SeccompRule::new(vec![c(1, Len::Dword, Op::MaskedEq(0xf), libc::SOCK_RDM as u64)?])?,
            SeccompRule::new(vec![c(1, Len::Dword, Op::MaskedEq(0xf), 10 /* SOCK_PACKET */)?])?,
        ],
    );
    // No set-user-ID / set-group-ID bits: a root caller's sandbox owns
    // root-owned files, and a setuid-root binary left in the workspace would
    // be a way out for anyone on the host. Both the chmod family and file
    // creation modes are checked.
    for (nr, arg) in [
        (libc::SYS_chmod, 1u8),
        (libc::SYS_fchmod, 1),
        (libc::SYS_fchmodat, 2),
        (452 /* fchmodat2 */, 2),
        (libc::SYS_creat, 1),
        (libc::SYS_open, 2),
        (libc::SYS_openat, 3),
        (libc::SYS_mknod, 1),
        (libc::SYS_mknodat, 2),
    ] {
        rules.insert(nr, setid_mode_rules(arg)?);
    }
    // openat2 carries its mode in memory a filter cannot read: ENOSYS makes
    // callers fall back to openat.
    rules.insert(libc::SYS_unshare, ns_flag_rules(0)?);
    rules.insert(libc::SYS_clone, ns_flag_rules(0)?);
    rules.insert(
        libc::SYS_ioctl,
        vec![
            SeccompRule::new(vec![c(1, Len::Dword, Op::Eq, TIOCSTI)?])?,
            SeccompRule::new(vec![c(1, Len::Dword, Op::Eq, TIOCLINUX)?])?,
        ],
    );

    if opts.exec_only {
        for nr in [libc::SYS_memfd_create, libc::SYS_memfd_secret, libc::SYS_execveat] {
            rules.insert(nr, vec![]);
        }
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), TargetArch::x86_64)?;
    let body: BpfProgram = filter.try_into()?;

    // clone3: ENOSYS, so libc falls back to clone(2), whose flags we can see;
    // io_setup: ENOSYS, "no native AIO here".
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, vec![]), (libc::SYS_openat2, vec![]), (libc::SYS_io_setup, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )?;
    let clone3: BpfProgram = clone3.try_into()?;

    let mut parts = vec![prefix(), body, clone3];
    if opts.unix_broker {
        let notify = SeccompFilter::new(
            [(libc::SYS_connect, vec![])].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Trace(NOTIFY_PLACEHOLDER),
            TargetArch::x86_64,
        )?;
        let mut notify: BpfProgram = notify.try_into()?;
        patch_notify(&mut notify);
        parts.push(notify);
    }
    Ok(join(parts))
}

/// Turn the placeholder `RET TRACE|0x5c` into `RET USER_NOTIF`.
fn patch_notify(prog: &mut BpfProgram) {
    const RET_K: u16 = 0x06;
    for ins in prog.iter_mut() {
        if ins.code == RET_K && ins.k == SECCOMP_RET_TRACE | NOTIFY_PLACEHOLDER {
            ins.k = SECCOMP_RET_USER_NOTIF;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn build(_opts: FilterOptions) -> Result<BpfProgram, SeccompError> {
    Err(SeccompError::UnsupportedArch)
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Our own prologue: wrong architecture → kill; x32 syscall number → ENOSYS.
/// seccompiler's program checks the architecture again, which is harmless.
fn prefix() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
    const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06;
    vec![
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, 0x8000_0000), // SECCOMP_RET_KILL_PROCESS
        stmt(LD_W_ABS, 0),        // seccomp_data.nr
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, 0x0005_0000 | libc::ENOSYS as u32), // SECCOMP_RET_ERRNO
    ]
}

/// Chain programs: every `RET ALLOW` of a non-final part becomes a jump to
/// the start of the next part. Parts are self-contained (relative jumps), so
/// rewriting only the allow-returns keeps them correct. The first part (our
/// prologue) falls through into the second.
fn join(parts: Vec<BpfProgram>) -> BpfProgram {
    const RET_K: u16 = 0x06;
    const JA: u16 = 0x05; // BPF_JMP | BPF_JA
    const RET_ALLOW: u32 = 0x7fff_0000;
    let n = parts.len();
    let mut out = Vec::new();
    for (pi, part) in parts.into_iter().enumerate() {
        let len = part.len();
        for (i, ins) in part.into_iter().enumerate() {
            if pi + 1 < n && ins.code == RET_K && ins.k == RET_ALLOW {
                // Jump to the instruction after the end of this part.
                out.push(sock_filter { code: JA, jt: 0, jf: 0, k: (len - i - 1) as u32 });
            } else {
                out.push(ins);
            }
        }
    }
    out
}

/// Install the filter with a user-notification listener; returns the
/// listener fd. Requires `no_new_privs`. No allocation.
pub fn apply_with_listener(prog: &BpfProgram) -> Result<i32, i32> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const sock_filter,
    }
    let fprog = SockFprog { len: prog.len() as u16, filter: prog.as_ptr() };
    // SAFETY: seccomp(SET_MODE_FILTER, NEW_LISTENER) with a valid program
    // that outlives the call (the kernel copies it).
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, 1 /* SET_MODE_FILTER */, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog as *const SockFprog) };
    if rc < 0 {
        return Err(super::sys::errno());
    }
    Ok(rc as i32)
}

/// Install the filter on the calling thread. Requires `no_new_privs`.
/// No allocation: the program was built before the fork.
pub fn apply(prog: &BpfProgram) -> Result<(), i32> {
    seccompiler::apply_filter(prog).map_err(|e| match e {
        seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => io.raw_os_error().unwrap_or(libc::EINVAL),
        _ => libc::EINVAL,
    })
}
