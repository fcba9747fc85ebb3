//! What a data key opens: the backends.
//!
//! - [`Backend::Fscrypt`]: Linux native file encryption (v2 policy) on a
//!   directory of a file system that has it (ext4 made with
//!   `-O encrypt`). Unlock adds the fscrypt key to the file system and
//!   sets the directory's policy (the first time, the directory must be
//!   empty; later the same policy is accepted and another key's is
//!   refused, so a wrong key is caught before anything is written). Lock
//!   removes the key. The fscrypt key is 64 bytes (AES-256-XTS needs
//!   them), expanded from the data key with HKDF-SHA3-256 and the info
//!   string `"trust-quorum-v1-fscrypt-key"`, so the data key itself is
//!   what the wrapping and the `command` backend use.
//! - [`Backend::Command`]: a configured program, the key on its standard
//!   input (raw bytes or lower-case hex, as `zfs load-key` and
//!   `cryptsetup open --key-file=-` read it), killed after a timeout. The
//!   key is never in its arguments or environment, and its output is
//!   discarded (so a program that echoes its input cannot put the key in
//!   our logs); a failure is its exit status.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hkdf::SimpleHkdf;
use sha3::Sha3_256;
use tokio::io::AsyncWriteExt;
use tq_fscrypt::{KeyIdentifier, RawKey, Removal};
use zeroize::Zeroizing;

use super::wrap::DataKey;

/// The HKDF info string of the fscrypt key (see the module doc).
pub const FSCRYPT_KEY_CONTEXT: &[u8] = b"trust-quorum-v1-fscrypt-key";

/// How a `command` backend hands the key over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// The 32 bytes themselves (`zfs` `keyformat=raw`, `cryptsetup`).
    Raw,
    /// 64 lower-case hex digits (`zfs` `keyformat=hex`).
    Hex,
}

/// A disk's backend. See the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// fscrypt on this directory.
    Fscrypt {
        /// The encrypted directory.
        dir: PathBuf,
    },
    /// A program given the key on stdin.
    Command {
        /// The program and its arguments that unlock (never the key).
        unlock: Vec<String>,
        /// The program and arguments that lock, if locking is possible.
        lock: Option<Vec<String>>,
        /// How long either may run before it is killed.
        timeout: Duration,
        /// How the key is written to its standard input.
        key_format: KeyFormat,
    },
}

impl Backend {
    /// Its kind, for status and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fscrypt { .. } => "fscrypt",
            Self::Command { .. } => "command",
        }
    }
}

/// Why a backend did not unlock or lock.
#[derive(Debug)]
pub enum BackendError {
    /// The fscrypt directory could not be opened.
    Open(PathBuf, io::Error),
    /// An fscrypt ioctl failed.
    Fscrypt(&'static str, io::Error),
    /// The directory is encrypted under another key.
    OtherKey(PathBuf),
    /// The program could not be started.
    Spawn(String, io::Error),
    /// The program did not finish in time (it was killed).
    Timeout(String, Duration),
    /// The program failed.
    Exit(String, std::process::ExitStatus),
    /// The backend has no way to lock (a `command` without `lock`).
    CannotLock,
    /// A blocking call did not finish (the runtime is stopping).
    Interrupted,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(dir, e) => write!(f, "cannot open {}: {e}", dir.display()),
            Self::Fscrypt(what, e) => write!(f, "fscrypt {what}: {e}"),
            Self::OtherKey(dir) => write!(
                f,
                "{} is encrypted under another key (or is not empty and unencrypted)",
                dir.display()
            ),
            Self::Spawn(program, e) => write!(f, "cannot run {program}: {e}"),
            Self::Timeout(program, after) => {
                write!(
                    f,
                    "{program} did not finish within {after:?} and was killed"
                )
            }
            Self::Exit(program, status) => write!(f, "{program} failed: {status}"),
            Self::CannotLock => f.write_str("no lock command is configured"),
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for BackendError {}

/// The fscrypt key of a data key (module doc).
fn fscrypt_key(key: &DataKey) -> RawKey {
    RawKey::new_with(|raw| {
        // Fails only for outputs over 255 hash lengths; this is two.
        let _ = SimpleHkdf::<Sha3_256>::new(None, key.expose())
            .expand(FSCRYPT_KEY_CONTEXT, raw.as_mut_slice());
    })
}

impl Backend {
    /// Opens what `key` protects.
    pub async fn unlock(&self, key: &DataKey) -> Result<(), BackendError> {
        match self {
            Self::Fscrypt { dir } => {
                let dir = dir.clone();
                let raw = fscrypt_key(key);
                blocking(move || fscrypt_unlock(&dir, &raw)).await
            }
            Self::Command {
                unlock,
                timeout,
                key_format,
                ..
            } => {
                let input = match key_format {
                    KeyFormat::Raw => Zeroizing::new(key.expose().to_vec()),
                    KeyFormat::Hex => Zeroizing::new(hex_lower(key.expose())),
                };
                run(unlock, Some(&input), *timeout).await
            }
        }
    }

    /// Closes it again (fscrypt: removes the directory's key, whichever it
    /// is, so it needs no data key).
    pub async fn lock(&self) -> Result<(), BackendError> {
        match self {
            Self::Fscrypt { dir } => {
                let dir = dir.clone();
                blocking(move || fscrypt_lock(&dir)).await
            }
            Self::Command { lock, timeout, .. } => match lock {
                Some(argv) => run(argv, None, *timeout).await,
                None => Err(BackendError::CannotLock),
            },
        }
    }
}

async fn blocking(
    work: impl FnOnce() -> Result<(), BackendError> + Send + 'static,
) -> Result<(), BackendError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(BackendError::Interrupted))
}

