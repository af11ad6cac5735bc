//! What a command that did not succeed exits with: every failure is one `error:` line and
//! an exit code of CLI.md, mapped here (and only here) from the engine's errors.

use std::io;

/// A command that did not succeed, by exit code.
#[derive(Debug)]
pub enum Failure {
    /// 1: input refused; nothing was written.
    Refused(String),
    /// 2: usage error.
    Usage(String),
    /// 3: integrity check failed.
    Integrity(String),
    /// 4: the store is unavailable.
    Unavailable(String),
    /// The reader of standard output went away (`accord log | head`):
    /// not an error, stop quietly.
    BrokenPipe,
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Integrity(_) => 3,
            Failure::Unavailable(_) => 4,
            Failure::BrokenPipe => 0,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m)
            | Failure::Usage(m)
            | Failure::Integrity(m)
            | Failure::Unavailable(m) => m,
            Failure::BrokenPipe => "",
        }
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Failure {
        use engine::Error as E;
        match e {
            E::Refused(r) => Failure::Refused(r.message),
            E::HeadMoved { .. } => Failure::Refused(e.to_string()),
            E::Unavailable { message, .. } => Failure::Unavailable(message),
            E::Integrity { message, .. } => Failure::Integrity(message),
            E::BadArgument(m) => Failure::Usage(m),
            E::Output(e) => e.into(),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Failure::BrokenPipe;
        }
        Failure::Unavailable(format!("cannot write the output: {e}"))
    }
}
