//! One node per SQLite database. SQLite is the embedded, single-node store: a second server
//! on the same file would run its own session actors and its own notification counter beside
//! the first one's, so it is refused at start with a clear error. A server holds an exclusive
//! lock on a file beside the database (`<file>.lock`, with its process id in it) for as long
//! as it serves; the operating system releases the lock when the process ends, however it
//! ends. It is a file of its own because closing any descriptor of the database file would
//! drop SQLite's own locks on it in this process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock of a server serving a SQLite database; released when dropped.
#[derive(Debug)]
pub struct SqliteNodeLock {
    _file: File,
}

impl SqliteNodeLock {
    /// Takes the lock of `database`, or says which process holds it.
    pub fn take(database: &Path) -> Result<Self, StoreError> {
        let path = lock_path(database);
        let cannot =
            |e: std::io::Error| StoreError::Config(format!("cannot lock {}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::InUse {
                    path: database.to_owned(),
                    holder: holder.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        // Who holds it, for the error another server gives (and for a person looking).
        file.set_len(0).map_err(cannot)?;
        file.rewind().map_err(cannot)?;
        write!(file, "{}", std::process::id()).map_err(cannot)?;
        Ok(Self { _file: file })
    }
}

/// `<database>.lock`, beside the database file.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("orch-node-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("one.db");
        let first = SqliteNodeLock::take(&database).expect("the first lock");
        match SqliteNodeLock::take(&database) {
            Err(StoreError::InUse { path, holder }) => {
                assert_eq!(path, database);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(
            SqliteNodeLock::take(&dir.join("other.db")).is_ok(),
            "another database is another lock"
        );
        drop(first);
        assert!(SqliteNodeLock::take(&database).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
