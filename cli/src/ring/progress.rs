//! A progress indicator for long rebalances: an elapsed-time spinner on stderr, shown only
//! when stderr is a terminal so that scripts and CI logs stay clean.
//!
//! The rebalancer reports no intermediate progress, so the indicator shows that work is under
//! way and for how long — what an operator watching a multi-minute rebalance of a large ring
//! needs to know that it has not hung.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs while alive; dropping it stops the thread and clears the line.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner labelled `label` if stderr is a terminal; `None` otherwise.
    pub fn start(label: &str) -> Option<Spinner> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let label = label.to_string();
        let thread = std::thread::spawn(move || {
            let frames = ['|', '/', '-', '\\'];
            let started = Instant::now();
            // Quiet for the first half second: fast rebalances should not flicker.
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let elapsed = started.elapsed();
                if elapsed < Duration::from_millis(500) {
                    continue;
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r{} {label}… {:.1}s",
                    frames[i % frames.len()],
                    elapsed.as_secs_f64()
                );
                let _ = err.flush();
                i += 1;
            }
            if i > 0 {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        });
        Some(Spinner {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
