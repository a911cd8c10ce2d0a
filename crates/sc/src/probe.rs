//! `sc __probe NAME...`: attempt each named operation from inside a sandbox
//! and print `{"NAME": errno}` (0 = the operation succeeded). `sc doctor`
//! and the test suite run it inside real sandboxes and judge the numbers
//! from outside; the probe itself decides nothing.

use std::collections::BTreeMap;

fn errno() -> i64 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64
}

/// Run a raw syscall; return 0 on success or the errno.
fn sys(r: libc::c_long) -> i64 {
    if r < 0 {
        errno()
    } else {
        0
    }
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn probe(name: &str) -> serde_json::Value {
    use serde_json::json;
    // SAFETY (whole function): each probe is a single system call with
    // stack-allocated or null arguments, made to observe its errno; any
    // descriptor it returns is closed.
    unsafe {
        let v: i64 = match name {
            "status" => {
                return json!({
                    "CapEff": status_field("CapEff"), "CapPrm": status_field("CapPrm"),
                    "CapBnd": status_field("CapBnd"), "CapAmb": status_field("CapAmb"),
                    "CapInh": status_field("CapInh"),
                    "NoNewPrivs": status_field("NoNewPrivs"), "Seccomp": status_field("Seccomp"),
                    "pid": std::process::id(), "uid": libc::getuid(),
                    "sid": libc::getsid(0), "pgid": libc::getpgid(0),
                })
            }
            "unix_socket" => close_ok(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)),
            "unix_dgram_socket" => close_ok(libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0)),
            "vsock_socket" => close_ok(libc::socket(40, libc::SOCK_STREAM, 0)),
            "packet_socket" => close_ok(libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)),
            "inet_socket" => close_ok(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0)),
            "socketpair_stream" | "socketpair_dgram" => {
                let ty = if name.ends_with("stream") { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
                let mut sv = [0; 2];
                let r = libc::socketpair(libc::AF_UNIX, ty, 0, sv.as_mut_ptr());
                if r == 0 {
                    libc::close(sv[0]);
                    libc::close(sv[1]);
                    0
                } else {
                    errno()
                }
            }
            "io_setup" => {
                let mut ctx: libc::c_ulong = 0;
                let r = libc::syscall(libc::SYS_io_setup, 1024u32, &mut ctx as *mut libc::c_ulong);
                if r == 0 {
                    libc::syscall(libc::SYS_io_destroy, ctx);
                }
                sys(r)
            }
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                close_ok(libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) as i32)
            }
            "ptrace_traceme" => sys(libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0)),
            "ptrace_attach_pid1" => sys(libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0)),
            "process_vm_readv" => {
                let mut buf = [0u8; 8];
                let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 8 };
                let remote = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 8 };
                sys(libc::process_vm_readv(libc::getppid().max(1), &local, 1, &remote, 1, 0) as libc::c_long)
            }
            "bpf" => {
                let mut attr = [0u8; 128];
                sys(libc::syscall(libc::SYS_bpf, 0 /* BPF_MAP_CREATE */, attr.as_mut_ptr(), 128u32))
            }
            "perf_event_open" => {
                let mut attr = [0u8; 128];
                attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
                close_ok(libc::syscall(libc::SYS_perf_event_open, attr.as_mut_ptr(), 0, -1, -1, 0) as i32)
            }
            "userfaultfd" => close_ok(libc::syscall(libc::SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */) as i32),
            "keyctl" => sys(libc::syscall(libc::SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0)),
            "add_key" => sys(libc::syscall(libc::SYS_add_key, c"user".as_ptr(), c"k".as_ptr(), c"v".as_ptr(), 1usize, -3)),
            "request_key" => sys(libc::syscall(libc::SYS_request_key, c"user".as_ptr(), c"k".as_ptr(), 0usize, 0)),
            "mount_tmpfs" => sys(libc::mount(c"none".as_ptr(), c"/tmp".as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) as libc::c_long),
            "umount_root" => sys(libc::umount2(c"/".as_ptr(), libc::MNT_DETACH) as libc::c_long),
            "remount_root_rw" => sys(libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REMOUNT | libc::MS_BIND, std::ptr::null()) as libc::c_long),
            "pivot_root" => sys(libc::syscall(libc::SYS_pivot_root, c"/tmp".as_ptr(), c"/tmp".as_ptr())),
            "open_tree" => close_ok(libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c"/".as_ptr(), 1u32 /* CLONE */) as i32),
            "fsopen" => close_ok(libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 0u32) as i32),
            "chroot" => sys(libc::chroot(c"/tmp".as_ptr()) as libc::c_long),
            "unshare_user" => sys(libc::unshare(libc::CLONE_NEWUSER) as libc::c_long),
            "unshare_net" => sys(libc::unshare(libc::CLONE_NEWNET) as libc::c_long),
            "unshare_ns" => sys(libc::unshare(libc::CLONE_NEWNS) as libc::c_long),
            "unshare_files" => sys(libc::unshare(libc::CLONE_FILES) as libc::c_long),
            "clone_newuser" => clone_probe(libc::CLONE_NEWUSER),
            "clone_newns" => clone_probe(libc::CLONE_NEWNS),
            "clone_plain" => clone_probe(0),
            "clone3" => {
                let mut args = [0u64; 11];
                args[4] = libc::SIGCHLD as u64; // exit_signal
                let r = libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), 88usize);
                if r == 0 {
                    libc::_exit(0);
                }
                if r > 0 {
                    libc::waitpid(r as i32, std::ptr::null_mut(), 0);
                    0
                } else {
                    errno()
                }
            }
            "setns" => sys(libc::setns(0, 0) as libc::c_long),
            "seccomp_new_listener" => {
                // A one-instruction "allow" program, installed with a listener.
                let ins = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];
                let prog = libc::sock_fprog { len: 1, filter: ins.as_ptr() as *mut libc::sock_filter };
                close_ok(libc::syscall(libc::SYS_seccomp, 1, 8u64 /* NEW_LISTENER */, &prog as *const libc::sock_fprog) as i32)
            }
            "kexec_load" => sys(libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0)),
            "init_module" => sys(libc::syscall(libc::SYS_init_module, std::ptr::null::<u8>(), 0, c"".as_ptr())),
            "tiocsti" => {
                let ch = b'x';
                sys(libc::ioctl(0, libc::TIOCSTI, &ch) as libc::c_long)
            }
            "tiocsti_high_bits" => {
                let ch = b'x';
                sys(libc::syscall(libc::SYS_ioctl, 0, 0x1_0000_5412u64, &ch))
            }
            "tioclinux" => {
                let sub = 6u8;
                sys(libc::ioctl(0, libc::TIOCLINUX, &sub) as libc::c_long)
            }
            "x32_getpid" => sys(libc::syscall(0x4000_0000 + libc::SYS_getpid)),
            "i386_getpid" => {
                // The 32-bit ABI through `int 0x80` (getpid is 20 there). The
                // filter's architecture check kills the process: no return.
                let mut ret: i64 = 20;
                std::arch::asm!("int 0x80", inout("rax") ret, options(nostack));
                ret
            }
            "sethostname" => sys(libc::sethostname(c"evil".as_ptr(), 4) as libc::c_long),
            "kill_pid1" => sys(libc::kill(1, libc::SIGKILL) as libc::c_long),
            "setuid0" => sys(libc::setuid(0) as libc::c_long),
            "open_by_handle_at" => sys(libc::syscall(libc::SYS_open_by_handle_at, libc::AT_FDCWD, std::ptr::null::<u8>(), 0)),
            "fds" => {
                let n = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
                // read_dir itself holds one descriptor while listing.
                return json!(n.saturating_sub(1));
            }
            "hostname" => {
                let mut buf = [0u8; 65];
                libc::gethostname(buf.as_mut_ptr().cast(), 64);
                let end = buf.iter().position(|&b| b == 0).unwrap_or(64);
                return json!(String::from_utf8_lossy(&buf[..end]));
            }
            other => {
                if let Some(rest) = other.strip_prefix("connect-tcp:") {
                    return json!(connect_tcp(rest));
                }
                if let Some(rest) = other.strip_prefix("serve-tcp:") {
                    return json!(serve_tcp(rest));
                }
                if let Some(rest) = other.strip_prefix("udp-send:") {
                    return json!(udp_send(rest));
                }
                if let Some(rest) = other.strip_prefix("exchange:") {
                    return exchange(rest);
                }
                if let Some(name) = other.strip_prefix("resolve:") {
                    use std::net::ToSocketAddrs as _;
                    return match (name, 80).to_socket_addrs() {
                        Ok(a) => json!({"ok": a.map(|a| a.ip().to_string()).collect::<Vec<_>>()}),
                        Err(e) => json!({"error": e.to_string()}),
                    };
                }
                if let Some(path) = other.strip_prefix("connect-unix:") {
                    return json!(connect_unix(path.as_bytes(), false));
                }
                if let Some(name) = other.strip_prefix("connect-abstract:") {
                    return json!(connect_unix(name.as_bytes(), true));
                }
                if let Some(spec) = other.strip_prefix("hold:") {
                    return hold(spec);
                }
                if let Some(path) = other.strip_prefix("read:") {
                    return match std::fs::read(path) {
                        Ok(b) => json!({"ok": String::from_utf8_lossy(&b)}),
                        Err(e) => json!({"errno": e.raw_os_error()}),
                    };
                }
                return json!("unknown probe");
            }
        };
        json!(v)
    }
}

