//! Instructions that change only the image config: ENV, LABEL, USER, CMD,
//! ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD and
//! MAINTAINER.

use super::Failure;
use super::dispatch::{Dispatcher, StageState, exposed_ports, with_shell};
use crate::ast::Node;
use crate::instructions::{CommandLine, Instruction, KeyValue};
use strata_llb::image::EmptyObject;

/// Applies `instruction` to the config and returns its history text.
pub(crate) fn apply(
    dispatcher: &Dispatcher<'_>,
    state: &mut StageState,
    node: &Node,
    instruction: &Instruction,
) -> Result<String, Failure> {
    Ok(match instruction {
        Instruction::Env(pairs) => {
            let pairs = expand_pairs(dispatcher, state, node, pairs)?;
            for (key, value) in &pairs {
                state.config.config.set_env(key, value);
            }
            format!("ENV {}", join_pairs(&pairs))
        }
        Instruction::Label(pairs) => {
            let pairs = expand_pairs(dispatcher, state, node, pairs)?;
            let labels = state
                .config
                .config
                .labels
                .get_or_insert_with(Default::default);
            for (key, value) in &pairs {
                labels.insert(key.clone(), value.clone());
            }
            format!("LABEL {}", join_pairs(&pairs))
        }
        Instruction::User(user) => {
            let user = dispatcher.expand(state, node, user)?;
            state.config.config.user = Some(user.clone());
            format!("USER {user}")
        }
        Instruction::Cmd(command) => {
            let args = command_args(state, command);
            state.config.config.cmd = Some(args.clone());
            state.cmd_set = true;
            format!("CMD {}", go_quoted(&args))
        }
        Instruction::Entrypoint(command) => {
            let args = command_args(state, command);
            state.config.config.entrypoint = Some(args.clone());
            if !state.cmd_set {
                state.config.config.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quoted(&args))
        }
        Instruction::Expose(ports) => {
            let ports = expand_all(dispatcher, state, node, ports)?;
            let exposed = exposed_ports(node, &ports)?;
            let keys: Vec<String> = exposed.keys().cloned().collect();
            state
                .config
                .config
                .exposed_ports
                .get_or_insert_with(Default::default)
                .extend(exposed);
            format!("EXPOSE {}", keys.join(" "))
        }
        Instruction::Volume(volumes) => {
            let volumes = expand_all(dispatcher, state, node, volumes)?;
            let set = state
                .config
                .config
                .volumes
                .get_or_insert_with(Default::default);
            for volume in &volumes {
                if volume.trim().is_empty() {
                    return Err(Failure::at(
                        node,
                        "VOLUME specified can not be an empty string",
                    ));
                }
                set.insert(volume.clone(), EmptyObject {});
            }
            format!("VOLUME [{}]", volumes.join(" "))
        }
        Instruction::StopSignal(signal) => {
            let signal = dispatcher.expand(state, node, signal)?;
            check_signal(node, &signal)?;
            state.config.config.stop_signal = Some(signal.clone());
            format!("STOPSIGNAL {signal}")
        }
        Instruction::Shell(shell) => {
            state.config.config.shell = Some(shell.clone());
            format!("SHELL [{}]", shell.join(" "))
        }
        Instruction::Healthcheck(health) => {
            state.config.config.healthcheck = Some(health.clone());
            format!(
                "HEALTHCHECK {}",
                go_quoted(health.test.as_deref().unwrap_or_default())
            )
        }
        Instruction::OnBuild(trigger) => {
            state
                .config
                .config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(trigger.clone());
            format!("ONBUILD {trigger}")
        }
        Instruction::Maintainer(author) => {
            state.config.author = Some(author.clone());
            format!("MAINTAINER {author}")
        }
        Instruction::From(_)
        | Instruction::Arg(_)
        | Instruction::Run(_)
        | Instruction::Copy(_)
        | Instruction::Workdir(_) => unreachable!("dispatched with a filesystem change"),
    })
}

/// Expands every key and value against the environment from before the
/// instruction, so `ENV a=1 b=$a` sees the old `a`.
fn expand_pairs(
    dispatcher: &Dispatcher<'_>,
    state: &StageState,
    node: &Node,
    pairs: &[KeyValue],
) -> Result<Vec<(String, String)>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            let key = dispatcher.expand(state, node, &pair.key)?;
            let value = dispatcher.expand(state, node, &pair.value)?;
            Ok((key, value))
        })
        .collect()
}

fn expand_all(
    dispatcher: &Dispatcher<'_>,
    state: &StageState,
    node: &Node,
    words: &[String],
) -> Result<Vec<String>, Failure> {
    words
        .iter()
        .map(|w| dispatcher.expand(state, node, w))
        .collect()
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

fn command_args(state: &StageState, command: &CommandLine) -> Vec<String> {
    match command {
        CommandLine::Exec(args) => args.clone(),
        CommandLine::Shell(text) => with_shell(state, text),
    }
}

/// Formats a list as Go's `%q` prints a string slice, which is how
/// BuildKit writes CMD and ENTRYPOINT into the history.
fn go_quoted(args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect();
    format!("[{}]", quoted.join(" "))
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Accepts a signal number, a name with or without `SIG`, or
/// `SIGRTMIN+n`/`SIGRTMAX-n`, as Docker's signal parser does.
fn check_signal(node: &Node, signal: &str) -> Result<(), Failure> {
    if let Ok(number) = signal.parse::<u32>() {
        if (1..=64).contains(&number) {
            return Ok(());
        }
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = ["RTMIN", "RTMAX"].iter().any(|base| {
        name.strip_prefix(base).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(['+', '-'])
                    .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 30))
        })
    });
    if SIGNALS.contains(&name) || realtime {
        return Ok(());
    }
    Err(Failure::at(
        node,
        format!("Invalid signal: `{signal}`; use a name like `SIGTERM` or a number like `15`"),
    ))
}
