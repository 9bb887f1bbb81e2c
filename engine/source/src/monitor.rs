//! The context monitor: a background process that watches one build
//! context with inotify and reports to the next one-shot build which paths
//! changed since the previous build synced it, so that build stats only
//! those paths instead of walking the whole context. Git's fsmonitor
//! daemon does the same for `git status`.
//!
//! A build requests the changes, syncs, and then acknowledges what it
//! synced. The response is trusted only when
//!
//! - the monitor saw every event up to the request: before it responds it
//!   creates a file in a private directory watched by the same inotify
//!   instance and waits for that event, and inotify delivers one
//!   instance's events in order;
//! - no event was lost since the acknowledged sync (a queue overflow or a
//!   watcher error forces a full walk); and
//! - the index the monitor last acknowledged is the index in the store
//!   now: each index carries a token, and a sync without the monitor
//!   writes a new one.
//!
//! The monitor exits when it has not been asked for a while, or when the
//! context or the store is removed. Any failure to reach it means a full
//! walk, never a wrong mirror.

use anyhow::{Context, Result, bail};
use notify::{EventKind, RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a monitor waits for a question before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(15 * 60);

/// How long a build waits for a monitor's response, and a monitor for the
/// event of its flush file.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// A request from a build.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Changes,
    Synced { token: String, seq: u64 },
}

/// The changes since the last acknowledged sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Number of events seen when the response was made, for the acknowledgement.
    pub seq: u64,
    /// Token of the index the last acknowledged sync wrote.
    pub token: Option<String>,
    /// The reason the paths cannot be trusted, when events were lost.
    pub lost: Option<String>,
    /// Changed paths, relative to the context.
    pub paths: BTreeSet<String>,
}

/// Returns the socket of the monitor of a context (by its key) for the
/// store at `root`. Unix socket paths are short, so the name is a prefix of
/// the key.
/// The directory is created, readable by its owner only, and the path is
/// absolute, since the monitor runs in `/`.
pub fn socket_path(root: &Path, context_key: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let directory = root.join("monitors");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&directory)
        .with_context(|| format!("Failed to create `{}`", directory.display()))?;
    let name = format!("{}.sock", &context_key[..16.min(context_key.len())]);
    Ok(std::fs::canonicalize(&directory)?.join(name))
}

/// Asks the monitor at `socket` for the changes since the last sync.
pub fn query(socket: &Path) -> Result<Changes> {
    let answer = ask(socket, &Request::Changes)?;
    serde_json::from_str(&answer).context("Invalid response from the context monitor")
}

/// Tells the monitor at `socket` that the sync that asked at `seq` wrote
/// (or kept) the index with `token`.
pub fn acknowledge(socket: &Path, token: &str, seq: u64) -> Result<()> {
    ask(
        socket,
        &Request::Synced {
            token: token.to_string(),
            seq,
        },
    )
    .map(drop)
}

/// Reports whether a failed request found no monitor at all (no socket,
/// or no process behind it), rather than one that did not respond.
pub fn is_absent(error: &anyhow::Error) -> bool {
    error.downcast_ref::<std::io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        )
    })
}

fn ask(socket: &Path, request: &Request) -> Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT + Duration::from_millis(500)))?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("the context monitor closed the connection");
    }
    Ok(answer)
}

/// Starts `program ARGS... CONTEXT SOCKET` as a detached monitor and waits
/// until it watches the context (it prints `ready`). Returns an error when
/// it failed or another monitor already serves the socket.
pub fn spawn(program: &Path, args: &[&str], context: &Path, socket: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(context)
        .arg(socket)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: close_range is async-signal-safe and touches no memory. It
    // marks every descriptor the build inherited (a caller's pipe, a
    // jobserver) close-on-exec, so the monitor does not keep them open.
    unsafe {
        command.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }

    let mut child = command
        .spawn()
        .with_context(|| format!("Failed to start `{}`", program.display()))?;

    // The monitor prints one line once it watches and listens.
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    match receiver.recv_timeout(Duration::from_secs(10)) {
        Ok(line) if line.trim() == "ready" => Ok(()),
        Ok(_) => {
            let _ = child.wait();
            bail!("the context monitor exited before it was ready")
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the context monitor did not start within 10 s")
        }
    }
}

