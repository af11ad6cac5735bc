//! A progress bar on standard error for appends, imports and copies that take longer than a
//! second, and what Ctrl-C does meanwhile.
//!
//! The bar appears only when standard error is a terminal, and only once the second has
//! passed, so quick commands, pipes, files and tests see nothing. It never writes to standard
//! output. It moves forward only: the bar spans every step of the command ("reading",
//! "checking", "writing"), and each step counts its events up as they are done.
//!
//! An interrupt (Ctrl-C) clears the bar and ends the command with one line that says what
//! was written, exit 130. While a batch commits, the interrupt waits for it to end (a batch
//! is written whole or not at all), so that the line can say exactly what is durable.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a command runs before the bar appears.
const DELAY: Duration = Duration::from_secs(1);

/// Bar positions per step: the bar is steps x this long.
const PER_STEP: u64 = 1000;

/// The exit code of a command ended by an interrupt (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

/// What the command has done so far, shared with the interrupt handler.
struct State {
    bar: ProgressBar,
    /// The steps the command takes, in order: their names as the engine reports them.
    steps: &'static [&'static str],
    step: usize,
    len: u64,
    pos: u64,
    /// Events of the batch now committing, if one is.
    committing: Option<u64>,
    batches: u64,
    written: u64,
    /// An interrupt came while a batch was committing.
    interrupted: bool,
    /// A store this command created, removed on an interrupt before anything was written.
    created: Option<PathBuf>,
}

impl State {
    fn draw(&self) {
        let step = self.steps.get(self.step).copied().unwrap_or("");
        let verb = match step {
            "read" => "reading",
            "checked" => "checking",
            "written" => "writing",
            other => other,
        };
        let message = match self.committing {
            Some(n) => format!("flushing {} events to disk", group(n)),
            None => format!("{verb} {}/{} events", group(self.pos), group(self.len)),
        };
        let within = if self.committing.is_some() || self.len == 0 {
            PER_STEP
        } else {
            (self.pos.min(self.len) * PER_STEP) / self.len
        };
        self.bar.set_position(self.step as u64 * PER_STEP + within);
        self.bar.set_message(message);
    }

    /// The one line an interrupt leaves.
    fn interrupted_line(&self) -> String {
        if self.batches == 0 {
            "interrupted: nothing was written".to_string()
        } else {
            format!(
                "interrupted: {} events were written, in {} whole batch{}; nothing else was written",
                group(self.written),
                self.batches,
                if self.batches == 1 { "" } else { "es" }
            )
        }
    }

    /// Clears the bar, says what was written and ends the process.
    fn stop(&self) -> ! {
        self.bar.finish_and_clear();
        if self.batches == 0 {
            if let Some(path) = &self.created {
                // Holds no event: nothing of the user's is in it.
                let _ = std::fs::remove_dir_all(path);
            }
        }
        eprintln!("{}", self.interrupted_line());
        std::process::exit(INTERRUPTED);
    }
}

fn group(n: u64) -> String {
    present::human::group_thousands(&n.to_string())
}

/// The command's state that the interrupt handler reads: set by the last `Progress` started.
static CURRENT: OnceLock<Mutex<Option<Arc<Mutex<State>>>>> = OnceLock::new();

fn current() -> &'static Mutex<Option<Arc<Mutex<State>>>> {
    CURRENT.get_or_init(|| Mutex::new(None))
}

/// Installs the Ctrl-C handler once per process.
fn handle_interrupts() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            let state = current().lock().ok().and_then(|c| c.clone());
            let Some(state) = state else {
                eprintln!("interrupted: nothing was written");
                std::process::exit(INTERRUPTED);
            };
            let Ok(mut state) = state.lock() else {
                std::process::exit(INTERRUPTED);
            };
            if state.committing.is_some() {
                // Ends once the batch is durable or refused: see `committed` and `Drop`.
                state.interrupted = true;
            } else {
                state.stop();
            }
        });
    });
}

pub struct Progress {
    state: Arc<Mutex<State>>,
    /// Dropped (closing the channel) when the work is done.
    done: Option<mpsc::Sender<()>>,
    reveal: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar for standard error over `steps` (as the engine names them), shown after a second
    /// if it is a terminal; Ctrl-C is handled from now on.
    pub fn start(steps: &'static [&'static str]) -> Progress {
        handle_interrupts();
        let progress = Progress::with(
            steps,
            io::stderr().is_terminal(),
            DELAY,
            ProgressDrawTarget::stderr,
        );
        if let Ok(mut c) = current().lock() {
            *c = Some(progress.state.clone());
        }
        progress
    }

    /// The steps of an append: parse, validate, write; a dry run does not write.
    pub fn for_append(dry_run: bool) -> Progress {
        if dry_run {
            Progress::start(&["read", "checked"])
        } else {
            Progress::start(&["read", "checked", "written"])
        }
    }

    fn with(
        steps: &'static [&'static str],
        terminal: bool,
        delay: Duration,
        target: impl FnOnce() -> ProgressDrawTarget + Send + 'static,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(steps.len().max(1) as u64 * PER_STEP),
            ProgressDrawTarget::hidden(),
        );
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {msg}") {
            bar.set_style(style);
        }
        let state = Arc::new(Mutex::new(State {
            bar: bar.clone(),
            steps,
            step: 0,
            len: 0,
            pos: 0,
            committing: None,
            batches: 0,
            written: 0,
            interrupted: false,
            created: None,
        }));
        if !terminal {
            return Progress {
                state,
                done: None,
                reveal: None,
            };
        }
        let (done, wait) = mpsc::channel::<()>();
        let reveal = thread::spawn(move || {
            if wait.recv_timeout(delay) == Err(RecvTimeoutError::Timeout) {
                bar.set_draw_target(target());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            state,
            done: Some(done),
            reveal: Some(reveal),
        }
    }

    fn with_state(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.state.lock() {
            f(&mut state);
        }
    }

    /// A store that this command creates: an interrupt before anything is written removes it.
    pub fn created(&self, path: PathBuf) {
        self.with_state(|s| s.created = Some(path));
    }
}

