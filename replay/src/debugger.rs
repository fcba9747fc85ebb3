//! The debugger's commands: parsing a line, and running it on a session.

use std::fmt::Write as _;

use crate::log::{KINDS, RunEvent};
use crate::session::{Session, SessionError, Stepped};
use crate::view;

/// Where [`Command::Continue`] stops, before applying the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breakpoint {
    /// The event with this index.
    Event(usize),
    /// Any event of this kind (see [`RunEvent::kind`]).
    Kind(&'static str),
}

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Apply the next `n` events.
    Step(usize),
    /// Apply events until a breakpoint, the first violation or the end.
    Continue,
    /// Add a breakpoint.
    Break(Breakpoint),
    /// Remove every breakpoint.
    Delete,
    /// Move to a position (back means replaying from the start).
    Goto(usize),
    /// Where the session is.
    Where,
    /// List the events from `from` (default: a few before the position),
    /// `count` of them.
    Events {
        /// First index listed.
        from: Option<usize>,
        /// How many.
        count: usize,
    },
    /// One line per sled.
    Sleds,
    /// One sled in full.
    Sled(usize),
    /// The messages in flight.
    Flight,
    /// One message in flight, decoded.
    Message(usize),
    /// Nexus's view.
    Nexus,
    /// What changed between two positions.
    Diff(usize, usize),
    /// The commands.
    Help,
    /// Leave.
    Quit,
}

/// The commands, as `help` prints them.
pub const HELP: &str = "\
step [N]        s   apply the next N events (default 1)
continue        c   run to a breakpoint, the first violation, or the end
break N|KIND    b   stop before event N, or before any event of KIND
                    (Deliver, NexusPoll, Crash, Inject, Liveness, ...)
delete              remove every breakpoint
goto N          g   go to position N (after N events; 0 = the rack as built)
where           w   the position, the next event, the violation if any
events [N [M]]  e   list M events (default 10) from event N
sleds               one line per sled
sled N              sled N in full: disk, status, counters, alarms
flight          f   the messages in flight
message N       m   message N in flight, decoded (shares redacted)
nexus           n   Nexus: members, pending epoch, commits
diff A B        d   what changed between positions A and B
help            h   this list
quit            q   leave
";

impl Command {
    /// Reads one command line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else {
            return Err("no command (try help)".to_owned());
        };
        let args: Vec<&str> = words.collect();
        let number = |i: usize| -> Result<Option<usize>, String> {
            args.get(i)
                .map(|word| word.parse().map_err(|_| format!("not a number: {word}")))
                .transpose()
        };
        let required = |i: usize| -> Result<usize, String> {
            number(i)?.ok_or_else(|| format!("{name} needs a number"))
        };
        let command = match name {
            "step" | "s" => Self::Step(number(0)?.unwrap_or(1)),
            "continue" | "c" => Self::Continue,
            "break" | "b" => {
                let Some(&what) = args.first() else {
                    return Err("break needs an event index or a kind".to_owned());
                };
                match what.parse() {
                    Ok(index) => Self::Break(Breakpoint::Event(index)),
                    Err(_) => {
                        let kind = KINDS
                            .iter()
                            .find(|kind| kind.eq_ignore_ascii_case(what))
                            .ok_or_else(|| {
                                format!("no event kind {what}; kinds: {}", KINDS.join(", "))
                            })?;
                        Self::Break(Breakpoint::Kind(kind))
                    }
                }
            }
            "delete" => Self::Delete,
            "goto" | "g" => Self::Goto(required(0)?),
            "where" | "w" => Self::Where,
            "events" | "e" => Self::Events {
                from: number(0)?,
                count: number(1)?.unwrap_or(10),
            },
            "sleds" => Self::Sleds,
            "sled" => Self::Sled(required(0)?),
            "flight" | "f" => Self::Flight,
            "message" | "m" => Self::Message(required(0)?),
            "nexus" | "n" => Self::Nexus,
            "diff" | "d" => Self::Diff(required(0)?, required(1)?),
            "help" | "h" => Self::Help,
            "quit" | "q" | "exit" => Self::Quit,
            _ => return Err(format!("no command {name} (try help)")),
        };
        Ok(command)
    }
}

/// A session and its breakpoints.
pub struct Debugger<const N: usize> {
    session: Session<N>,
    breakpoints: Vec<Breakpoint>,
}

impl<const N: usize> Debugger<N> {
    /// A debugger at position 0 of `session`.
    pub fn new(session: Session<N>) -> Self {
        Self {
            session,
            breakpoints: Vec::new(),
        }
    }

