//! Background WAL checkpoints (SQLite only).
//!
//! By default SQLite checkpoints inside whichever commit pushes the WAL past
//! 1,000 pages, i.e. on the group-commit writer thread, where it took ~15%
//! of the writer's time. A small thread with its own connection runs passive
//! checkpoints instead (they never block the writer or readers), so that
//! work happens on another core. The writer keeps a high auto-checkpoint
//! threshold only as a safety net in case this thread falls behind.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use crate::error::{Result, StoreError};

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// WAL pages after which the writer checkpoints by itself (~40 MB). Under
/// sustained load the background thread does most of the copying, and this
/// checkpoint (which finds little left to copy) lets the WAL restart.
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 10_000;

/// Stops the thread when dropped.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(crate) fn spawn(path: &str, busy_timeout: Duration) -> Result<Checkpointer> {
        let mut conn = SqliteConnection::establish(path)
            .map_err(|e| StoreError::Connect(format!("{}: {e}", Path::new(path).display())))?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};",
            busy_timeout.as_millis()
        ))?;
        let (stop, stopped) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                // Until the store (holding the sender) is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { _stop: stop })
    }
}
