//! The log's own tests: a written log verifies; each kind of damage is
//! found at the record it touched; a torn tail is cut at open and
//! recorded; a copy behind is repaired; rotation keeps the bound.

use std::fs;
use std::path::{Path, PathBuf};

use super::verify::{Problem, Verdict, verify_dir};
use super::*;

fn dirs(root: &Path) -> [PathBuf; AUDIT_COPIES] {
    let drives = [root.join("m2-0"), root.join("m2-1")];
    for drive in &drives {
        fs::create_dir(drive).unwrap();
    }
    drives.map(|drive| drive.join(AUDIT_DIR_NAME))
}

fn share(epoch: u64) -> AuditEvent {
    AuditEvent::ShareSent {
        to: "test:peer".to_owned(),
        epoch,
        message: ShareMessage::Share,
    }
}

fn open(dirs: &[PathBuf; AUDIT_COPIES], config: AuditConfig) -> AuditLog {
    AuditLog::open_blocking(dirs.clone(), "test:sled".to_owned(), 7, config).unwrap()
}

/// A log of `records` share records (besides what open writes).
fn written(dirs: &[PathBuf; AUDIT_COPIES], config: AuditConfig, records: u64) {
    let log = open(dirs, config);
    for epoch in 0..records {
        log.inner.append_blocking(&[share(epoch)]).unwrap();
    }
}

fn verdict(dir: &Path) -> Verdict {
    verify_dir(dir, |_, _, _| {})
}

/// Where record `seq` is: its segment file and line index (from 0).
fn find(dir: &Path, seq: u64) -> (PathBuf, usize) {
    for number in segment::list(dir).unwrap() {
        let path = segment::path(dir, number);
        let bytes = fs::read(&path).unwrap();
        for (index, line) in segment::lines(&bytes).lines.iter().enumerate() {
            if record::Record::parse(line).unwrap().seq == seq {
                return (path, index);
            }
        }
    }
    panic!("no record {seq}");
}

fn edit_lines(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let bytes = fs::read(path).unwrap();
    let mut lines: Vec<Vec<u8>> = segment::lines(&bytes)
        .lines
        .iter()
        .map(|l| l.to_vec())
        .collect();
    edit(&mut lines);
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    fs::write(path, out).unwrap();
}

fn bad_of(dir: &Path) -> verify::Bad {
    verdict(dir).bad.expect("damage not found")
}

#[test]
fn a_written_log_verifies_in_both_copies_and_they_are_identical() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let [a, b] = dirs.each_ref().map(|d| verdict(d));
    assert_eq!(a.bad, None);
    assert_eq!(a, b);
    // Opening record, log created, 20 shares.
    assert_eq!(a.summary.records, 22);
    assert_eq!(a.summary.head.unwrap().0, 21);
    let [x, y] = dirs
        .each_ref()
        .map(|d| fs::read(segment::path(d, 0)).unwrap());
    assert_eq!(x, y);
}

#[test]
fn a_changed_byte_names_the_record() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let (path, index) = find(&dirs[0], 10);
    edit_lines(&path, |lines| {
        // Epoch 8 becomes epoch 9: still a valid record, another hash.
        let line = String::from_utf8(lines[index].clone()).unwrap();
        lines[index] = line.replace("\"epoch\":8", "\"epoch\":9").into_bytes();
    });
    let bad = bad_of(&dirs[0]);
    assert_eq!((bad.seq, bad.problem), (Some(10), Problem::Altered));
    assert_eq!(verdict(&dirs[1]).bad, None);
}

#[test]
fn a_changed_prev_names_its_own_record() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let (path, index) = find(&dirs[0], 5);
    edit_lines(&path, |lines| {
        let at = lines[index]
            .windows(8)
            .position(|w| w == b"\"prev\":\"")
            .unwrap()
            + 8;
        lines[index][at] = if lines[index][at] == b'0' { b'1' } else { b'0' };
    });
    let bad = bad_of(&dirs[0]);
    assert_eq!((bad.seq, bad.problem), (Some(5), Problem::Altered));
}

