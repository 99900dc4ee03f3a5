//! The group-commit writer of the hot path.
//!
//! Every signed agent request ends in one [`DecisionWrite`] (its nonce claim and its audit
//! record). Handlers do not write it themselves: they queue it here and wait. One task takes
//! everything queued (up to `decision_batch_max` items), commits it in ONE transaction through
//! [`aim_store::AgentStore::commit_decisions`], and only then answers each waiter through its
//! oneshot channel.
//!
//! Invariants:
//! - a waiter is answered only after the transaction holding its item committed (or failed);
//! - a request therefore costs at most one durable write, shared with its neighbours;
//! - if the batch fails, every waiter of that batch gets an error (fail closed: no request is
//!   answered as accepted without its record).

use std::sync::Arc;

use aim_store::{DecisionOutcome, DecisionWrite, Store};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::metrics::WriterMetrics;

type Reply = oneshot::Sender<Result<DecisionOutcome, String>>;

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct DecisionWriter {
    tx: mpsc::Sender<(DecisionWrite, Reply)>,
}

impl DecisionWriter {
    /// Starts the writer task. It ends when every handle is dropped. Each batch's size and
    /// transaction time are observed in `metrics`.
    ///
    /// A store whose commits block the calling thread (SQLite: the whole batch runs synchronously
    /// on it, see `aim_store::Store::commits_block_caller`) gets a thread of its own with a
    /// single-threaded runtime, so request handlers never wait behind a batch; other stores'
    /// writer is a task on the current runtime.
    pub fn spawn(
        store: Arc<dyn Store>,
        batch_max: usize,
        metrics: WriterMetrics,
    ) -> Result<DecisionWriter, Error> {
        let batch_max = batch_max.max(1);
        // The queue holds a few batches; beyond that, callers wait for room (back-pressure).
        let (tx, rx) = mpsc::channel::<(DecisionWrite, Reply)>(batch_max * 4);
        if store.commits_block_caller() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Io(format!("decision writer runtime: {e}")))?;
            std::thread::Builder::new()
                .name("aim-decision-writer".into())
                .spawn(move || runtime.block_on(run(store, batch_max, metrics, rx)))
                .map_err(|e| Error::Io(format!("decision writer thread: {e}")))?;
        } else {
            tokio::spawn(run(store, batch_max, metrics, rx));
        }
        Ok(DecisionWriter { tx })
    }

    /// Queues a record with `op` and no nonce (a request not signed by an agent) and waits until
    /// it is durable. `Ok(false)`: the op's precondition did not hold, nothing was written.
    pub async fn commit_record(
        &self,
        audit: aim_store::AuditRecord,
        op: aim_store::DecisionOp,
    ) -> Result<bool, Error> {
        let item = DecisionWrite {
            nonce: None,
            audit,
            replay_audit: None,
            op,
            prepared: None,
        };
        Ok(self.commit(item).await? == DecisionOutcome::Committed)
    }

    /// Queues `item` and waits until it is durable (or refused as a replay). The item's audit
    /// record is canonicalized here, on the caller's task, so that the writer's serial section
    /// only chains it; a record that cannot be canonicalized fails alone, not its batch.
    pub async fn commit(&self, mut item: DecisionWrite) -> Result<DecisionOutcome, Error> {
        item.prepare()?;
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| Error::Unavailable("decision writer stopped".into()))?;
        match wait.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(Error::Unavailable(format!("decision batch failed: {e}"))),
            Err(_) => Err(Error::Unavailable("decision writer stopped".into())),
        }
    }
}

/// The writer loop: takes everything queued (up to `batch_max`), commits it in one transaction,
/// answers each waiter; ends when every sender is dropped.
async fn run(
    store: Arc<dyn Store>,
    batch_max: usize,
    metrics: WriterMetrics,
    mut rx: mpsc::Receiver<(DecisionWrite, Reply)>,
) {
    let mut items = Vec::with_capacity(batch_max);
    let mut replies = Vec::with_capacity(batch_max);
    while let Some((item, reply)) = rx.recv().await {
        items.push(item);
        replies.push(reply);
        while items.len() < batch_max {
            match rx.try_recv() {
                Ok((item, reply)) => {
                    items.push(item);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = store.commit_decisions(&items).await;
        metrics.seconds.observe(started.elapsed().as_secs_f64());
        metrics.size.observe(items.len() as f64);
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = items.len(), "decision batch failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
        items.clear();
        replies.clear();
    }
}
