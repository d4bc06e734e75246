//! The audit entries of lookups (a search, a customer's page, an invoice), committed in groups.
//!
//! Every view of a person's data is written to the audit log before the page is served. Written
//! one by one, each entry was a transaction of its own: on SQLite every request took the single
//! write lock in turn and synced the log to disk (`synchronous=FULL`), on PostgreSQL each flushed
//! its own commit record; under load the pages that audit served fewer requests than those that
//! do not, with a long tail. Here one task writes every entry waiting in one transaction and
//! answers each request once that transaction has committed: a request still waits until its
//! entry is durable (the guarantee is unchanged), and many requests share one commit.

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::db::audit::NewAuditEntry;
use crate::db::Db;

/// The most entries one transaction writes.
const GROUP: usize = 256;
/// Entries that may wait for the writer; a request past them waits for room.
const QUEUE: usize = 4_096;

/// An entry waiting to be written, with the time of the request and who waits for it.
struct Pending {
    at: DateTime<Utc>,
    entry: NewAuditEntry,
    written: oneshot::Sender<Result<(), String>>,
}

/// Writes lookups' audit entries in groups; cheap to clone (a channel to one writing task).
#[derive(Clone, Debug)]
pub struct AuditWriter {
    sender: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writing task on `db` (inside a Tokio runtime). It ends when every
    /// [`AuditWriter`] is dropped, after writing what was sent to it.
    pub fn start(db: Db) -> AuditWriter {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_groups(db, receiver));
        AuditWriter { sender }
    }

    /// Writes `entry`, stamped with the time of this call, and returns once it is committed.
    pub async fn write(&self, entry: NewAuditEntry) -> Result<(), String> {
        let (written, done) = oneshot::channel();
        let at = Utc::now().trunc_subsecs(6);
        self.sender
            .send(Pending { at, entry, written })
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?;
        done.await.map_err(|_| "the audit writer has stopped".to_owned())?
    }
}

/// The writing task: takes what waits (at most [`GROUP`]), writes it in one transaction, answers.
async fn write_groups(db: Db, mut receiver: mpsc::Receiver<Pending>) {
    let mut group: Vec<Pending> = Vec::with_capacity(GROUP);
    while receiver.recv_many(&mut group, GROUP).await > 0 {
        let entries: Vec<(DateTime<Utc>, &NewAuditEntry)> = group.iter().map(|p| (p.at, &p.entry)).collect();
        match db.audit_all(&entries).await {
            Ok(()) => group.drain(..).for_each(|p| {
                let _ = p.written.send(Ok(()));
            }),
            Err(e) => {
                tracing::warn!(error = %e, entries = group.len(), "writing a group of audit entries failed; writing them one by one");
                // One at a time, so that an entry the database refuses fails its own request only.
                for p in group.drain(..) {
                    let outcome = db.audit_all(&[(p.at, &p.entry)]).await.map_err(|e| e.to_string());
                    let _ = p.written.send(outcome);
                }
            }
        }
    }
}
