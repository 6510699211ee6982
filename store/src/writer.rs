//! The group-commit writer.
//!
//! Every write of the store is a *job* sent to one dedicated thread that owns
//! the only writing connection. The thread takes whatever jobs are queued (up
//! to `max_batch`), runs them in ONE transaction — each job in its own
//! savepoint, so a failing job rolls back alone — commits, and only then
//! answers each job. One fsync (SQLite) or one commit round trip (PostgreSQL)
//! thus covers many CWMP sessions, and a caller that got `Ok` knows its data
//! is durable.
//!
//! Under light load a batch holds a single job and latency is one commit;
//! under heavy load batches grow by themselves while the previous commit runs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::db::{Conn, Db, Target};
use crate::error::{Result, StoreError};
use crate::types::StoreOptions;

/// Idle time after which the writer checks its connection before using it.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// A unit of work for the writer.
pub(crate) trait Job: Send {
    /// Runs inside the batch transaction; in a savepoint of its own when
    /// `savepoint`. Returns whether the job succeeded.
    fn run(&mut self, db: &mut Db<'_>, savepoint: bool) -> bool;
    /// Answers the caller once the batch committed (`Ok`) or failed.
    fn finish(self: Box<Self>, batch: Result<(), &StoreError>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&mut Db<'_>) -> Result<T> + Send,
{
    fn run(&mut self, db: &mut Db<'_>, savepoint: bool) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let guarded = |db: &mut Db<'_>| {
            catch_unwind(AssertUnwindSafe(|| work(db)))
                .unwrap_or_else(|p| Err(StoreError::panicked(p)))
        };
        let outcome = if savepoint {
            db.transaction(guarded)
        } else {
            guarded(db)
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, batch: Result<(), &StoreError>) {
        let answer = match (self.outcome, batch) {
            // The job's own failure is the more useful error.
            (Some(Err(e)), _) => Err(e),
            (_, Err(e)) => Err(e.clone()),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(StoreError::Closed),
        };
        // The caller may have stopped waiting; its write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread. Dropping every handle stops the thread
/// after it has finished the queued jobs.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    pub(crate) fn spawn(conn: Conn, target: Target, opts: &StoreOptions) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(opts.queue_depth.max(1));
        let max_batch = opts.max_batch.max(1);
        let opts = opts.clone();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, max_batch, target, opts))
            .map_err(|e| StoreError::Config(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs: tx })
    }

    /// Queues `work` and waits until it is committed (or failed).
    ///
    /// If the caller's future is dropped after queueing, the job still runs.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(
    mut conn: Conn,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    target: Target,
    opts: StoreOptions,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut suspect = false;
    let mut last_used = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Check the connection after a failure, and after a long idle spell
        // (server restarts, idle timeouts of proxies and firewalls) so that
        // the first write after it does not fail needlessly.
        if (suspect || last_used.elapsed() > IDLE_CHECK) && !conn.db().ping() {
            match target.connect(&opts) {
                Ok(fresh) => {
                    tracing::info!("store writer reconnected");
                    conn = fresh;
                }
                Err(e) => tracing::error!(error = %e, "store writer cannot reconnect"),
            }
        }
        // A lone job needs no savepoint (two statements saved, which is a
        // round trip each on PostgreSQL): if it fails, the whole
        // transaction rolls back instead.
        let lone = batch.len() == 1;
        let mut job_failed = false;
        let started = Instant::now();
        let outcome = conn.db().write_transaction(|db| {
            for job in batch.iter_mut() {
                if !job.run(db, !lone) {
                    job_failed = true;
                    if lone {
                        return Err(BatchError::LoneJobFailed);
                    }
                }
            }
            Ok(())
        });
        let outcome = match outcome {
            Ok(()) => Ok(()),
            // The job holds its own error.
            Err(BatchError::LoneJobFailed) => Ok(()),
            Err(BatchError::Db(e)) => {
                tracing::error!(error = %e, jobs = batch.len(), "store write batch failed");
                Err(e)
            }
        };
        metrics::histogram!("keelson_db_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("keelson_db_write_jobs_total").increment(batch.len() as u64);
        // After any failure, check the connection before the next batch (a
        // job's error may have been a lost connection).
        suspect = outcome.is_err() || job_failed;
        last_used = Instant::now();
        let outcome = outcome.as_ref().map(|_| ());
        for job in batch.drain(..) {
            job.finish(outcome);
        }
    }
}

/// Why a batch transaction was rolled back.
enum BatchError {
    /// The batch's only job failed (its error is in the job).
    LoneJobFailed,
    /// BEGIN/COMMIT or the connection failed: no job was committed.
    Db(StoreError),
}

impl From<diesel::result::Error> for BatchError {
    fn from(e: diesel::result::Error) -> Self {
        BatchError::Db(e.into())
    }
}
