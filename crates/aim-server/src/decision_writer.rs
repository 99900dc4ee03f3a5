//! The group-commit writer of the hot path.
//!
//! Every signed agent request ends in one [`DecisionWrite`] (its nonce claim and its audit
//! record). Handlers do not write it themselves: they queue it here and wait. One task takes
//! everything queued (up to `decision_batch_max` items), commits it in ONE transaction through
//! [`aim_store::AgentStore::commit_decisions`], and only then answers each waiter through its
//! oneshot channel.
//!
//! Under concurrent load (at least 32 open client connections) the SQLite writer lingers before
//! a commit (`Linger`, `decision_batch_linger_us`, default 1 ms; docs/agents.md has the
//! measurements): a batch's cost is
//! mostly per transaction (the commit's WAL frames, the chain head, the B-tree pages every
//! append dirties), so on SQLite a batch of 32 costs the store 40 µs per decision where a batch
//! of 7 costs 66 µs (`aim-bench store --batch N`, docs/BENCHMARKS.md). A lone request never waits. Only the
//! writer of a store whose commits block the caller (SQLite, microseconds per statement) lingers;
//! a PostgreSQL batch fills by itself during its milliseconds of commit, and its writer is what
//! bounds PostgreSQL's throughput, so waiting would only idle it. There the writer instead starts
//! the next batch during the previous one's commit (`run_overlapped`).
//!
//! Invariants:
//! - a waiter is answered only after the transaction holding its item committed (or failed);
//! - a request therefore costs at most one durable write, shared with its neighbours;
//! - if the batch fails, every waiter of that batch gets an error (fail closed: no request is
//!   answered as accepted without its record);
//! - a batch starts only once the previous one holds every lock it takes and has only its
//!   COMMIT left (PostgreSQL), so batches take their locks one at a time, in order; for one
//!   organization at most two are open (the older committing, the newer waiting at its chain
//!   head).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aim_store::{DecisionOutcome, DecisionWrite, Store};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::metrics::WriterMetrics;

type Reply = oneshot::Sender<Result<DecisionOutcome, String>>;

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct DecisionWriter {
    tx: mpsc::Sender<(DecisionWrite, Reply)>,
    /// Open client connections (see [`crate::connections`]), read by the lingering writer.
    connections: Arc<AtomicUsize>,
}

