//! Running a command as a fresh process and measuring it: wall time, and the
//! child's own peak resident memory from `wait4` (not `RUSAGE_CHILDREN`,
//! which would mix in every earlier child). Also page-cache eviction and
//! sizes on disk.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a command may run before it is killed, unless [`Run::timeout`]
/// says otherwise: a hung command must not hang the benchmark.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

/// One finished process.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub wall: Duration,
    /// Peak resident set size of the process itself, in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Standard output, unless it was sent to a file.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Killed by the watchdog after the timeout.
    pub timed_out: Option<Duration>,
}

impl Outcome {
    pub fn millis(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0
    }

    pub fn rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn describe_end(&self) -> String {
        if let Some(t) = self.timed_out {
            return format!("no exit within {} s: killed (SIGKILL)", t.as_secs());
        }
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "an unknown status".to_string(),
        }
    }
}

/// A command line to run: the program and its arguments, and where its
/// standard output goes (captured in memory, or written to a file).
#[derive(Clone, Debug)]
pub struct Run {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdout_to: Option<PathBuf>,
    pub timeout: Duration,
}

impl Run {
    pub fn new(program: &Path, args: &[&str]) -> Run {
        Run {
            program: program.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdout_to: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Run {
        self.timeout = timeout;
        self
    }

    pub fn stdout_to(mut self, path: &Path) -> Run {
        self.stdout_to = Some(path.to_path_buf());
        self
    }

    /// The command as a person would type it (for messages and the report).
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        if let Some(p) = &self.stdout_to {
            s.push_str(&format!(" > {}", p.display()));
        }
        s
    }

    /// Runs it once as a fresh process and measures it, whatever its exit.
    pub fn measure(&self) -> io::Result<Outcome> {
        let stdout = match &self.stdout_to {
            Some(p) => Stdio::from(File::create(p)?),
            None => Stdio::piped(),
        };
        let started = Instant::now();
        let mut child = Command::new(&self.program)
            .args(self.args.iter().map(OsStr::new))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", self.program.display()),
                )
            })?;
        let out_reader = child.stdout.take().map(drain);
        let err_reader = child.stderr.take().map(drain);
        let pid = child.id() as libc::pid_t;
        let watchdog = Watchdog::start(pid, self.timeout);
        // Wait for the exit without reaping, so that the watchdog can never
        // signal a pid that has been reused; then stop it and reap.
        wait_exited(pid)?;
        let wall = started.elapsed();
        let timed_out = watchdog.stop().then_some(self.timeout);
        let (status, usage) = wait4(pid)?;
        // The child is reaped by `wait4`; `child` is dropped without a wait.
        drop(child);
        let stdout = out_reader.map(join).transpose()?.unwrap_or_default();
        let stderr = err_reader.map(join).transpose()?.unwrap_or_default();
        let (code, signal) = if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        };
        Ok(Outcome {
            wall,
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            code,
            signal,
            stdout,
            stderr,
            timed_out,
        })
    }

    /// Runs it and fails, with its standard error, unless it exits 0.
    pub fn measure_ok(&self) -> Result<Outcome, String> {
        let o = self
            .measure()
            .map_err(|e| format!("{}: {e}", self.display()))?;
        if !o.success() {
            return Err(format!(
                "`{}` failed with {}:\n{}",
                self.display(),
                o.describe_end(),
                String::from_utf8_lossy(&o.stderr).trim_end()
            ));
        }
        Ok(o)
    }

    /// Runs it `runs` times (each must exit 0): the median wall time in ms and the largest
    /// peak RSS in KiB.
    pub fn measure_median(&self, runs: usize) -> Result<(f64, u64), String> {
        let (mut times, mut rss) = (Vec::with_capacity(runs), 0);
        for _ in 0..runs {
            let o = self.measure_ok()?;
            times.push(o.millis());
            rss = rss.max(o.max_rss_kib);
        }
        Ok((median(&times), rss))
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)?;
        Ok(buf)
    })
}

fn join(h: thread::JoinHandle<io::Result<Vec<u8>>>) -> io::Result<Vec<u8>> {
    h.join()
        .unwrap_or_else(|_| Err(io::Error::other("output reader thread panicked")))
}

/// Kills a child that runs past its timeout.
struct Watchdog {
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: libc::pid_t, timeout: Duration) -> Watchdog {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let shared = Arc::clone(&done);
        let thread = thread::spawn(move || {
            let (lock, cv) = &*shared;
            let deadline = Instant::now() + timeout;
            let mut finished = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !*finished {
                let now = Instant::now();
                if now >= deadline {
                    // SAFETY: plain syscall. The child has not been reaped
                    // (`stop` must take this lock first), so `pid` is still it.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
                finished = cv
                    .wait_timeout(finished, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            false
        });
        Watchdog { done, thread }
    }

    /// Stops the watchdog; true if it killed the child.
    fn stop(self) -> bool {
        let (lock, cv) = &*self.done;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
        self.thread.join().unwrap_or(false)
    }
}

/// Waits until a child has exited, leaving it unreaped (`WNOWAIT`).
fn wait_exited(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: `siginfo_t` is plain old data; all-zero bytes are valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own unreaped child; `info` is valid for writes.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps one child and returns its wait status and its own usage.
fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child; both pointers are valid
        // for writes for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The sum of the sizes of the files under `dir`, in bytes.
pub fn size_on_disk(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for f in files_under(dir)? {
        total += std::fs::metadata(&f)?.len();
    }
    Ok(total)
}

/// Drops the files under `dir` from the page cache, so that the next
/// process reads them from the disk: each file is fsynced (dirty pages
/// cannot be dropped) and then advised `POSIX_FADV_DONTNEED`. No root
/// needed. Returns the number of files.
pub fn evict(dir: &Path) -> io::Result<usize> {
    let files = files_under(dir)?;
    for f in &files {
        let file = File::open(f)?;
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `file` for this scope.
        if unsafe { libc::fsync(fd) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above; offset 0 and length 0 mean the whole file.
        let r = unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
    }
    Ok(files.len())
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn measures_a_child_and_its_failure() {
        let ok = Run::new(Path::new("sh"), &["-c", "echo hi; echo err >&2"])
            .measure_ok()
            .unwrap();
        assert_eq!(ok.stdout, b"hi\n");
        assert_eq!(ok.stderr, b"err\n");
        assert!(ok.max_rss_kib > 0);
        let bad = Run::new(Path::new("sh"), &["-c", "echo broken >&2; exit 3"]).measure_ok();
        let message = bad.unwrap_err();
        assert!(
            message.contains("exit code 3") && message.contains("broken"),
            "{message}"
        );
        let missing = Run::new(Path::new("/nonexistent/tool"), &[]).measure_ok();
        assert!(missing.is_err());
    }

    #[test]
    fn kills_a_hung_child() {
        let hung = Run::new(Path::new("sleep"), &["30"])
            .timeout(Duration::from_millis(200))
            .measure()
            .unwrap();
        assert_eq!(hung.timed_out, Some(Duration::from_millis(200)));
        assert_eq!(hung.signal, Some(libc::SIGKILL));
        assert!(hung.wall < Duration::from_secs(10));
    }

    #[test]
    fn evicts_and_sizes_a_directory() {
        let dir = std::env::temp_dir().join(format!("accord-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), b"12345").unwrap();
        std::fs::write(dir.join("sub/b"), b"678").unwrap();
        assert_eq!(size_on_disk(&dir).unwrap(), 8);
        assert_eq!(evict(&dir).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
