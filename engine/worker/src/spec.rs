//! The OCI runtime spec (`config.json`) of an exec, and the `/etc/hosts`
//! and `/etc/resolv.conf` files bind-mounted into it.

use crate::runc::{BindMount, TmpfsMount};
use crate::user::ResolvedUser;
use anyhow::Result;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder, get_default_maskedpaths, get_default_readonly_paths,
};
use std::path::Path;
use std::str::FromStr;
use strata_llb::{ExecMeta, NetMode, SecurityMode};

/// Hostname of a container whose exec names none, as BuildKit's default.
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// `PATH` set when the exec's environment has none, as BuildKit's
/// `system.DefaultPathEnvUnix`.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities of a sandboxed exec: the default set of Docker's runtime.
const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability up to Linux 5.9's `CAP_CHECKPOINT_RESTORE`, for
/// insecure execs, indexed by capability number.
const ALL_CAPABILITY_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Open-file limit of the exec, as containerd's default spec (which
/// BuildKit uses): soft 1024, hard 1048576. Both are capped at this
/// process's own hard limit, since raising it needs `CAP_SYS_RESOURCE` in
/// the host's user namespace.
const NOFILE_SOFT: u64 = 1024;
const NOFILE_HARD: u64 = 1_048_576;

fn nofile_limits() -> (u64, u64) {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid `rlimit` for the kernel to fill.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } == 0 {
        NOFILE_HARD.min(current.rlim_max)
    } else {
        NOFILE_HARD
    };
    (NOFILE_SOFT.min(hard), hard)
}

/// Returns this process's capability bounding set (`CapBnd` in
/// `/proc/self/status`). runc cannot grant a capability outside it, so an
/// insecure exec gets every capability in it; all bits when unreadable.
fn bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(u64::MAX)
}

/// Everything the spec is built from.
pub(crate) struct SpecInput<'a> {
    pub rootfs: &'a Path,
    pub meta: &'a ExecMeta,
    pub user: &'a ResolvedUser,
    pub net: NetMode,
    pub security: SecurityMode,
    pub hosts_file: &'a Path,
    pub resolv_conf: &'a Path,
    pub binds: &'a [BindMount],
    pub tmpfs: &'a [TmpfsMount],
}

pub(crate) fn build_spec(input: &SpecInput<'_>) -> Result<Spec> {
    let capabilities: Capabilities = match input.security {
        SecurityMode::Sandbox => DEFAULT_CAPABILITIES.iter().copied().collect(),
        SecurityMode::Insecure => {
            let bounding = bounding_set();
            ALL_CAPABILITY_NAMES
                .iter()
                .enumerate()
                .filter(|(number, _)| bounding & (1 << number) != 0)
                .filter_map(|(_, name)| Capability::from_str(name).ok())
                .collect()
        }
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(capabilities.clone())
        .effective(capabilities.clone())
        .permitted(capabilities)
        .build()?;

    let mut env = input.meta.env.clone();
    for entry in &input.meta.proxy_env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if !env
            .iter()
            .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
        {
            env.push(entry.clone());
        }
    }
    if !env.iter().any(|entry| entry.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|entry| entry.starts_with("HOME=")) {
        env.push(format!("HOME={}", input.user.home));
    }

    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()?;
    let (soft, hard) = nofile_limits();
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(soft)
        .hard(hard)
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(input.meta.args.clone())
        .env(env)
        .cwd(container_cwd(input.meta))
        .capabilities(capabilities)
        .rlimits(vec![rlimit])
        .no_new_privileges(false)
        .build()?;

    let mut namespaces = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    if input.net == NetMode::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()?;

    let deny_devices = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let mut linux = LinuxBuilder::default().namespaces(namespaces).resources(
        LinuxResourcesBuilder::default()
            .devices(vec![deny_devices])
            .build()?,
    );
    if input.security == SecurityMode::Sandbox {
        linux = linux
            .masked_paths(get_default_maskedpaths())
            .readonly_paths(get_default_readonly_paths());
    }

    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(false)
                .build()?,
        )
        .hostname(
            input
                .meta
                .hostname
                .clone()
                .unwrap_or_else(|| DEFAULT_HOSTNAME.to_string()),
        )
        .mounts(mounts(input)?)
        .process(process)
        .linux(linux.build()?)
        .build()?;
    Ok(spec)
}