fn open_dir(dir: &std::path::Path) -> Result<std::fs::File, BackendError> {
    std::fs::File::open(dir).map_err(|e| BackendError::Open(dir.to_owned(), e))
}

fn fscrypt_unlock(dir: &std::path::Path, raw: &RawKey) -> Result<(), BackendError> {
    let handle = open_dir(dir)?;
    let id = tq_fscrypt::add_key(&handle, raw).map_err(|e| BackendError::Fscrypt("add key", e))?;
    match tq_fscrypt::set_policy(&handle, &id) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(code) if code == rustix::io::Errno::EXIST.raw_os_error()
                    || code == rustix::io::Errno::NOTEMPTY.raw_os_error()
            ) =>
        {
            // Not this directory's key: take it out again.
            let _ = tq_fscrypt::remove_key(&handle, &id);
            Err(BackendError::OtherKey(dir.to_owned()))
        }
        Err(e) => Err(BackendError::Fscrypt("set policy", e)),
    }
}

fn fscrypt_lock(dir: &std::path::Path) -> Result<(), BackendError> {
    let handle = open_dir(dir)?;
    let Some(id): Option<KeyIdentifier> = tq_fscrypt::policy_identifier(&handle)
        .map_err(|e| BackendError::Fscrypt("get policy", e))?
    else {
        // Never encrypted: nothing to lock.
        return Ok(());
    };
    match tq_fscrypt::remove_key(&handle, &id) {
        // Files still open lock when closed; the key is out either way.
        Ok(Removal::Removed | Removal::FilesBusy | Removal::OtherUsers) => Ok(()),
        // Not added: locked already.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOKEY.raw_os_error()) => Ok(()),
        Err(e) => Err(BackendError::Fscrypt("remove key", e)),
    }
}

fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.extend(DIGITS.get(usize::from(nibble)));
        }
    }
    out
}

/// Runs `argv` with `input` (if any) on its standard input, killed after
/// `timeout`. Output is discarded (module doc).
async fn run(argv: &[String], input: Option<&[u8]>, timeout: Duration) -> Result<(), BackendError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(BackendError::Spawn(
            String::new(),
            io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        ));
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BackendError::Spawn(program.clone(), e))?;
    let work = async {
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A program that exits without reading is judged by its exit
            // status, not by the broken pipe.
            let _ = stdin.write_all(input).await;
            let _ = stdin.shutdown().await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(BackendError::Exit(program.clone(), status)),
        Ok(Err(e)) => Err(BackendError::Spawn(program.clone(), e)),
        Err(_) => {
            let _ = child.kill().await;
            Err(BackendError::Timeout(program.clone(), timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(unlock: &[&str], timeout_ms: u64, key_format: KeyFormat) -> Backend {
        Backend::Command {
            unlock: unlock.iter().map(|s| (*s).to_owned()).collect(),
            lock: None,
            timeout: Duration::from_millis(timeout_ms),
            key_format,
        }
    }

    #[tokio::test]
    async fn the_command_gets_the_key_on_stdin_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let script = format!(
            "cat > {0}; echo \"args=$*\" >> {0}.env; env >> {0}.env",
            out.display()
        );
        let key = DataKey::from_bytes([0xa5; 32]);
        command(&["sh", "-c", &script, "unlock"], 10_000, KeyFormat::Raw)
            .unlock(&key)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), [0xa5; 32]);
        let env = std::fs::read(dir.path().join("got.env")).unwrap();
        let hex = hex_lower(key.expose());
        assert!(!env.windows(hex.len()).any(|w| w == hex.as_slice()));
        assert!(!env.windows(32).any(|w| w == [0xa5; 32]));

        command(&["sh", "-c", &script, "unlock"], 10_000, KeyFormat::Hex)
            .unlock(&key)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), hex);
        assert_eq!(&hex[..4], b"a5a5");
    }

    #[tokio::test]
    async fn a_slow_or_failing_command_is_an_error() {
        let key = DataKey::from_bytes([1; 32]);
        let started = std::time::Instant::now();
        let slow = command(&["sleep", "10"], 200, KeyFormat::Raw)
            .unlock(&key)
            .await;
        assert!(matches!(slow, Err(BackendError::Timeout(..))), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let failed = command(&["false"], 10_000, KeyFormat::Raw)
            .unlock(&key)
            .await;
        assert!(matches!(failed, Err(BackendError::Exit(..))), "{failed:?}");
        let missing = command(&["/nonexistent/tq-unlock"], 10_000, KeyFormat::Raw)
            .unlock(&key)
            .await;
        assert!(
            matches!(missing, Err(BackendError::Spawn(..))),
            "{missing:?}"
        );
        assert!(matches!(
            command(&["true"], 10_000, KeyFormat::Raw).lock().await,
            Err(BackendError::CannotLock)
        ));
    }
}
