//! The error every command returns: a machine-readable `code` for the UI
//! to choose how to present it, and a message for the user.

use serde::Serialize;
use strata_engine::BuildError;
use strata_solver::SolveError;

/// Who can fix an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request, the Dockerfile or its arguments are wrong.
    UserInput,
    /// The machine, the store or another program is not usable.
    Environment,
    /// A bug in Strata.
    Internal,
}

/// An error as the web UI receives it: `{ "code": ..., "message": ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn user_input(message: impl Into<String>) -> CommandError {
        CommandError {
            code: ErrorCode::UserInput,
            message: message.into(),
        }
    }

    pub fn environment(message: impl Into<String>) -> CommandError {
        CommandError {
            code: ErrorCode::Environment,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> CommandError {
        CommandError {
            code: ErrorCode::Internal,
            message: message.into(),
        }
    }
}

/// Store and history failures are environment errors: a full disk, a
/// locked or damaged database.
impl From<anyhow::Error> for CommandError {
    fn from(error: anyhow::Error) -> CommandError {
        CommandError::environment(format!("{error:#}"))
    }
}

impl From<BuildError> for CommandError {
    fn from(error: BuildError) -> CommandError {
        let message = error.to_string();
        match error {
            BuildError::Input(_) | BuildError::Parse(_) => CommandError::user_input(message),
            // A failing step runs the user's command, and a cancel is the
            // user's request.
            BuildError::Step(SolveError::Vertex { .. } | SolveError::Canceled) => {
                CommandError::user_input(message)
            }
            BuildError::Step(SolveError::Definition(_)) => CommandError::internal(message),
            BuildError::Step(SolveError::Execution(_))
            | BuildError::Export(_)
            | BuildError::Environment(_) => CommandError::environment(message),
        }
    }
}

pub type CommandResult<T> = Result<T, CommandError>;
