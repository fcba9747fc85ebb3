//! Live progress: on a terminal, a spinner per phase (`indicatif`) showing
//! the driver's latest event, and the notable events printed above it;
//! elsewhere (CI logs), one plain line per phase and notable event.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tq_driver::DriverEvent;

/// The display. Cheap to clone: the driver's observer holds a clone, and
/// all clones show the current phase's spinner.
#[derive(Clone)]
pub struct Progress {
    bar: Arc<Mutex<Option<ProgressBar>>>,
    started: Instant,
}

impl Progress {
    /// A display on stderr; spinners only if it is a terminal.
    pub fn new() -> Self {
        Self {
            bar: Arc::default(),
            started: Instant::now(),
        }
    }

    fn bar(&self) -> Option<ProgressBar> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fancy() -> bool {
        std::io::stderr().is_terminal()
    }

    /// A phase begins.
    pub fn begin(&self, phase: &str) {
        if Self::fancy() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(phase.to_owned());
            bar.enable_steady_tick(Duration::from_millis(80));
            *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        } else {
            eprintln!("[{:>6.2}s] {phase} ...", self.elapsed());
        }
    }

    /// What is going on now (replaces the spinner's message).
    pub fn status(&self, text: &str) {
        if let Some(bar) = self.bar() {
            bar.set_message(text.to_owned());
        }
    }

    /// Something worth keeping on screen.
    pub fn note(&self, text: &str) {
        match self.bar() {
            Some(bar) => bar.println(format!("    {text}")),
            None => eprintln!("[{:>6.2}s]     {text}", self.elapsed()),
        }
    }

    /// A fault the demo injects on purpose, announced as such so that what
    /// follows from it is not read as a failure.
    pub fn inject(&self, what: &str) {
        self.note(&format!("injecting: {what}"));
    }

    /// A driver event: notable ones are kept, the rest shown in passing.
    pub fn event(&self, event: &DriverEvent) {
        let text = event.to_string();
        match event {
            DriverEvent::Started { .. }
            | DriverEvent::Committed { .. }
            | DriverEvent::Abandoned { .. }
            | DriverEvent::AbandonHeld { .. }
            | DriverEvent::Stuck { .. }
            | DriverEvent::Unreachable { .. }
            | DriverEvent::Proxied { .. }
            | DriverEvent::PreparedAndCommitted { .. }
            | DriverEvent::Refused { .. } => self.note(&text),
            DriverEvent::Running { .. }
            | DriverEvent::Acks { .. }
            | DriverEvent::Confirmed { .. } => self.status(&text),
        }
    }

    /// The phase ended, after `took`.
    pub fn end(&self, phase: &str, ok: bool, took: Duration) {
        let mark = if ok { "ok" } else { "FAILED" };
        let line = format!("{phase}: {mark} in {:.2} s", took.as_secs_f64());
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take();
        match bar {
            Some(bar) => bar.finish_with_message(format!("{mark} in {:.2} s", took.as_secs_f64())),
            None => eprintln!("[{:>6.2}s] {line}", self.elapsed()),
        }
    }

    /// The phase under way (if any) stopped with an error.
    pub fn fail(&self) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(bar) = bar {
            bar.abandon_with_message("FAILED");
        }
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