/// Returns the exec's working directory as an absolute path, `/` when
/// empty, because runc requires an absolute `cwd`.
pub(crate) fn container_cwd(meta: &ExecMeta) -> String {
    if meta.cwd.starts_with('/') {
        meta.cwd.clone()
    } else {
        format!("/{}", meta.cwd)
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn bind_mount(source: &Path, destination: &str, readonly: bool) -> Result<Mount> {
    let mut options = vec![
        "rbind".to_string(),
        "nosuid".to_string(),
        "nodev".to_string(),
    ];
    if readonly {
        options.push("ro".into());
    }
    Ok(MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()?)
}

fn mounts(input: &SpecInput<'_>) -> Result<Vec<Mount>> {
    let sys_options: &[&str] = match input.security {
        SecurityMode::Sandbox => &["nosuid", "noexec", "nodev", "ro"],
        SecurityMode::Insecure => &["nosuid", "noexec", "nodev"],
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount("/sys", "sysfs", "sysfs", sys_options)?,
        bind_mount(input.hosts_file, "/etc/hosts", false)?,
        bind_mount(input.resolv_conf, "/etc/resolv.conf", false)?,
    ];
    // A parent directory must be mounted before the mounts inside it, so
    // the exec's own mounts go in order of depth.
    let mut own: Vec<(&str, Mount)> = Vec::new();
    for bind in input.binds {
        own.push((
            &bind.dest,
            bind_mount(&bind.source, &bind.dest, bind.readonly)?,
        ));
    }
    for tmpfs in input.tmpfs {
        own.push((&tmpfs.dest, tmpfs_mount(tmpfs)?));
    }
    own.sort_by_key(|(dest, _)| dest.split('/').filter(|p| !p.is_empty()).count());
    mounts.extend(own.into_iter().map(|(_, mount)| mount));
    Ok(mounts)
}

fn tmpfs_mount(tmpfs: &TmpfsMount) -> Result<Mount> {
    let mut options = vec!["nosuid", "nodev", "mode=1777"]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if let Some(size) = tmpfs.size {
        options.push(format!("size={size}"));
    }
    if tmpfs.readonly {
        options.push("ro".into());
    }
    Ok(MountBuilder::default()
        .destination(&tmpfs.dest)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options)
        .build()?)
}

/// Returns the container's `/etc/hosts`: loopback names, the hostname and
/// the exec's extra hosts.
pub(crate) fn hosts_file(meta: &ExecMeta) -> String {
    let hostname = meta.hostname.as_deref().unwrap_or(DEFAULT_HOSTNAME);
    let mut text =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (host, ip) in &meta.extra_hosts {
        text.push_str(&format!("{ip}\t{host}\n"));
    }
    text
}

/// Nameservers used when the host's are unreachable from the container,
/// as BuildKit's (Google Public DNS).
const FALLBACK_NAMESERVERS: &[&str] = &[
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
];

/// Returns the container's `/etc/resolv.conf` from the host's.
///
/// A loopback nameserver (such as systemd-resolved's `127.0.0.53`) works
/// only in the host's network namespace, so in a namespace of its own the
/// loopback entries are dropped and, when none remain, replaced by public
/// fallbacks, as BuildKit does.
pub(crate) fn resolv_conf(host: &str, net: NetMode) -> String {
    if net == NetMode::Host {
        return host.to_string();
    }
    let mut kept_nameserver = false;
    let mut text = String::new();
    for line in host.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some("nameserver") {
            let address = fields.next().unwrap_or("");
            if address.starts_with("127.") || address == "::1" {
                continue;
            }
            kept_nameserver = true;
        }
        text.push_str(line);
        text.push('\n');
    }
    if !kept_nameserver {
        for address in FALLBACK_NAMESERVERS {
            text.push_str(&format!("nameserver {address}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_off_host() {
        let host = "search example.com\nnameserver 127.0.0.53\n";
        assert_eq!(resolv_conf(host, NetMode::Host), host);
        let isolated = resolv_conf(host, NetMode::None);
        assert!(!isolated.contains("127.0.0.53"), "{isolated}");
        assert!(isolated.contains("nameserver 8.8.8.8"), "{isolated}");
        assert!(isolated.contains("search example.com"), "{isolated}");

        let public = resolv_conf("nameserver 10.0.0.2\nnameserver ::1\n", NetMode::None);
        assert_eq!(public, "nameserver 10.0.0.2\n");
    }

    #[test]
    fn hosts_file_lists_extra_hosts() {
        let meta = ExecMeta {
            hostname: Some("box".into()),
            extra_hosts: vec![("db".into(), "10.0.0.5".into())],
            ..ExecMeta::default()
        };
        let text = hosts_file(&meta);
        assert!(text.starts_with("127.0.0.1\tlocalhost box\n"), "{text}");
        assert!(text.ends_with("10.0.0.5\tdb\n"), "{text}");
    }
}
