//! `tq-replay LOG`: steps through an event log (see the crate doc).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tq_harness::{DEFAULT_SLEDS, MAX_SLEDS};
use tq_replay::{Command, Debugger, EventLog, Session};

/// Steps through a harness run written as an event log.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The event log (JSON), as the cluster property test or the fuzz
    /// crate's `replay --log` writes it.
    log: PathBuf,
    /// Runs these commands, in order, instead of reading commands from
    /// standard input (`help` lists them).
    #[arg(short = 'e', long = "execute", value_name = "COMMAND")]
    commands: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let log = match EventLog::read(&args.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("tq-replay: {}: {e}", args.log.display());
            return ExitCode::FAILURE;
        }
    };
    // A cluster is large (up to 2.2 MiB, inline): the whole session runs
    // on a thread with room for it.
    tq_test_fixtures::with_big_stack(move || {
        // A capacity other than the two is refused by `Session::new`.
        if log.rack.capacity == DEFAULT_SLEDS {
            debug::<DEFAULT_SLEDS>(log, &args.commands)
        } else {
            debug::<MAX_SLEDS>(log, &args.commands)
        }
    })
}

fn debug<const N: usize>(log: EventLog, commands: &[String]) -> ExitCode {
    println!(
        "{}: {} events, {} sleds ({} members, {}), seed {}",
        log.source,
        log.events.len(),
        log.rack.sleds,
        log.rack.members,
        if log.rack.lrtq_seed.is_some() {
            "LRTQ"
        } else {
            "fresh"
        },
        log.rack.seed,
    );
    let mut debugger = match Session::<N>::new(log) {
        Ok(session) => Debugger::new(session),
        Err(e) => {
            eprintln!("tq-replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut run = |line: &str| -> bool {
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(e) => {
                println!("{e}");
                return true;
            }
        };
        match debugger.run(&command) {
            Ok(out) => print!("{out}"),
            Err(e) => println!("{e}"),
        }
        command != Command::Quit
    };
    if !commands.is_empty() {
        for line in commands {
            println!("(tq-replay) {line}");
            if !run(line) {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("(tq-replay) ");
            let _ = std::io::stdout().flush();
        }
        let Some(Ok(line)) = lines.next() else {
            return ExitCode::SUCCESS;
        };
        if line.trim().is_empty() {
            continue;
        }
        if !interactive {
            println!("(tq-replay) {line}");
        }
        if !run(&line) {
            return ExitCode::SUCCESS;
        }
    }
}
