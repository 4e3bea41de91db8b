//! The hook's state directory: per session, the `sequence` counter and the spool of events
//! not yet delivered. Claude Code runs the hooks of one event in parallel and the hooks of
//! one session in separate processes, so everything here is coordinated by file locks:
//!
//! ```text
//! sessions/<session>/lock        held while a sequence number is taken
//! sessions/<session>/next        the next sequence number
//! sessions/<session>/spool/      <sequence>.json: events not yet acknowledged by the server
//! sessions/<session>/rejected/   events the server refused for good (kept for inspection)
//! sessions/<session>/flush.lock  held while the spool is being delivered
//! sessions/<session>/asked/      <key>: the approval a gated PreToolUse opened, for the
//!                                PermissionRequest of the same tool use to join (used once)
//! ```
//!
//! Taking a number and writing the event into the spool happen under the same lock, so the
//! spool always holds a run of consecutive numbers and whoever delivers it sends them in order.
//!
//! The spool holds prompts and tool output: directories are made 0700 and files 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The state directory of the hook.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// A file lock, released on drop.
pub struct Locked(#[allow(dead_code)] File);

/// An event waiting in the spool.
#[derive(Debug)]
pub struct Spooled {
    pub sequence: u64,
    pub path: PathBuf,
    pub event: Value,
}

impl StateDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `$ORCH_HOOK_STATE_DIR` is read by the CLI; this is the default without it: the
    /// per-user state directory (`$XDG_STATE_HOME`, else `~/.local/state`). `None` when
    /// neither is set: a shared directory such as `/tmp` would let other users read the
    /// spool, so there is no default then.
    pub fn default_root() -> Option<PathBuf> {
        let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let base = nonempty("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| nonempty("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
        Some(base.join("orchestrator/hook"))
    }

    fn session_dir(&self, session: &str) -> PathBuf {
        self.root.join("sessions").join(session)
    }

    /// Takes the next `sequence` of `session` and spools the event built with it, both under
    /// the session's lock. Waits for the lock until `deadline`.
    pub fn assign_and_spool(
        &self,
        session: &str,
        deadline: Instant,
        build: impl FnOnce(u64) -> Value,
    ) -> io::Result<Spooled> {
        let dir = self.session_dir(session);
        private_dir(&dir.join("spool"))?;
        let _lock = lock_until(&dir.join("lock"), deadline)?;
        let next_path = dir.join("next");
        let sequence = read_to_string_or_empty(&next_path)?
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
        write_atomically(&next_path, format!("{}\n", sequence + 1).as_bytes())?;
        let event = build(sequence);
        let path = dir.join("spool").join(format!("{sequence:020}.json"));
        write_atomically(&path, event.to_string().as_bytes())?;
        Ok(Spooled {
            sequence,
            path,
            event,
        })
    }

    /// Records that the PreToolUse of a tool use (`key`: its tool and input) opened approval
    /// `interaction_id`, replacing any earlier record of the same key: Claude Code checks
    /// permissions right after PreToolUse, so an older record is of a tool use that needed no
    /// prompt.
    pub fn remember_approval(
        &self,
        session: &str,
        key: &str,
        interaction_id: &str,
    ) -> io::Result<()> {
        let dir = self.session_dir(session).join("asked");
        private_dir(&dir)?;
        write_atomically(&dir.join(key), interaction_id.as_bytes())
    }

    /// Takes the approval recorded for `key`, if one was recorded within `max_age`: removed as
    /// it is read, so a record answers one PermissionRequest only, even with parallel hooks.
    pub fn take_approval(&self, session: &str, key: &str, max_age: Duration) -> Option<String> {
        let path = self.session_dir(session).join("asked").join(key);
        // Renamed away first: of two takers, one wins the rename and the other finds nothing.
        let taken = path.with_extension(format!("taken{}", std::process::id()));
        fs::rename(&path, &taken).ok()?;
        let fresh = fs::metadata(&taken)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().unwrap_or_default() <= max_age);
        let id = fs::read_to_string(&taken).ok();
        let _ = fs::remove_file(&taken);
        id.filter(|id| fresh && !id.is_empty())
    }

    /// Sessions that have something spooled.
    pub fn sessions_with_spool(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.root.join("sessions")) else {
            return Vec::new();
        };
        let mut sessions: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                fs::read_dir(e.path().join("spool")).is_ok_and(|mut files| files.next().is_some())
            })
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        sessions.sort();
        sessions
    }

    /// The session's spooled events, lowest sequence first.
    pub fn spooled(&self, session: &str) -> io::Result<Vec<Spooled>> {
        let spool = self.session_dir(session).join("spool");
        let mut found = Vec::new();
        let entries = match fs::read_dir(&spool) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(sequence) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            // Another process may have delivered and removed it since the listing.
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            match serde_json::from_str(&text) {
                Ok(event) => found.push(Spooled {
                    sequence,
                    path,
                    event,
                }),
                Err(_) => self.reject(session, &path)?,
            }
        }
        found.sort_by_key(|s| s.sequence);
        Ok(found)
    }

    /// Holds the session's delivery lock, waiting for it until `deadline`.
    pub fn lock_delivery(&self, session: &str, deadline: Instant) -> io::Result<Locked> {
        let dir = self.session_dir(session);
        private_dir(&dir)?;
        lock_until(&dir.join("flush.lock"), deadline)
    }

    /// The event was delivered (or was already): it leaves the spool.
    pub fn delivered(&self, spooled: &Spooled) -> io::Result<()> {
        match fs::remove_file(&spooled.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The server refused the event for good: it moves out of the spool, kept for inspection.
    pub fn reject(&self, session: &str, path: &Path) -> io::Result<()> {
        let rejected = self.session_dir(session).join("rejected");
        private_dir(&rejected)?;
        match path.file_name() {
            Some(name) => fs::rename(path, rejected.join(name)),
            None => Ok(()),
        }
    }
}

/// Takes an exclusive lock on `path`, retrying until `deadline`.
fn lock_until(path: &Path, deadline: Instant) -> io::Result<Locked> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Locked(file)),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} is held by another hook", path.display()),
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn read_to_string_or_empty(path: &Path) -> io::Result<String> {
    match File::open(path) {
        Ok(mut file) => {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            Ok(text)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Makes `dir` and its missing parents, readable by this user only.
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a state file so that a reader (or a crash) sees the old or the new content, never a
/// part. It is readable by this user only.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with_mode(path, bytes, 0o600)
}

/// [`write_atomically`] with the file's permission bits given.
pub(super) fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        // The umask narrowed the mode given at creation.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_state(name: &str) -> StateDir {
        let root = std::env::temp_dir().join(format!("orch-hook-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        StateDir::new(root)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn an_approval_record_is_taken_once_and_only_while_fresh() {
        let state = temp_state("asked");
        assert_eq!(
            state.take_approval("s1", "k", Duration::from_secs(60)),
            None
        );
        state.remember_approval("s1", "k", "approval-1").unwrap();
        // A later PreToolUse of the same tool and input replaces the record.
        state.remember_approval("s1", "k", "approval-2").unwrap();
        assert_eq!(
            state.take_approval("s2", "k", Duration::from_secs(60)),
            None,
            "per session"
        );
        assert_eq!(
            state
                .take_approval("s1", "k", Duration::from_secs(60))
                .as_deref(),
            Some("approval-2")
        );
        assert_eq!(
            state.take_approval("s1", "k", Duration::from_secs(60)),
            None,
            "used once"
        );
        state.remember_approval("s1", "k", "approval-3").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            state.take_approval("s1", "k", Duration::from_millis(1)),
            None,
            "stale"
        );
        assert_eq!(
            state.take_approval("s1", "k", Duration::from_secs(60)),
            None,
            "and gone"
        );
    }

    #[test]
    fn the_spool_is_readable_by_its_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let state = temp_state("modes");
        let spooled = state
            .assign_and_spool("s1", soon(), |n| json!({"sequence": n}))
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&spooled.path), 0o600);
        let session = state.session_dir("s1");
        for file in ["next", "lock"] {
            assert_eq!(mode(&session.join(file)), 0o600, "{file}");
        }
        for dir in [&state.root, &session, &session.join("spool")] {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
        }
        let _ = fs::remove_dir_all(&state.root);
    }

    #[test]
    fn numbers_are_consecutive_and_spooled_in_order() {
        let state = temp_state("numbers");
        let take = |id: &str| {
            state
                .assign_and_spool("s1", soon(), |n| json!({"sequence": n, "id": id}))
                .unwrap()
                .sequence
        };
        assert_eq!((take("a"), take("b"), take("c"), take("b")), (0, 1, 2, 3));
        let spooled = state.spooled("s1").unwrap();
        let numbers: Vec<u64> = spooled.iter().map(|s| s.sequence).collect();
        assert_eq!(numbers, [0, 1, 2, 3]);
        assert_eq!(spooled[1].event["id"], "b");
        state.delivered(&spooled[0]).unwrap();
        state.delivered(&spooled[0]).unwrap();
        assert_eq!(state.spooled("s1").unwrap().len(), 3);
        assert_eq!(state.sessions_with_spool(), ["s1"]);
        let _ = fs::remove_dir_all(&state.root);
    }

    #[test]
    fn parallel_takers_get_distinct_gap_free_numbers() {
        let state = temp_state("parallel");
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let state = state.clone();
                std::thread::spawn(move || {
                    state
                        .assign_and_spool("s", soon(), move |n| json!({"n": n, "i": i}))
                        .unwrap()
                        .sequence
                })
            })
            .collect();
        let mut numbers: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        numbers.sort();
        assert_eq!(numbers, (0..16).collect::<Vec<_>>());
        let _ = fs::remove_dir_all(&state.root);
    }

    #[test]
    fn a_held_lock_times_out_and_a_broken_file_is_set_aside() {
        let state = temp_state("locks");
        let held = state.lock_delivery("s", soon()).unwrap();
        let err = state
            .lock_delivery("s", Instant::now() + Duration::from_millis(20))
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(held);
        assert!(state.lock_delivery("s", soon()).is_ok());
        let spool = state.session_dir("s").join("spool");
        fs::create_dir_all(&spool).unwrap();
        fs::write(spool.join("00000000000000000004.json"), "{broken").unwrap();
        assert!(state.spooled("s").unwrap().is_empty());
        assert!(state
            .session_dir("s")
            .join("rejected/00000000000000000004.json")
            .exists());
        let _ = fs::remove_dir_all(&state.root);
    }
}
