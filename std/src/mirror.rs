//! Work done on every copy of a mirrored file at once.
//!
//! The ledger and the audit log keep a copy on each of the sled's two
//! drives. Flushing them in turn would make every durable write wait for
//! one drive's flush and then the other's; flushing them at once waits for
//! the slower drive only. Copies that share a drive (a test rack, a
//! development machine) gain nothing from it but a thread per write, so
//! they are flushed in turn.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread::{self, ScopedJoinHandle};

/// Where one copy's work runs.
enum Running<'scope, 'env, C, T> {
    /// On the calling thread, once the others are started.
    Here(&'env C),
    /// On a thread of its own.
    Spawned(ScopedJoinHandle<'scope, T>),
}

/// Whether every one of `dirs` is on a file system (a drive) of its own;
/// false if one cannot be read.
pub(crate) fn on_separate_drives<P: AsRef<Path>>(dirs: &[P]) -> bool {
    let devices: Option<BTreeSet<u64>> = dirs
        .iter()
        .map(|dir| std::fs::metadata(dir).ok().map(|m| m.dev()))
        .collect();
    devices.is_some_and(|devices| devices.len() == dirs.len())
}

/// Runs `work` for every copy and returns the results in copy order: at
/// once if `at_once` (the first on the calling thread, each other on a
/// scoped thread of its own), else in turn. Blocking; for the blocking
/// pool.
pub(crate) fn on_every_copy<C, T, const N: usize>(
    copies: &[C; N],
    at_once: bool,
    work: impl Fn(&C) -> T + Sync,
) -> [T; N]
where
    C: Sync,
    T: Send,
{
    if !at_once {
        return copies.each_ref().map(work);
    }
    thread::scope(|scope| {
        let work = &work;
        let mut first = true;
        let running = copies.each_ref().map(|copy| {
            if std::mem::take(&mut first) {
                Running::Here(copy)
            } else {
                Running::Spawned(scope.spawn(move || work(copy)))
            }
        });
        running.map(|running| match running {
            Running::Here(copy) => work(copy),
            // A panic of the work goes on on this thread, as it would have
            // had the work run here.
            Running::Spawned(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn every_copy_runs_at_the_same_time_and_results_keep_their_order() {
        // Each copy's work waits (a while) for the other to start: done in
        // turn, the first would see only itself.
        let started = AtomicUsize::new(0);
        let results = on_every_copy(&["a", "b"], true, |name| {
            started.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(5);
            while started.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            (*name, started.load(Ordering::SeqCst))
        });
        assert_eq!(results, [("a", 2), ("b", 2)]);
    }

    #[test]
    fn copies_in_turn_run_one_after_the_other() {
        let started = AtomicUsize::new(0);
        let results = on_every_copy(&["a", "b"], false, |name| {
            (*name, started.fetch_add(1, Ordering::SeqCst) + 1)
        });
        assert_eq!(results, [("a", 1), ("b", 2)]);
    }

    #[test]
    fn two_directories_of_one_file_system_share_a_drive() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        assert!(!on_separate_drives(&[&a, &b]));
        assert!(on_separate_drives(&[&a, Path::new("/proc")]));
        assert!(!on_separate_drives(&[&a, &dir.path().join("missing")]));
    }
}
