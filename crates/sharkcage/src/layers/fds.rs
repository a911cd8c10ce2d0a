//! No inherited file descriptors beyond stdio.
//!
//! The launcher's own descriptors (pipes to the supervisor, the Landlock
//! ruleset) and anything the caller leaked to us are closed in the worker
//! just before the filters go on. Kept: the error-report pipe (close-on-exec,
//! gone at `execve`) and the broker socket (closed once the listener is sent).

/// Close every descriptor >= 3 except those in `keep` (no allocation).
pub fn close_inherited_except(keep: &[i32]) {
    let mut lo: i32 = 3;
    loop {
        // The smallest kept descriptor >= lo.
        let next = keep.iter().copied().filter(|&k| k >= lo).min();
        let hi = match next {
            Some(k) => k - 1,
            None => -1,
        };
        // SAFETY: close_range only closes descriptors.
        unsafe {
            if next.is_none() {
                libc::syscall(libc::SYS_close_range, lo as u32, u32::MAX, 0u32);
                return;
            }
            if hi >= lo {
                libc::syscall(libc::SYS_close_range, lo as u32, hi as u32, 0u32);
            }
        }
        lo = next.unwrap() + 1;
    }
}