impl engine::Progress for Progress {
    fn phase(&self, message: &'static str, len: u64) {
        self.with_state(|s| {
            // A step the command did not plan for counts as its last one.
            let step = match s.steps.iter().position(|m| *m == message) {
                Some(i) => i,
                None => s.steps.len().saturating_sub(1),
            };
            s.step = step.max(s.step);
            s.len = len;
            s.pos = 0;
            s.draw();
        });
    }
    fn advance(&self, events: u64) {
        self.with_state(|s| {
            s.pos = s.pos.saturating_add(events);
            s.draw();
        });
    }
    fn committing(&self, events: u64) {
        self.with_state(|s| {
            s.committing = Some(events);
            s.draw();
        });
    }
    fn committed(&self) {
        self.with_state(|s| {
            if let Some(n) = s.committing.take() {
                s.batches += 1;
                s.written += n;
            }
            if s.interrupted {
                s.stop();
            }
            s.draw();
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(reveal) = self.reveal.take() {
            let _ = reveal.join();
        }
        self.with_state(|s| {
            // A commit that failed: it wrote nothing, and an interrupt during it ends here.
            s.committing = None;
            if s.interrupted {
                s.stop();
            }
            s.bar.finish_and_clear();
        });
        // The state stays current: an interrupt after the work still says what was written.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Progress as _;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A terminal that records what is drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(terminal: bool, delay: Duration, work: Duration) -> String {
        let screen = Screen::default();
        let drawn = screen.clone();
        let p = Progress::with(&["checked"], terminal, delay, move || {
            ProgressDrawTarget::term_like(Box::new(screen))
        });
        p.phase("checked", 10);
        thread::sleep(work);
        p.advance(10);
        thread::sleep(Duration::from_millis(300));
        drop(p);
        let text = drawn.0.lock().unwrap().clone();
        text
    }

    #[test]
    fn a_slow_command_on_a_terminal_shows_the_bar() {
        let text = run(true, Duration::from_millis(10), Duration::from_millis(300));
        assert!(text.contains("checking 10/10 events"), "{text:?}");
    }

    #[test]
    fn a_quick_command_shows_nothing() {
        let text = run(true, Duration::from_secs(5), Duration::from_millis(10));
        assert!(text.is_empty(), "{text:?}");
    }

    #[test]
    fn without_a_terminal_nothing_is_ever_drawn() {
        let text = run(false, Duration::ZERO, Duration::from_millis(300));
        assert!(text.is_empty(), "{text:?}");
    }

    /// The bar's position and message after each call, as drawn.
    fn trace(p: &Progress) -> (u64, String) {
        let s = p.state.lock().unwrap();
        (s.bar.position(), s.bar.message())
    }

    #[test]
    fn the_bar_only_moves_forward_and_each_step_counts_up() {
        let p = Progress::with(
            &["read", "checked", "written"],
            false,
            DELAY,
            ProgressDrawTarget::hidden,
        );
        let mut seen = Vec::new();
        for step in ["read", "checked", "written"] {
            p.phase(step, 10_000);
            seen.push(trace(&p));
            for _ in 0..10 {
                p.advance(1_000);
                seen.push(trace(&p));
            }
        }
        p.committing(10_000);
        seen.push(trace(&p));
        p.committed();
        seen.push(trace(&p));
        let positions: Vec<u64> = seen.iter().map(|(pos, _)| *pos).collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
        assert_eq!(positions.last(), Some(&3_000));
        let messages: Vec<&str> = seen.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages[0], "reading 0/10,000 events");
        assert_eq!(messages[5], "reading 5,000/10,000 events");
        assert_eq!(messages[11], "checking 0/10,000 events");
        assert_eq!(messages[32], "writing 10,000/10,000 events");
        assert_eq!(messages[33], "flushing 10,000 events to disk");
        // Within a step the count never goes back.
        for w in seen.windows(2) {
            let count = |m: &str| {
                m.split_whitespace()
                    .nth(1)
                    .and_then(|c| c.split('/').next())
                    .map(|c| c.replace(',', "").parse::<u64>().unwrap_or(0))
            };
            let verb = |m: &str| m.split_whitespace().next().unwrap_or("").to_string();
            if verb(&w[0].1) == verb(&w[1].1) && !w[1].1.starts_with("flushing") {
                assert!(count(&w[0].1) <= count(&w[1].1), "{w:?}");
            }
        }
    }

    #[test]
    fn an_interrupt_says_what_was_written() {
        let p = Progress::with(&["written"], false, DELAY, ProgressDrawTarget::hidden);
        assert_eq!(
            p.state.lock().unwrap().interrupted_line(),
            "interrupted: nothing was written"
        );
        p.phase("written", 2_500);
        p.committing(1_500);
        p.committed();
        assert_eq!(
            p.state.lock().unwrap().interrupted_line(),
            "interrupted: 1,500 events were written, in 1 whole batch; nothing else was written"
        );
        p.committing(1_000);
        p.committed();
        assert_eq!(
            p.state.lock().unwrap().interrupted_line(),
            "interrupted: 2,500 events were written, in 2 whole batches; nothing else was written"
        );
    }
}