/// The events the watcher has recorded.
#[derive(Default)]
struct State {
    seq: u64,
    /// Changed paths with the sequence number of their latest event.
    dirty: BTreeMap<String, u64>,
    /// The latest event loss: its sequence number and reason.
    lost: Option<(u64, String)>,
    token: Option<String>,
    /// Names of flush files whose events arrived.
    flushed: BTreeSet<String>,
    last_question: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    flushed: Condvar,
}

/// Runs a monitor for `context` on `socket` until it is idle for `idle` or
/// the context or the socket disappears (a removed store takes the socket). Prints `ready` to
/// stdout once it watches and listens. Exits with an error when another
/// monitor holds the socket's lock.
pub fn serve(context: &Path, socket: &Path, idle: Duration) -> Result<()> {
    let context = std::fs::canonicalize(context)
        .with_context(|| format!("`{}` is not a readable directory", context.display()))?;
    let directory = socket
        .parent()
        .context("the socket path has no parent directory")?;
    std::fs::create_dir_all(directory)?;
    let lock_file = std::fs::File::create(socket.with_extension("lock"))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| {
            anyhow::anyhow!("another monitor serves `{}`: {errno}", socket.display())
        })?;
    let identity = identity_of(&context)?;
    let flush_dir = socket.with_extension("flush");
    let _ = std::fs::remove_dir_all(&flush_dir);
    std::fs::create_dir_all(&flush_dir)?;
    let flush_dir = std::fs::canonicalize(&flush_dir)?;

    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        flushed: Condvar::new(),
    });
    let handler_shared = shared.clone();
    let handler_context = context.clone();
    let handler_flush_dir = flush_dir.clone();
    // Symlinks are not followed. A link to a directory would share its
    // target's watch, so the target's events would come under the link's
    // path, and links leaving the context would be watched as well.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = notify::RecommendedWatcher::new(
        move |event: notify::Result<notify::Event>| {
            record(&handler_shared, &handler_context, &handler_flush_dir, event);
        },
        config,
    )
    .context("Failed to start the file watcher")?;
    watcher.watch(&flush_dir, RecursiveMode::NonRecursive)?;
    watcher.watch(&context, RecursiveMode::Recursive)?;

    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("Failed to listen on `{}`", socket.display()))?;
    let started = Instant::now();
    let watchdog_shared = shared.clone();
    let watchdog_socket = socket.to_path_buf();
    let watchdog_context = context.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let last = watchdog_shared
                .state
                .lock()
                .expect("monitor state lock")
                .last_question
                .unwrap_or(started);
            let replaced = identity_of(&watchdog_context).ok() != Some(identity);
            if last.elapsed() > idle || replaced || !watchdog_socket.exists() {
                stop(&watchdog_socket);
            }
        }
    });
    println!("ready");
    std::io::stdout().flush()?;

    let mut flushes = 0u64;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        flushes += 1;
        let watched = Watched {
            context: &context,
            identity,
            flush_dir: &flush_dir,
        };
        match answer(&shared, &watched, flushes, stream) {
            // After a loss the watches themselves may be incomplete (a
            // directory created in a lost event has none), so the monitor
            // stops after reporting the loss, and the next build starts a new one.
            Ok(Answered::Stop) => stop(socket),
            Ok(Answered::Continue) => {}
            Err(error) => tracing::debug!("context monitor request failed: {error:#}"),
        }
    }
    drop(watcher);
    Ok(())
}

/// Removes the socket and the flush directory and exits the process.
fn stop(socket: &Path) -> ! {
    let _ = std::fs::remove_file(socket);
    let _ = std::fs::remove_dir_all(socket.with_extension("flush"));
    std::process::exit(0)
}

/// Returns the device and inode of a directory, to notice a replacement.
fn identity_of(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_dir() {
        bail!("`{}` is not a directory", path.display());
    }
    Ok((metadata.dev(), metadata.ino()))
}

