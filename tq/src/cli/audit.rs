//! `tq audit`: a sled's audit log (tq-std's `audit`), read from its ledger
//! drives; the sled may be running.
//!
//! ```text
//! tq audit show   --config sled.toml [--copy 1]    # every record, readably
//! tq audit verify --config sled.toml               # both copies' chains
//! tq audit verify --dir /m2-0/tq/audit --dir /m2-1/tq/audit
//! ```
//!
//! `verify` exits 1 naming the first bad record of a copy, or if the
//! copies end at different records (one was cut, or is behind); it prints
//! each copy's head (last sequence number and hash), the value to keep
//! elsewhere to catch a log later cut at its end.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat};
use clap::{Args, Subcommand};
use tq::config::SledConfig;
use tq_std::audit::audit_dirs;
use tq_std::audit::record::Record;
use tq_std::audit::verify::{Location, Verdict, verify_dir};

use super::report::Report;

/// `tq audit`'s arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Where the log is: the sled's config, or the audit directories.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["config", "dir"])))]
pub struct Where {
    /// The sled's config file (its ledger directories hold the log).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An audit directory (`audit/` beside a ledger copy); once per copy.
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,
}

/// `tq audit`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prints every record of one copy, then its verdict.
    Show {
        /// The log.
        #[command(flatten)]
        at: Where,
        /// Which copy (0 or 1).
        #[arg(long, default_value_t = 0)]
        copy: usize,
    },
    /// Checks the hash chain of every copy and that they agree; exit code
    /// 1 naming the first bad record otherwise.
    Verify {
        /// The log.
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Debug, thiserror::Error)]
enum AuditCliError {
    #[error(transparent)]
    Config(#[from] tq::config::ConfigError),
    #[error("no copy {0}: the log has copies 0 to {1}")]
    NoCopy(usize, usize),
}

fn dirs(at: &Where) -> Result<Vec<PathBuf>, AuditCliError> {
    match &at.config {
        Some(path) => Ok(audit_dirs(&SledConfig::load(path)?.ledger_paths()).to_vec()),
        None => Ok(at.dir.clone()),
    }
}

/// Runs `tq audit`.
pub fn run(args: AuditArgs) -> ExitCode {
    super::logging::init_with_default("warn");
    let outcome = match args.command {
        AuditCommand::Show { at, copy } => dirs(&at).and_then(|dirs| show(&dirs, copy)),
        AuditCommand::Verify { at } => dirs(&at).map(|dirs| verify(&dirs)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => Report::new("audit", e).exit(),
    }
}

/// A record's time, as RFC 3339 in UTC.
fn time(record: &Record) -> String {
    i64::try_from(record.time_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{} ms", record.time_ms),
            |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
        )
}

/// The event as `name key=value ...`.
fn event_text(record: &Record) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&record.event) else {
        return format!("{:?}", record.event);
    };
    let mut text = String::new();
    for (key, value) in &fields {
        let value = match value {
            // An absent reason, relay or epoch says nothing.
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if key == "event" {
            text.insert_str(0, &value);
        } else {
            text.push_str(&format!(" {key}={value}"));
        }
    }
    text
}

fn show(dirs: &[PathBuf], copy: usize) -> Result<bool, AuditCliError> {
    let dir = dirs
        .get(copy)
        .ok_or(AuditCliError::NoCopy(copy, dirs.len().saturating_sub(1)))?;
    let mut out = std::io::stdout().lock();
    // A reader that went away (`| head`) ends the printing, not the check.
    let mut printing = true;
    let verdict = verify_dir(dir, |at: Location, record, _| {
        printing = printing
            && writeln!(
                out,
                "{:>8}  {}  [{}:{}]  {}",
                record.seq,
                time(record),
                at.segment,
                at.line,
                event_text(record)
            )
            .is_ok();
    });
    if !printing {
        return Ok(verdict.bad.is_none());
    }
    let _ = writeln!(out);
    drop(out);
    Ok(print_verdict(copy, dir, &verdict))
}

/// One line on the copy; whether it verifies.
fn print_verdict(copy: usize, dir: &std::path::Path, verdict: &Verdict) -> bool {
    let summary = &verdict.summary;
    let place = format!("copy {copy} ({})", dir.display());
    let head = summary.head.map_or("empty".to_owned(), |(seq, hash)| {
        format!("head seq {seq} hash {hash}")
    });
    let segments = match (summary.segments.first(), summary.segments.last()) {
        (Some(first), Some(last)) => format!("segments {first}..={last}"),
        _ => "no segment".to_owned(),
    };
    let rotated = if summary.oldest_kept > 0 {
        format!(
            ", segments below {} dropped by rotation",
            summary.oldest_kept
        )
    } else {
        String::new()
    };
    if let Some(torn) = summary.torn_tail {
        println!(
            "{place}: torn tail of {} bytes in segment {} (a crashed append; cut at the sled's next start)",
            torn.bytes, torn.segment
        );
    }
    match &verdict.bad {
        None => {
            println!(
                "{place}: ok, {} records, {segments}{rotated}, {head}",
                summary.records
            );
            true
        }
        Some(bad) => {
            println!("{place}: BAD: first bad {bad}");
            false
        }
    }
}

fn verify(dirs: &[PathBuf]) -> bool {
    let verdicts: Vec<Verdict> = dirs
        .iter()
        .map(|dir| verify_dir(dir, |_, _, _| {}))
        .collect();
    let mut ok = true;
    for (copy, (dir, verdict)) in dirs.iter().zip(&verdicts).enumerate() {
        ok &= print_verdict(copy, dir, verdict);
    }
    if let Some((first, rest)) = verdicts.split_first() {
        for (copy, other) in rest.iter().enumerate() {
            if other.summary.head != first.summary.head {
                let seq = |v: &Verdict| v.summary.head.map(|(seq, _)| seq);
                println!(
                    "copies 0 and {} end at different records (seq {:?} and {:?}): one was cut or is behind",
                    copy + 1,
                    seq(first),
                    seq(other)
                );
                ok = false;
            }
        }
    }
    ok
}
