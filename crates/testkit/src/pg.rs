//! A throwaway PostgreSQL cluster for the tests of the database store: `initdb` and `pg_ctl`
//! (of the machine's PostgreSQL, run as the `postgres` user when the tests run as root) into
//! a temporary directory, listening on a free loopback port with trust authentication, and
//! stopped when dropped. Without PostgreSQL the tests that need it say so and skip, unless
//! `CI=true`, where a missing PostgreSQL fails them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// Where `initdb` and `pg_ctl` are, if anywhere.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args`, as the `postgres` user when we are root (initdb refuses root).
fn run_as(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args).output().expect("run a PostgreSQL program")
}

impl Cluster {
    /// Starts a cluster, or `None` (with a line saying why) when PostgreSQL is not installed
    /// and `CI` is not `true`.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            let why = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}: CI=true needs it (apt-get install postgresql)");
            }
            eprintln!("skipped: {why}");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The postgres user must be able to write there.
        let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
        let data = dir.path().join("data");
        let data_s = data.display().to_string();
        let o = run_as(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.path().display()
        );
        let log = dir.path().join("log").display().to_string();
        let o = run_as(
            &bin,
            "pg_ctl",
            &["-D", &data_s, "-o", &options, "-l", &log, "-w", "start"],
        );
        assert!(
            o.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(Cluster { dir, bin, port })
    }

    /// The URL of the ledger in schema `schema` of the `postgres` database.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?schema={schema}",
            self.port
        )
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the cluster (`mode`: `immediate` is a crash, `fast` a clean stop) and starts it
    /// again with the same options, waiting until it accepts connections.
    pub fn restart(&self, mode: &str) {
        let data = self.data_dir().display().to_string();
        // The server's output goes to the log file: a pipe of ours would be held open by it.
        let log = self.dir.path().join("log").display().to_string();
        let o = run_as(
            &self.bin,
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-m", mode, "-w", "-t", "60", "restart",
            ],
        );
        assert!(
            o.status.success(),
            "pg_ctl restart: {} {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// A client of the `postgres` database, for what a test does behind accord's back.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            ),
            postgres::NoTls,
        )
        .expect("connect to the test cluster")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Cluster {
    /// Stops the cluster at once and removes its files (what dropping it does).
    fn stop(&self) {
        let data = self.data_dir().display().to_string();
        let _ = run_as(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

/// One cluster for every test of a test binary that asks for it, started by the first and
/// stopped when the binary exits; `None` as `Cluster::start` says.
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: std::sync::OnceLock<Option<Cluster>> = std::sync::OnceLock::new();
    extern "C" fn stop_shared() {
        if let Some(Some(c)) = SHARED.get() {
            c.stop();
        }
    }
    extern "C" {
        fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
    }
    SHARED
        .get_or_init(|| {
            let c = Cluster::start();
            if c.is_some() {
                // A static is never dropped: the cluster is stopped when the process exits.
                // SAFETY: `atexit` only records the function, which touches nothing but the
                // static above.
                unsafe {
                    atexit(stop_shared);
                }
            }
            c
        })
        .as_ref()
}