impl DecisionWriter {
    /// Starts the writer task. It ends when every handle is dropped. Each batch's size and
    /// transaction time are observed in `metrics`.
    ///
    /// A store whose commits block the calling thread (SQLite: the whole batch runs synchronously
    /// on it, see `aim_store::Store::commits_block_caller`) gets a thread of its own with a
    /// single-threaded runtime, so request handlers never wait behind a batch; other stores'
    /// writer is a task on the current runtime that overlaps each batch with the previous
    /// commit (`run_overlapped`).
    pub fn spawn(
        store: Arc<dyn Store>,
        batch_max: usize,
        linger: Duration,
        metrics: WriterMetrics,
    ) -> Result<DecisionWriter, Error> {
        let batch_max = batch_max.max(1);
        // The queue holds a few batches; beyond that, callers wait for room (back-pressure).
        let (tx, rx) = mpsc::channel::<(DecisionWrite, Reply)>(batch_max * 4);
        let connections = Arc::new(AtomicUsize::new(0));
        if store.commits_block_caller() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Io(format!("decision writer runtime: {e}")))?;
            let linger = Linger {
                wait: linger,
                connections: connections.clone(),
                target: LINGER_TARGET,
                quiet: LINGER_STEP,
            };
            std::thread::Builder::new()
                .name("aim-decision-writer".into())
                .spawn(move || runtime.block_on(run(store, batch_max, linger, metrics, rx)))
                .map_err(|e| Error::Io(format!("decision writer thread: {e}")))?;
        } else {
            tokio::spawn(run_overlapped(store, batch_max, metrics, rx));
        }
        Ok(DecisionWriter { tx, connections })
    }

    /// The gauge of open client connections the server's listener keeps
    /// ([`crate::connections::Counted`]); the lingering writer waits only when it is at least
    /// `LINGER_FLOOR`.
    pub fn connections(&self) -> Arc<AtomicUsize> {
        self.connections.clone()
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

/// How long the writer waits for more items before committing a batch that is not full.
///
/// Invariant: it waits only when the previous batch held more than one item (requests are
/// arriving concurrently), at least [`LINGER_FLOOR`] client connections are open (enough
/// requests can be in flight to fill a batch), and the current batch holds fewer than
/// [`LINGER_TARGET`] (and fewer than the batch maximum); it stops waiting as soon as the batch
/// reaches that size, as soon as a step brings no new item, and after `wait` at the latest. A
/// request arriving alone is committed at once. A wait delays the batch's answers by at most
/// `wait`.
///
/// The writer lingering owns its thread (a store whose commits block the caller): it sleeps the
/// thread in steps of [`LINGER_STEP`], with the system timer's precision, looking at the queue
/// after each step.
#[derive(Debug, Clone)]
struct Linger {
    /// Zero: never wait.
    wait: Duration,
    /// Open client connections ([`DecisionWriter::connections`]).
    connections: Arc<AtomicUsize>,
    /// The batch size it waits for: [`LINGER_TARGET`] (tests set others).
    target: usize,
    /// How long without a new item ends the wait: [`LINGER_STEP`], one look at the queue that
    /// finds nothing (tests set others).
    quiet: Duration,
}

/// The writer waits only when at least this many client connections are open. With fewer
/// requests in flight a wait idles the cores more than the bigger batch saves: at concurrency
/// 8, lingering cost 32–45 % of decisions/s (docs/BENCHMARKS.md), while at 64 and more it
/// gained (HTTP/1.1 clients hold one connection per request in flight).
const LINGER_FLOOR: usize = 32;

/// Batch size past which waiting for more saves little: the store's cost per decision falls
/// from 66 µs at batches of 7 to 40 µs at 32 and 32 µs at 64 (SQLite, `aim-bench store`,
/// docs/BENCHMARKS.md).
const LINGER_TARGET: usize = 32;

/// How often a lingering writer on its own thread looks at its queue.
const LINGER_STEP: Duration = Duration::from_micros(200);

impl Linger {
    /// Waits for more items as the type's invariant says, moving them into the batch. Blocks
    /// the calling thread while it waits.
    fn fill(
        &self,
        rx: &mut mpsc::Receiver<(DecisionWrite, Reply)>,
        batch_max: usize,
        items: &mut Vec<DecisionWrite>,
        replies: &mut Vec<Reply>,
    ) {
        let target = self.target.min(batch_max);
        if self.wait.is_zero()
            || items.len() >= target
            || self.connections.load(Ordering::Acquire) < LINGER_FLOOR
        {
            return;
        }
        let deadline = std::time::Instant::now() + self.wait;
        let mut last_new = std::time::Instant::now();
        while items.len() < target {
            let now = std::time::Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() || now.duration_since(last_new) >= self.quiet {
                break;
            }
            std::thread::sleep(left.min(LINGER_STEP));
            let before = items.len();
            drain(rx, batch_max, items, replies);
            if items.len() > before {
                last_new = std::time::Instant::now();
            }
        }
    }
}

/// Moves queued items into the batch until it holds `batch_max` or the queue is empty.
fn drain(
    rx: &mut mpsc::Receiver<(DecisionWrite, Reply)>,
    batch_max: usize,
    items: &mut Vec<DecisionWrite>,
    replies: &mut Vec<Reply>,
) {
    while items.len() < batch_max {
        match rx.try_recv() {
            Ok((item, reply)) => {
                items.push(item);
                replies.push(reply);
            }
            Err(_) => break,
        }
    }
}

/// The writer loop: takes everything queued (up to `batch_max`, lingering as [`Linger`] says),
/// commits it in one transaction, answers each waiter; ends when every sender is dropped.
async fn run(
    store: Arc<dyn Store>,
    batch_max: usize,
    linger: Linger,
    metrics: WriterMetrics,
    mut rx: mpsc::Receiver<(DecisionWrite, Reply)>,
) {
    let mut items = Vec::with_capacity(batch_max);
    let mut replies = Vec::with_capacity(batch_max);
    let mut previous = 0usize;
    while let Some((item, reply)) = rx.recv().await {
        items.push(item);
        replies.push(reply);
        drain(&mut rx, batch_max, &mut items, &mut replies);
        if previous > 1 {
            linger.fill(&mut rx, batch_max, &mut items, &mut replies);
        }
        previous = items.len();
        let started = std::time::Instant::now();
        let result = store.commit_decisions(&items).await;
        answer(&items, &mut replies, result, started, &metrics);
        items.clear();
        replies.clear();
    }
}

/// Observes a committed (or failed) batch and answers each of its waiters — every one with the
/// error if it failed.
fn answer(
    items: &[DecisionWrite],
    replies: &mut Vec<Reply>,
    result: aim_store::Result<Vec<DecisionOutcome>>,
    started: std::time::Instant,
    metrics: &WriterMetrics,
) {
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
}

/// The writer loop of a store whose commits wait on a database server (PostgreSQL): each batch
/// is a task of its own, and the next batch starts as soon as the previous one has taken every
/// row lock and only its COMMIT — the database's WAL flush — is left
/// ([`aim_store::AgentStore::commit_decisions_then`]). The next batch's nonce claims and
/// decision rows then run during that flush; its counters and chain head wait for the commit,
/// as a replica's batch would. Each batch takes everything queued when the previous one stops
/// taking locks. Ends when every sender is dropped and every batch has answered.
async fn run_overlapped(
    store: Arc<dyn Store>,
    batch_max: usize,
    metrics: WriterMetrics,
    mut rx: mpsc::Receiver<(DecisionWrite, Reply)>,
) {
    let mut open = tokio::task::JoinSet::new();
    while let Some((item, reply)) = rx.recv().await {
        let mut items = Vec::with_capacity(batch_max);
        let mut replies = Vec::with_capacity(batch_max);
        items.push(item);
        replies.push(reply);
        drain(&mut rx, batch_max, &mut items, &mut replies);
        let (locked, committing) = oneshot::channel::<()>();
        let store = store.clone();
        let metrics = metrics.clone();
        open.spawn(async move {
            let started = std::time::Instant::now();
            let signal: Box<dyn FnOnce() + Send> = Box::new(move || {
                let _ = locked.send(());
            });
            let result = store.commit_decisions_then(&items, signal).await;
            answer(&items, &mut replies, result, started, &metrics);
        });
        // Err: the batch failed before its commit (it answered its waiters with the error).
        let _ = committing.await;
        while open.try_join_next().is_some() {}
    }
    while open.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use aim_store::{AuditRecord, DecisionOp};

    use super::*;

    fn record(n: usize) -> DecisionWrite {
        DecisionWrite {
            nonce: None,
            audit: AuditRecord {
                org_id: None,
                at: 1_700_000_000_000,
                event_type: "test.linger".into(),
                actor: "system".into(),
                subject: None,
                payload: serde_json::json!({ "n": n }),
                client_addr: None,
            },
            replay_audit: None,
            op: DecisionOp::None,
            prepared: None,
        }
    }

    /// A linger on a busy server (as many open connections as the floor asks for).
    fn linger(wait: Duration) -> Linger {
        Linger {
            wait,
            connections: Arc::new(AtomicUsize::new(LINGER_FLOOR)),
            target: LINGER_TARGET,
            quiet: LINGER_STEP,
        }
    }

    fn queue(n: usize) -> mpsc::Receiver<(DecisionWrite, Reply)> {
        let (tx, rx) = mpsc::channel(256);
        for i in 0..n {
            let (reply, _wait) = oneshot::channel();
            tx.try_send((record(i), reply)).unwrap();
        }
        rx
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lingering_stops_as_soon_as_the_batch_reaches_its_target_or_its_maximum() {
        let mut rx = queue(LINGER_TARGET + 8);
        let (mut items, mut replies) = (Vec::new(), Vec::new());
        let started = Instant::now();
        // A deadline far beyond one step: reaching it means the target was ignored.
        linger(Duration::from_secs(20)).fill(&mut rx, 256, &mut items, &mut replies);
        assert!(items.len() >= LINGER_TARGET, "{} items", items.len());
        assert_eq!(items.len(), replies.len());
        assert!(started.elapsed() < Duration::from_secs(10));

        let mut rx = queue(10);
        let (mut items, mut replies) = (Vec::new(), Vec::new());
        linger(Duration::from_secs(20)).fill(&mut rx, 4, &mut items, &mut replies);
        assert_eq!(items.len(), 4, "the batch maximum bounds the batch");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_step_that_brings_nothing_ends_the_wait() {
        let mut rx = queue(0);
        let (mut items, mut replies) = (Vec::new(), Vec::new());
        let started = Instant::now();
        linger(Duration::from_secs(20)).fill(&mut rx, 256, &mut items, &mut replies);
        assert!(items.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited for the deadline with nothing arriving"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_fewer_open_connections_than_the_floor_nothing_waits() {
        let mut rx = queue(3);
        let (mut items, mut replies) = (Vec::new(), Vec::new());
        let mut quiet = linger(Duration::from_secs(20));
        quiet.connections = Arc::new(AtomicUsize::new(LINGER_FLOOR - 1));
        quiet.fill(&mut rx, 256, &mut items, &mut replies);
        assert!(items.is_empty(), "returned before looking at the queue");
        // The same queue on a busy server is taken.
        linger(Duration::from_secs(20)).fill(&mut rx, 256, &mut items, &mut replies);
        assert_eq!(items.len(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writes_arriving_without_pause_are_waited_for_until_the_deadline_only() {
        let (tx, mut rx) = mpsc::channel(256);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sending = stop.clone();
        // One write every ~20 µs until the wait returns (or 2 s): every step brings some.
        let sender = std::thread::spawn(move || {
            let mut n = 0;
            let began = Instant::now();
            while !sending.load(Ordering::Acquire) && began.elapsed() < Duration::from_secs(2) {
                let (reply, _wait) = oneshot::channel();
                if tx.try_send((record(n), reply)).is_ok() {
                    n += 1;
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
            }
        });
        let (mut items, mut replies) = (Vec::new(), Vec::new());
        let mut patient = linger(Duration::from_millis(5));
        patient.target = usize::MAX;
        // Only the deadline may end this wait (a scheduling pause of the sender must not).
        patient.quiet = Duration::from_secs(60);
        let started = Instant::now();
        patient.fill(&mut rx, usize::MAX, &mut items, &mut replies);
        let waited = started.elapsed();
        stop.store(true, Ordering::Release);
        sender.join().unwrap();
        // Without the deadline it would wait as long as writes keep coming (2 s here).
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    }

    /// PostgreSQL's writer keeps two batches open (one committing, the next taking its locks):
    /// every write is answered, each committed once, and the organization's chain stays one
    /// linear chain that verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapped_batches_answer_every_write_and_keep_one_chain() {
        let Some((_db, store)) = aim_store::testing::postgres_store("writer_overlap").await else {
            return;
        };
        assert!(
            !store.commits_block_caller(),
            "the overlapped writer is PostgreSQL's"
        );
        let org = uuid::Uuid::now_v7();
        let writer =
            DecisionWriter::spawn(store.clone(), 16, Duration::ZERO, WriterMetrics::default())
                .unwrap();
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..600 {
            let w = writer.clone();
            let mut audit = record(n).audit;
            audit.org_id = Some(org);
            writes.spawn(async move { w.commit_record(audit, DecisionOp::None).await });
        }
        let mut committed = 0;
        while let Some(done) = writes.join_next().await {
            assert!(
                done.unwrap().unwrap(),
                "a record without a precondition commits"
            );
            committed += 1;
        }
        assert_eq!(committed, 600);
        let leaves = aim_store::testing::verify_chain(&*store, org).await;
        assert_eq!(leaves.len(), 600, "each write once, in one linear chain");
        drop(writer);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_arriving_alone_is_committed_without_lingering() {
        let (_db, store) = aim_store::testing::sqlite_store().await;
        let metrics = WriterMetrics::default();
        // A linger long enough that any wait for a lone write fails the timeout below.
        let writer =
            DecisionWriter::spawn(store, 256, Duration::from_secs(100), metrics.clone()).unwrap();
        for n in 0..3 {
            let done = tokio::time::timeout(
                Duration::from_secs(30),
                writer.commit_record(record(n).audit, DecisionOp::None),
            )
            .await
            .expect("a lone write waited for the linger");
            assert!(done.unwrap());
        }
    }
}