/// The watched paths, for the checks made before each response.
struct Watched<'a> {
    context: &'a Path,
    identity: (u64, u64),
    flush_dir: &'a Path,
}

enum Answered {
    Continue,
    Stop,
}

/// Why the events of `context` cannot cover every change now, if so: the
/// directory was replaced, or a filesystem is mounted below it (inotify
/// does not see changes made inside a mount through other paths).
fn blind_spot(watched: &Watched<'_>) -> Option<String> {
    if identity_of(watched.context).ok() != Some(watched.identity) {
        return Some("the context directory was replaced".into());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounted = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| {
            Path::new(point).starts_with(watched.context) && Path::new(point) != watched.context
        });
    mounted.then(|| "a filesystem is mounted inside the context".into())
}

fn record(shared: &Shared, context: &Path, flush_dir: &Path, event: notify::Result<notify::Event>) {
    let mut state = shared.state.lock().expect("monitor state lock");
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            state.seq += 1;
            state.lost = Some((state.seq, format!("the file watcher failed: {error}")));
            return;
        }
    };
    if let Some(path) = event.paths.first()
        && path.parent() == Some(flush_dir)
    {
        if let Some(name) = path.file_name() {
            state.flushed.insert(name.to_string_lossy().into_owned());
            shared.flushed.notify_all();
        }
        return;
    }
    if matches!(event.kind, EventKind::Access(_)) {
        return;
    }
    state.seq += 1;
    let seq = state.seq;
    if event.need_rescan() {
        state.lost = Some((seq, "the file watcher lost events".into()));
        return;
    }
    for path in &event.paths {
        let Ok(relative) = path.strip_prefix(context) else {
            continue;
        };
        match relative.to_str() {
            Some(relative) => {
                state.dirty.insert(relative.to_string(), seq);
            }
            // A full walk reports the name; a dirty path cannot carry it.
            None => state.lost = Some((seq, "a changed name is not valid UTF-8".into())),
        }
    }
}

fn answer(
    shared: &Shared,
    watched: &Watched<'_>,
    flush: u64,
    stream: UnixStream,
) -> Result<Answered> {
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let request: Request = serde_json::from_str(&line)?;
    let mut answered = Answered::Continue;
    let reply = match request {
        Request::Changes => {
            let mut changes = changes(shared, watched.flush_dir, flush)?;
            if let Some(reason) = blind_spot(watched) {
                changes.lost.get_or_insert(reason);
            }
            if changes.lost.is_some() {
                answered = Answered::Stop;
            }
            serde_json::to_string(&changes)?
        }
        Request::Synced { token, seq } => {
            let mut state = shared.state.lock().expect("monitor state lock");
            state.dirty.retain(|_, last| *last > seq);
            if state.lost.as_ref().is_some_and(|(at, _)| *at <= seq) {
                state.lost = None;
            }
            state.token = Some(token);
            "{}".to_string()
        }
    };
    (&stream).write_all(format!("{reply}\n").as_bytes())?;
    Ok(answered)
}

/// Waits until every event before now has been recorded, then reports.
fn changes(shared: &Shared, flush_dir: &Path, flush: u64) -> Result<Changes> {
    let name = format!("flush-{flush}");
    let path = flush_dir.join(&name);
    std::fs::write(&path, b"")?;
    let state = shared.state.lock().expect("monitor state lock");
    let (mut state, timeout) = shared
        .flushed
        .wait_timeout_while(state, ANSWER_TIMEOUT, |state| {
            !state.flushed.contains(&name)
        })
        .expect("monitor state lock");
    state.flushed.clear();
    state.last_question = Some(Instant::now());
    let _ = std::fs::remove_file(&path);
    let lost = match (&state.lost, timeout.timed_out()) {
        (_, true) => Some("the file watcher did not answer in time".to_string()),
        (Some((_, reason)), false) => Some(reason.clone()),
        (None, false) => None,
    };
    Ok(Changes {
        seq: state.seq,
        token: state.token.clone(),
        lost,
        paths: state.dirty.keys().cloned().collect(),
    })
}

/// Returns a new index token, unique per write.
pub(crate) fn new_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{:x}", std::process::id())
}
