//! `tq demo` run the way a user runs it: the built binary as a process, a
//! small rack, its exit code and the summary it prints. Both ways of
//! running the sleds: tasks of the demo's process, and `--processes`
//! (each sled its own `tq sled` process, reached only over the network).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::process::Command;

const TQ: &str = env!("CARGO_BIN_EXE_tq");

/// Runs `tq demo args...`; its exit status and stdout (the summary).
fn demo(args: &[&str]) -> (std::process::ExitStatus, String) {
    let (status, stdout, _) = demo_with_progress(args);
    (status, stdout)
}

/// [`demo`], and its stderr (the progress).
fn demo_with_progress(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = Command::new(TQ)
        .arg("demo")
        .args(args)
        .output()
        .expect("tq runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        eprintln!("{stderr}");
        eprintln!("{stdout}");
    }
    (out.status, stdout, stderr)
}

/// The value next to the counter `name` in the summary's tables.
fn count(summary: &str, name: &str) -> u64 {
    let value = summary.lines().find_map(|line| {
        let cells: Vec<&str> = line.split(['│', '┆']).map(str::trim).collect();
        let at = cells.iter().position(|c| *c == name)?;
        cells.get(at + 1)?.parse().ok()
    });
    value.unwrap_or_else(|| panic!("no counter {name:?} in:\n{summary}"))
}

/// The progress announces the faults it injects, and the sleds' logs
/// (with the injected fault's ERROR line) stay out of it.
fn check_progress(progress: &str) {
    assert!(
        progress.contains("injecting: ledger write failure on sled"),
        "{progress}"
    );
    assert!(progress.contains("injecting: power cut"), "{progress}");
    assert!(
        progress.contains("boots an SP image not in the reference measurements"),
        "{progress}"
    );
    assert!(!progress.contains("ERROR"), "{progress}");
}

/// The summary's row for `label`, its cells trimmed (`┆` separates them).
fn row<'a>(summary: &'a str, label: &str) -> Vec<&'a str> {
    let line = summary
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{summary}"));
    line.trim_matches(|c| c == '│' || c == ' ')
        .split('┆')
        .map(str::trim)
        .collect()
}

/// What every passing summary shows.
fn check_summary(summary: &str, lrtq: usize) {
    let last = summary.lines().rev().find(|l| !l.trim().is_empty());
    assert!(
        last.is_some_and(|l| l.starts_with("PASSED:") && l.contains(" 0 failed")),
        "{summary}"
    );
    assert!(!summary.contains("FAILED"), "{summary}");
    assert_eq!(row(summary, "alarms (must be 0)")[1], "0");
    // The anomaly counters are shown, and an honest run leaves them at 0
    // (the injected ledger fault's are explained, and checked, apart).
    for anomaly in [
        "core: unexpected",
        "core: invalid_share_digest",
        "core: undecodable",
        "core: false_claim",
    ] {
        assert_eq!(count(summary, anomaly), 0, "{summary}");
    }
    assert!(
        row(summary, "no anomaly counter but the injected faults'")[0].ends_with(": none"),
        "{summary}"
    );
    assert!(summary.contains("\nlogs: "), "{summary}");
    // Every phase ran, with the membership the scenario implies.
    let members = |phase: &str| row(summary, phase)[3].parse::<usize>().unwrap();
    assert_eq!(members("LRTQ upgrade"), lrtq);
    assert_eq!(members("add 2 sleds"), lrtq + 2);
    assert_eq!(members("remove 1 sled"), lrtq + 1);
    assert_eq!(members("cold boot"), lrtq + 1);
    assert_eq!(members("rogue firmware"), lrtq + 1);
    for check in [
        "the rack unlocked without sled 1",
        "sled 1 refused by its peers",
        "sled 1 admitted after the update, and unlocked",
        "its peers' status shows what it runs: sp 1.0.1, host 1.0.0",
    ] {
        assert_eq!(row(summary, check)[1], "ok", "{check}: {summary}");
    }
    // One fingerprint per committed epoch, each agreed on by all asked.
    let prints: Vec<Vec<&str>> = summary
        .lines()
        .filter(|l| l.len() > 64 && l.contains('┆'))
        .map(|l| {
            l.trim_matches(|c| c == '│' || c == ' ')
                .split('┆')
                .map(str::trim)
                .collect()
        })
        .filter(|cells: &Vec<&str>| {
            cells
                .get(1)
                .is_some_and(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .collect();
    assert!(prints.len() >= 5, "{summary}");
    for cells in &prints {
        let (agreeing, asked) = cells[2].split_once('/').expect("n/m");
        assert_eq!(agreeing, asked, "{summary}");
    }
    let distinct: std::collections::BTreeSet<&str> = prints.iter().map(|c| c[1]).collect();
    assert_eq!(distinct.len(), prints.len(), "{summary}");
}

#[test]
fn demo_of_a_small_rack_passes_every_check() {
    let (status, summary, progress) = demo_with_progress(&["--sleds", "4", "--seed", "7"]);
    assert_eq!(status.code(), Some(0), "{summary}");
    check_summary(&summary, 4);
    check_progress(&progress);
    // In-process, every layer's anomalies are shown, the ledger's too.
    assert_eq!(count(&summary, "net: handshake_refused_unknown_issuer"), 0);
    // The rogue sled's refusals, counted and explained by its injection.
    assert!(
        count(&summary, "net: handshake_refused_unknown_measurement") > 0,
        "{summary}"
    );
    assert!(count(&summary, "ledger: writes_failed") > 0, "{summary}");
}

#[test]
fn demo_with_each_sled_a_process_passes_every_check() {
    let (status, summary, progress) = demo_with_progress(&["--sleds", "4", "--processes"]);
    assert_eq!(status.code(), Some(0), "{summary}");
    check_summary(&summary, 4);
    check_progress(&progress);
}

#[test]
fn demo_refuses_a_rack_it_cannot_make() {
    let (status, _) = demo(&["--sleds", "2"]);
    assert_eq!(status.code(), Some(2));
    let (status, _) = demo(&["--sleds", "33"]);
    assert_eq!(status.code(), Some(2));
}