unsafe fn close_ok(fd: i32) -> i64 {
    if fd < 0 {
        errno()
    } else {
        // SAFETY: closing the descriptor the probe just got.
        unsafe { libc::close(fd) };
        0
    }
}

unsafe fn clone_probe(flags: libc::c_int) -> i64 {
    // SAFETY: fork-like clone; the child exits immediately.
    let r = unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if r == 0 {
        // SAFETY: child exits at once.
        unsafe { libc::_exit(0) };
    }
    if r > 0 {
        // SAFETY: reap the child.
        unsafe { libc::waitpid(r as i32, std::ptr::null_mut(), 0) };
        0
    } else {
        errno()
    }
}

/// Connect to HOST:PORT over TCP and send a marker; 0 on success.
fn connect_tcp(addr: &str) -> i64 {
    use std::io::Write;
    match std::net::TcpStream::connect_timeout(&match addr.parse() {
        Ok(a) => a,
        Err(_) => return -1,
    }, std::time::Duration::from_secs(2))
    {
        Ok(mut s) => {
            let _ = s.write_all(b"SANDBOX-ESCAPED\n");
            0
        }
        Err(e) => e.raw_os_error().unwrap_or(-1) as i64,
    }
}

/// A local server: listen on `addr`, connect to it, and echo a line back.
/// "ok" when the line came back, else the step and errno that failed.
fn serve_tcp(addr: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let Ok(a) = addr.parse::<std::net::SocketAddr>() else { return "bad address".into() };
    let l = match std::net::TcpListener::bind(a) {
        Ok(l) => l,
        Err(e) => return format!("bind: {}", e.raw_os_error().unwrap_or(-1)),
    };
    let Ok(at) = l.local_addr() else { return "local_addr".into() };
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (s, _) = l.accept()?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line)?;
        (&s).write_all(line.as_bytes())
    });
    let mut c = match std::net::TcpStream::connect_timeout(&at, std::time::Duration::from_secs(2)) {
        Ok(c) => c,
        Err(e) => return format!("connect: {}", e.raw_os_error().unwrap_or(-1)),
    };
    let _ = c.write_all(b"LOCAL-SERVER\n");
    let mut back = String::new();
    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = BufReader::new(&c).read_line(&mut back);
    let _ = server.join();
    if back == "LOCAL-SERVER\n" { "ok".into() } else { format!("echo: {back:?}") }
}