#[test]
fn a_byte_that_breaks_the_json_names_the_line() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let (path, index) = find(&dirs[0], 7);
    edit_lines(&path, |lines| lines[index][0] = b'[');
    let bad = bad_of(&dirs[0]);
    assert_eq!(bad.at.line, index + 1);
    assert!(matches!(bad.problem, Problem::Unparseable(_)), "{bad}");
}

#[test]
fn a_removed_record_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let (path, index) = find(&dirs[0], 12);
    edit_lines(&path, |lines| {
        lines.remove(index);
    });
    let bad = bad_of(&dirs[0]);
    assert_eq!(
        bad.problem,
        Problem::RecordsMissing {
            first: 12,
            last: 12
        }
    );
    assert_eq!(bad.seq, Some(13));
}

#[test]
fn two_swapped_records_are_named() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 20);
    let (path, index) = find(&dirs[0], 8);
    edit_lines(&path, |lines| lines.swap(index, index + 1));
    let bad = bad_of(&dirs[0]);
    assert_eq!(
        (bad.seq, bad.problem),
        (Some(9), Problem::OutOfOrder { after: 7 })
    );
    assert_eq!(bad.at.line, index + 1);
}

fn small() -> AuditConfig {
    AuditConfig {
        max_segment_bytes: 2048,
        retained_segments: 4,
        ..AuditConfig::default()
    }
}

#[test]
fn rotation_keeps_the_bound_and_shows_as_rotation() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, small(), 300);
    for dir in &dirs {
        let segments = segment::list(dir).unwrap();
        assert_eq!(segments.len(), 4, "{segments:?}");
        for number in &segments {
            let len = fs::metadata(segment::path(dir, *number)).unwrap().len();
            assert!(len <= 2048, "segment {number}: {len} bytes");
        }
        let verdict = verdict(dir);
        assert_eq!(verdict.bad, None);
        assert_eq!(verdict.summary.oldest_kept, segments[0]);
        assert!(verdict.summary.oldest_kept > 0);
    }
    // Reopened, the log goes on from its head.
    written(&dirs, small(), 10);
    assert_eq!(verdict(&dirs[0]).bad, None);
}

#[test]
fn a_removed_middle_or_oldest_segment_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, small(), 300);
    let segments = segment::list(&dirs[0]).unwrap();
    fs::remove_file(segment::path(&dirs[0], segments[1])).unwrap();
    let bad = bad_of(&dirs[0]);
    assert_eq!(
        bad.problem,
        Problem::SegmentsMissing {
            first: segments[1],
            last: segments[1]
        }
    );
    assert_eq!(bad.at.segment, segments[2]);

    fs::remove_file(segment::path(&dirs[1], segments[0])).unwrap();
    let bad = bad_of(&dirs[1]);
    assert_eq!(
        bad.problem,
        Problem::SegmentsMissing {
            first: segments[0],
            last: segments[0]
        }
    );
}

#[test]
fn a_torn_tail_is_cut_at_open_and_recorded() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 5);
    let path = segment::path(&dirs[0], 0);
    let mut bytes = fs::read(&path).unwrap();
    let torn_part = b"{\"seq\":7,\"prev\":\"ab";
    bytes.extend_from_slice(torn_part);
    fs::write(&path, &bytes).unwrap();
    let torn = verdict(&dirs[0]);
    assert_eq!(torn.bad, None, "a torn tail is not damage");
    let torn_len = torn_part.len() as u64;
    assert_eq!(torn.summary.torn_tail.unwrap().bytes, torn_len);

    written(&dirs, AuditConfig::default(), 1);
    for dir in &dirs {
        let mut events = Vec::new();
        let verdict = verify_dir(dir, |_, record, _| events.push(record.event.clone()));
        assert_eq!(verdict.bad, None);
        assert_eq!(verdict.summary.torn_tail, None);
        assert!(events.contains(&AuditEvent::TornTailTruncated {
            copy: 0,
            segment: 0,
            bytes: torn_len
        }));
    }
}

