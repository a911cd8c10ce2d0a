//! Can this host sandbox at all? If not, say why and how to fix it.
//!
//! sharkcage fails closed: when a user namespace cannot be created (or is
//! created without capabilities, as under Ubuntu's AppArmor restriction),
//! nothing runs. The message names the cause and the fix.

use std::path::Path;

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Explain a failure to create or set up the sandbox's namespaces.
pub fn explain_userns_failure(errno: i32, stage: &str) -> String {
    let mut causes = Vec::new();
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        causes.push(
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1). \
             Fix: install an AppArmor profile that grants `userns` to the sharkcage launcher, or run \
             `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
                .to_string(),
        );
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        causes.push(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0). \
             Fix: `sudo sysctl -w kernel.unprivileged_userns_clone=1`"
                .to_string(),
        );
    }
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        causes.push(
            "user namespaces are disabled (user.max_user_namespaces=0). Fix: `sudo sysctl -w user.max_user_namespaces=15000`"
                .to_string(),
        );
    }
    if !Path::new("/proc/self/ns/user").exists() {
        causes.push("this kernel has no user namespace support (CONFIG_USER_NS). Fix: use a kernel built with it".to_string());
    }
    if causes.is_empty() {
        if errno == libc::EPERM || errno == libc::EACCES {
            causes.push(
                "the kernel refused a new user namespace; inside a container this needs the container runtime \
                 to allow nested namespaces (for Docker: a seccomp profile that permits unshare/clone with \
                 namespace flags, or `--privileged`)"
                    .to_string(),
            );
        } else if errno == libc::ENOSPC || errno == libc::EUSERS {
            causes.push("the per-user limit of user namespaces is reached (user.max_user_namespaces)".to_string());
        } else if errno == libc::EINVAL || errno == libc::ENOSYS {
            causes.push("this kernel lacks a namespace type sharkcage needs (needs Linux >= 5.12)".to_string());
        }
    }
    let e = std::io::Error::from_raw_os_error(errno);
    format!(
        "cannot sandbox on this host: {stage} failed ({e}).{}\nNothing was run. `sc doctor` tests every layer.",
        causes.iter().map(|c| format!("\n  cause: {c}")).collect::<String>()
    )
}

/// The kernel's Landlock ABI version, or `None` when Landlock is not available.
pub fn landlock_abi() -> Option<i32> {
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns a number.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    (v > 0).then_some(v as i32)
}