/// Connect to a unix socket (path, or abstract name) and send a marker.
fn connect_unix(name: &[u8], abstract_ns: bool) -> i64 {
    // SAFETY: socket/connect/write/close on a local sockaddr_un built on the stack.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return errno();
        }
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        let off = usize::from(abstract_ns);
        let n = name.len().min(addr.sun_path.len() - 1 - off);
        for (i, b) in name[..n].iter().enumerate() {
            addr.sun_path[i + off] = *b as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + off + n) as libc::socklen_t;
        let r = libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len);
        let e = errno();
        if r == 0 {
            libc::write(fd, b"SANDBOX-ESCAPED\n".as_ptr().cast(), 16);
        }
        libc::close(fd);
        if r == 0 { 0 } else { e }
    }
}

pub fn run(names: &[String]) -> i32 {
    let mut out = BTreeMap::new();
    for n in names {
        out.insert(n.clone(), probe(n));
    }
    println!("{}", serde_json::to_string(&out).unwrap());
    0
}

/// `KIND:N:MS`: take up to N of a kernel resource, keep it for MS
/// milliseconds (so a test can look from the host meanwhile), report how
/// many were taken and the errno that stopped it (0: all N). KIND:
/// `files` (N opens of /dev/null: N file-table entries), `inotify` (N
/// instances), `memfd` (one memfd filled with N bytes, 1 MiB at a time).
fn hold(spec: &str) -> serde_json::Value {
    let mut it = spec.split(':');
    let (Some(kind), Some(Ok(n)), Some(Ok(ms))) = (it.next(), it.next().map(str::parse::<u64>), it.next().map(str::parse::<u64>)) else {
        return serde_json::json!({"error": "expected KIND:N:MS"});
    };
    let mut held: u64 = 0;
    let mut err = 0;
    let mut fds = Vec::new();
    // SAFETY: plain system calls on stack data; every descriptor is closed below.
    unsafe {
        match kind {
            "files" | "inotify" => {
                while held < n {
                    let fd = if kind == "files" { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) } else { libc::inotify_init1(0) };
                    if fd < 0 {
                        err = errno();
                        break;
                    }
                    fds.push(fd);
                    held += 1;
                }
            }
            "memfd" => {
                let fd = libc::memfd_create(c"probe".as_ptr(), 0);
                if fd < 0 {
                    err = errno();
                } else {
                    fds.push(fd);
                    let chunk = vec![0x5au8; 1 << 20];
                    while held < n {
                        let w = libc::write(fd, chunk.as_ptr().cast(), chunk.len().min((n - held) as usize));
                        if w <= 0 {
                            err = if w < 0 { errno() } else { libc::EIO as i64 };
                            break;
                        }
                        held += w as u64;
                    }
                }
            }
            _ => return serde_json::json!({"error": "unknown kind"}),
        }
        std::thread::sleep(std::time::Duration::from_millis(ms));
        for fd in fds {
            libc::close(fd);
        }
    }
    serde_json::json!({"held": held, "errno": err})
}

/// Send one UDP datagram to ADDR; 0 if the kernel accepted it.
fn udp_send(addr: &str) -> i64 {
    let Ok(a) = addr.parse::<std::net::SocketAddr>() else { return -1 };
    let bind = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    match std::net::UdpSocket::bind(bind).and_then(|s| s.send_to(b"sharkcage-probe", a)) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1) as i64,
    }
}

/// `ADDR:HEX`: connect, send the bytes, half-close, read the answer (3 s).
fn exchange(spec: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let Some((addr, hex)) = spec.rsplit_once(':') else { return serde_json::json!({"error": "expected ADDR:HEX"}) };
    let bytes: Vec<u8> = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    let Ok(a) = addr.parse::<std::net::SocketAddr>() else { return serde_json::json!({"error": "bad address"}) };
    let mut s = match std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return serde_json::json!({"errno": e.raw_os_error()}),
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
    let _ = s.write_all(&bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    serde_json::json!({"errno": 0, "reply": String::from_utf8_lossy(&out)})
}