#[test]
fn a_copy_behind_or_damaged_is_repaired_from_the_other_and_that_recorded() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 5);
    // A crash between the two copies' appends: copy 1 lacks the last.
    edit_lines(&segment::path(&dirs[1], 0), |lines| {
        lines.pop();
    });
    written(&dirs, AuditConfig::default(), 1);
    let [a, b] = dirs
        .each_ref()
        .map(|d| fs::read(segment::path(d, 0)).unwrap());
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(
        text.contains(
            "\"event\":\"copy_repaired\",\"copy\":1,\"finding\":\"behind: up to seq 5 of 6\""
        ),
        "{text}"
    );
    // Damage in copy 0 only: repaired from copy 1, and said so.
    let (path, index) = find(&dirs[0], 3);
    edit_lines(&path, |lines| lines[index][0] = b'[');
    written(&dirs, AuditConfig::default(), 1);
    assert_eq!(verdict(&dirs[0]).bad, None);
    let text = fs::read_to_string(segment::path(&dirs[0], 0)).unwrap();
    assert!(
        text.contains("\"copy\":0,\"finding\":\"damaged: segment 0 line 4"),
        "{text}"
    );
}

#[test]
fn damage_in_both_copies_stays_visible_and_is_recorded() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, AuditConfig::default(), 5);
    for dir in &dirs {
        let (path, index) = find(dir, 3);
        edit_lines(&path, |lines| lines.remove(index).truncate(0));
    }
    written(&dirs, AuditConfig::default(), 1);
    for dir in &dirs {
        let bad = bad_of(dir);
        assert_eq!(bad.problem, Problem::RecordsMissing { first: 3, last: 3 });
        let text = fs::read_to_string(segment::path(dir, 0)).unwrap();
        assert!(text.contains("\"event\":\"log_damaged\""), "{text}");
    }
}

#[test]
fn a_crash_during_rotation_is_a_torn_tail_not_damage() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    written(&dirs, small(), 300);
    // The next segment created, its opening record never written.
    let newest = *segment::list(&dirs[0]).unwrap().last().unwrap();
    writer::create_segment(&segment::path(&dirs[0], newest + 1)).unwrap();
    let torn = verdict(&dirs[0]);
    assert_eq!(torn.bad, None);
    assert_eq!(torn.summary.torn_tail.unwrap().segment, newest + 1);

    written(&dirs, small(), 1);
    for dir in &dirs {
        let mut events = Vec::new();
        let verdict = verify_dir(dir, |_, record, _| events.push(record.event.clone()));
        assert_eq!(verdict.bad, None);
        assert!(events.contains(&AuditEvent::TornTailTruncated {
            copy: 0,
            segment: newest + 1,
            bytes: 0
        }));
    }
}

#[test]
fn a_log_no_drive_takes_opens_and_is_written_once_a_drive_is_back() {
    let root = tempfile::tempdir().unwrap();
    let drives = [root.path().join("m2-0"), root.path().join("m2-1")];
    let dirs = drives.clone().map(|drive| drive.join(AUDIT_DIR_NAME));
    let log = open(&dirs, AuditConfig::default());
    assert!(log.inner.append_blocking(&[share(1)]).is_err());
    fs::create_dir(&drives[1]).unwrap();
    log.inner.append_blocking(&[share(2)]).unwrap();
    let mut events = Vec::new();
    let verdict = verify_dir(&dirs[1], |_, record, _| events.push(record.event.clone()));
    assert_eq!(verdict.bad, None);
    assert_eq!(events.last(), Some(&share(2)));
    assert!(!dirs[0].exists());
}