    /// Runs `command` and returns what it prints.
    pub fn run(&mut self, command: &Command) -> Result<String, SessionError> {
        let cluster = self.session.cluster();
        let out = match command {
            Command::Step(n) => {
                let mut out = String::new();
                for _ in 0..*n {
                    let (line, moved) = self.step();
                    out.push_str(&line);
                    if !moved {
                        break;
                    }
                }
                out
            }
            Command::Continue => self.continue_to_break(),
            Command::Break(breakpoint) => {
                self.breakpoints.push(breakpoint.clone());
                format!("breakpoints: {:?}\n", self.breakpoints)
            }
            Command::Delete => {
                self.breakpoints.clear();
                "no breakpoints\n".to_owned()
            }
            Command::Goto(position) => {
                self.session.goto(*position)?;
                self.where_()
            }
            Command::Where => self.where_(),
            Command::Events { from, count } => self.events(*from, *count),
            Command::Sleds => view::sleds(cluster),
            Command::Sled(index) => {
                view::sled(cluster, *index).unwrap_or_else(|| format!("no sled {index}\n"))
            }
            Command::Flight => view::flight(cluster),
            Command::Message(index) => view::message(cluster, *index)
                .unwrap_or_else(|| format!("no message {index} in flight\n")),
            Command::Nexus => view::nexus(cluster),
            Command::Diff(a, b) => self.diff(*a, *b)?,
            Command::Help => HELP.to_owned(),
            Command::Quit => String::new(),
        };
        Ok(out)
    }

    /// Applies one event; the line it prints, and whether it moved.
    fn step(&mut self) -> (String, bool) {
        let next = self.session.next_event().cloned();
        match (self.session.step(), next) {
            (Stepped::Applied(index), Some(event)) => {
                (format!("[{index}] {}: ok\n", describe(&event)), true)
            }
            (Stepped::Failed(failure), Some(event)) => (
                format!(
                    "[{}] {}: VIOLATION {:?}\n",
                    failure.event,
                    describe(&event),
                    failure.violation
                ),
                true,
            ),
            _ => (self.where_(), false),
        }
    }

    fn continue_to_break(&mut self) -> String {
        let mut out = String::new();
        let mut steps = 0usize;
        loop {
            let position = self.session.position();
            let hit = self.session.next_event().and_then(|event| {
                self.breakpoints.iter().find(|b| match b {
                    Breakpoint::Event(index) => *index == position,
                    Breakpoint::Kind(kind) => event.kind() == *kind,
                })
            });
            if let (Some(breakpoint), true) = (hit, steps > 0) {
                let _ = writeln!(out, "breakpoint {breakpoint:?}, after {steps} events");
                out.push_str(&self.where_());
                return out;
            }
            let (line, moved) = self.step();
            if !moved {
                let _ = writeln!(out, "ran {steps} events");
                out.push_str(&line);
                return out;
            }
            steps += 1;
            if self.session.failure().is_some() {
                out.push_str(&line);
                return out;
            }
        }
    }

    fn where_(&self) -> String {
        let session = &self.session;
        let total = session.log().events.len();
        let mut out = format!("at position {} of {total}", session.position());
        match (session.failure(), session.next_event()) {
            (Some(failure), _) => {
                // A session's failure names one of its own log's events.
                let event = session.log().events.get(failure.event);
                let _ = write!(
                    out,
                    "; stopped after [{}] {}: VIOLATION {:?}",
                    failure.event,
                    event.map_or_else(|| "(no such event)".to_owned(), describe),
                    failure.violation
                );
            }
            (None, Some(event)) => {
                let _ = write!(out, "; next [{}] {}", session.position(), describe(event));
            }
            (None, None) => out.push_str("; the end, every check passed"),
        }
        out.push('\n');
        out
    }

    fn events(&self, from: Option<usize>, count: usize) -> String {
        let events = &self.session.log().events;
        let position = self.session.position();
        let from = from.unwrap_or_else(|| position.saturating_sub(3));
        let mut out = String::new();
        for (index, event) in events.iter().enumerate().skip(from).take(count) {
            let mark = if index == position { "=>" } else { "  " };
            let _ = writeln!(out, "{mark} [{index}] {}", describe(event));
        }
        out
    }

    /// Snapshots at `a` and `b`, diffed; the session goes back where it
    /// was.
    fn diff(&mut self, a: usize, b: usize) -> Result<String, SessionError> {
        let back_to = self.session.position();
        let reached_a = self.session.goto(a)?;
        let before = view::snapshot(self.session.cluster());
        let reached_b = self.session.goto(b)?;
        let after = view::snapshot(self.session.cluster());
        self.session.goto(back_to)?;
        let mut out = String::new();
        if (reached_a, reached_b) != (a, b) {
            let _ = writeln!(
                out,
                "(the run stops at {}: positions past it show it)",
                reached_a.min(reached_b)
            );
        }
        let diff = view::diff(
            &before,
            &after,
            &format!("position {reached_a}"),
            &format!("position {reached_b}"),
        );
        out.push_str(if diff.is_empty() {
            "no difference\n"
        } else {
            &diff
        });
        Ok(out)
    }
}

/// One event, as the debugger prints it.
pub fn describe(event: &RunEvent) -> String {
    match event {
        RunEvent::Act(action) => format!("{action:?}"),
        RunEvent::Inject { from, to, bytes } => format!(
            "Inject {from} -> {to}: {} bytes ({})",
            bytes.len(),
            tq_harness::network::Message {
                from: *from,
                to: *to,
                bytes,
            }
            .kind()
        ),
        RunEvent::Check(check) => format!("Check {check:?}"),
    }
}
