//! A progress bar on standard error for appends and imports that take longer
//! than a second. It appears only when standard error is a terminal, and only
//! once the second has passed, so quick commands, pipes, files and tests see
//! nothing. It never writes to standard output.

use std::io::{self, IsTerminal};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a command runs before the bar appears.
const DELAY: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: ProgressBar,
    /// Dropped (closing the channel) when the work is done.
    done: Option<mpsc::Sender<()>>,
    reveal: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar for standard error, shown after a second if it is a terminal.
    pub fn start() -> Progress {
        Progress::with(
            io::stderr().is_terminal(),
            DELAY,
            ProgressDrawTarget::stderr,
        )
    }

    fn with(
        terminal: bool,
        delay: Duration,
        target: impl FnOnce() -> ProgressDrawTarget + Send + 'static,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} events {msg}")
        {
            bar.set_style(style);
        }
        if !terminal {
            return Progress {
                bar,
                done: None,
                reveal: None,
            };
        }
        let (done, wait) = mpsc::channel::<()>();
        let shown = bar.clone();
        let reveal = thread::spawn(move || {
            if wait.recv_timeout(delay) == Err(RecvTimeoutError::Timeout) {
                shown.set_draw_target(target());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            bar,
            done: Some(done),
            reveal: Some(reveal),
        }
    }

    /// Starts a phase ("validated", "written") over `len` events.
    pub fn phase(&self, message: &'static str, len: u64) {
        self.bar.set_message(message);
        self.bar.set_length(len);
        self.bar.set_position(0);
    }

    pub fn advance(&self, events: u64) {
        self.bar.inc(events);
    }
}

impl engine::Progress for Progress {
    fn phase(&self, message: &'static str, len: u64) {
        Progress::phase(self, message, len);
    }
    fn advance(&self, events: u64) {
        Progress::advance(self, events);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(reveal) = self.reveal.take() {
            let _ = reveal.join();
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let p = Progress::with(terminal, delay, move || {
            ProgressDrawTarget::term_like(Box::new(screen))
        });
        p.phase("validating", 10);
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
        assert!(text.contains("events validating"), "{text:?}");
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
}
