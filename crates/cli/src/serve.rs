//! `accord serve` and `accord token new`: the flags turned into the server's settings, the
//! one `listening on` line on standard output, and the request log on standard error.

use std::io::Write;
use std::path::PathBuf;

use crate::args::{TokenCommand, TokenRole};
use crate::failure::Failure;

/// The flags of `accord serve`.
pub(crate) struct Serve {
    pub listen: String,
    pub ledgers: Vec<String>,
    pub tokens: Option<PathBuf>,
    pub max_body: usize,
    pub cors: Option<String>,
    /// The store of `--store` / `$ACCORD_STORE` / `./accord.db`, served as `main` when no
    /// `--ledger` is given.
    pub store: PathBuf,
    /// `--store` was given on the command line (not only in the environment).
    pub store_flag: bool,
}

pub(crate) fn serve(flags: Serve, out: &mut dyn Write) -> Result<(), Failure> {
    let mut ledgers = Vec::new();
    for spec in &flags.ledgers {
        let (name, store) = spec.split_once('=').ok_or_else(|| {
            Failure::Usage(format!(
                "--ledger {spec:?}: use NAME=STORE, such as --ledger deals=deals.db"
            ))
        })?;
        if store.is_empty() {
            return Err(Failure::Usage(format!("--ledger {spec:?}: STORE is empty")));
        }
        ledgers.push((name.to_string(), PathBuf::from(store)));
    }
    if ledgers.is_empty() {
        ledgers.push(("main".to_string(), flags.store));
    } else if flags.store_flag {
        return Err(Failure::Usage(
            "--store and --ledger together: name every store with --ledger NAME=STORE (--store alone serves one store as `main`)".into(),
        ));
    }
    if flags.max_body == 0 {
        return Err(Failure::Usage("--max-body must be at least 1 byte".into()));
    }
    let settings = server::Settings {
        listen: flags.listen,
        ledgers,
        tokens: flags.tokens,
        max_body: flags.max_body,
        cors: flags.cors,
        config: crate::ledger::config(),
        // Tests shorten them (`ACCORD_HEADER_TIMEOUT`, `ACCORD_IDLE_TIMEOUT`, in seconds).
        header_timeout: seconds("ACCORD_HEADER_TIMEOUT").unwrap_or(server::HEADER_TIMEOUT),
        idle_timeout: seconds("ACCORD_IDLE_TIMEOUT").unwrap_or(server::IDLE_TIMEOUT),
    };
    let server = server::Server::bind(settings).map_err(start_failure)?;
    let mut said = Ok(());
    let served = server.run(
        |addr| {
            said = writeln!(out, "listening on http://{addr}").and_then(|()| out.flush());
        },
        Box::new(|line| {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            let _ = writeln!(std::io::stderr(), "{now} {line}");
        }),
    );
    served.map_err(start_failure)?;
    said?;
    Ok(())
}

fn seconds(name: &str) -> Option<std::time::Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map(std::time::Duration::from_secs)
}

fn start_failure(e: server::StartError) -> Failure {
    match e {
        server::StartError::Usage(m) => Failure::Usage(m),
        server::StartError::Unavailable(m) => Failure::Unavailable(m),
    }
}

pub(crate) fn token(command: TokenCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        TokenCommand::New {
            role,
            ledgers,
            label,
        } => {
            let role = match role {
                TokenRole::Read => server::Role::Read,
                TokenRole::Write => server::Role::Write,
                TokenRole::Admin => server::Role::Admin,
            };
            let (token, line) = server::new_token(role, ledgers.as_deref(), label.as_deref())
                .map_err(Failure::Usage)?;
            writeln!(out, "{token}")?;
            writeln!(out, "{line}")?;
            Ok(())
        }
    }
}
