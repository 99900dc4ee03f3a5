//! The local JSONL audit log (`$OPENA2A_HOME/aim-core/audit.jsonl`; the caller passes the path).
//!
//! # File invariants
//!
//! - One entry per line: the canonical line of [`Entry::canonical_line`] followed by `\n`. No
//!   header, no blank lines. Line `n` (1-based) holds `seq` `n - 1`.
//! - Appends take an exclusive advisory lock ([`std::fs::File::lock`]) on the file, read the head
//!   entry by reading backwards from the end (never the whole file), write the whole line with one
//!   `write_all` on an `O_APPEND` handle, `sync_data`, then unlock. Two processes therefore cannot
//!   fork the chain. The parent directory is created with mode 0700 and the file with 0600 (unix).
//! - **Crash rule**: a last line without `\n` is the remains of an append that did not finish.
//!   `append` refuses to write after it (error naming the byte offset), `verify` reports it as
//!   [`ProblemKind::Malformed`] at that line, and [`AuditFile::discard_incomplete_tail`] removes
//!   it explicitly. Nothing is ever repaired silently.
//! - Readers (`verify`, proofs) take a shared lock only long enough to read the file length, then
//!   read that prefix, which appends never change.
//!
//! `append` checks the head entry it chains onto (canonical form and hash) but not the whole
//! file; [`AuditFile::verify`] does that.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::chain::{
    ChainVerifier, Entry, EntryDigest, MAX_LINE_BYTES, NewEntry, Problem, ProblemKind,
};
use super::checkpoint::Checkpoint;
use super::merkle::{self, Hash};
use crate::clock::Clock;
use crate::{Error, Result};

/// Bytes read per chunk while verifying; also the unit of work handed to a thread.
const CHUNK: usize = 1 << 20;

/// The JSONL audit log file. Cheap to create; every operation opens the file itself.
#[derive(Clone, Debug)]
pub struct AuditFile {
    path: PathBuf,
}

/// How [`AuditFile::verify_with`] works.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Re-canonicalize every entry through the generic JCS serializer instead of the fast path
    /// (see [`EntryDigest::of_line`]). The first line is always checked strictly.
    pub strict: bool,
    /// Worker threads hashing lines: 0 = one per available core (at most 8), 1 = everything on the
    /// calling thread.
    pub threads: usize,
    /// If set, a checkpoint must be signed by this key.
    pub trusted_key: Option<VerifyingKey>,
}

/// The verdict of [`AuditFile::verify`]. `entries`, `head_hash` and `root_hash` describe the valid
/// prefix (the whole log when `ok`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: u64,
    pub head_hash: Option<String>,
    /// Merkle root (lowercase hex) of the valid prefix.
    pub root_hash: String,
    pub problem: Option<Problem>,
    /// When a checkpoint was given and matched: the RFC 9162 consistency proof from its size to
    /// `entries`, which was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// An RFC 9162 inclusion proof for one entry. All hashes lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// = the entry's `seq`.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The entry's `hash` member (the leaf's data).
    pub entry_hash: String,
    /// `SHA-256(0x00 || raw entry hash)`.
    pub leaf_hash: String,
    /// Siblings from the leaf upwards (RFC 9162 §2.1.3.1 order).
    pub audit_path: Vec<String>,
    pub root_hash: String,
}

impl InclusionProof {
    /// Recomputes the leaf from `entry_hash` and checks the path leads to `root_hash`.
    pub fn verify(&self) -> bool {
        let (Some(entry), Some(leaf), Some(root), Some(path)) = (
            super::chain::parse_hex32(&self.entry_hash),
            super::chain::parse_hex32(&self.leaf_hash),
            super::chain::parse_hex32(&self.root_hash),
            parse_path(&self.audit_path),
        ) else {
            return false;
        };
        merkle::leaf_hash(&entry) == leaf
            && merkle::verify_inclusion(&leaf, self.leaf_index, self.tree_size, &path, &root)
    }
}

/// An RFC 9162 consistency proof between two sizes of the log. All hashes lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    /// RFC 9162 §2.1.4.1 `PROOF(oldSize, D[newSize])`.
    pub path: Vec<String>,
}

impl ConsistencyProof {
    /// Checks the proof with [`merkle::verify_consistency`].
    pub fn verify(&self) -> bool {
        let (Some(old), Some(new), Some(path)) = (
            super::chain::parse_hex32(&self.old_root),
            super::chain::parse_hex32(&self.new_root),
            parse_path(&self.path),
        ) else {
            return false;
        };
        merkle::verify_consistency(self.old_size, self.new_size, &old, &new, &path)
    }
}

fn parse_path(p: &[String]) -> Option<Vec<Hash>> {
    p.iter().map(|h| super::chain::parse_hex32(h)).collect()
}

fn hex_path(p: &[Hash]) -> Vec<String> {
    p.iter().map(hex::encode).collect()
}

/// The result of scanning a log.
struct Scan {
    verifier: ChainVerifier,
}

impl AuditFile {
    /// Refers to the log at `path`. A missing file is an empty log (created by the first
    /// [`append`](Self::append)); an existing path that is not a regular file is an error.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err(Error::invalid(
                "audit log path",
                format!("{} exists and is not a regular file", path.display()),
            )),
            Ok(_) => Ok(Self { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self { path }),
            Err(e) => Err(Error::io("inspect audit log", path, e)),
        }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> Error + '_ {
        move |e| Error::io(action, &self.path, e)
    }

    /// Appends one entry chained onto the current head and returns it once it is on disk
    /// (`sync_data` done). Fails closed: if this returns `Err`, the caller must treat the event as
    /// not recorded.
    pub fn append(&self, new: NewEntry, clock: &dyn Clock) -> Result<Entry> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| Error::io("create directory", parent, e))?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(&self.path).map_err(self.io("open audit log"))?;
        file.lock().map_err(self.io("lock audit log"))?;
        let result = self.append_locked(&mut file, new, clock);
        // Closing the handle releases the lock too; unlocking explicitly just makes it prompt.
        let _ = file.unlock();
        result
    }

    fn append_locked(&self, file: &mut File, new: NewEntry, clock: &dyn Clock) -> Result<Entry> {
        let len = file.metadata().map_err(self.io("stat audit log"))?.len();
        if let Some(offset) = incomplete_tail(file, len).map_err(self.io("read audit log"))? {
            return Err(Error::State(format!(
                "{} ends with an incomplete line at byte offset {offset} ({} bytes without a newline), probably left by a crash during an append; refusing to append. Inspect it, then remove it with `AuditFile::discard_incomplete_tail` (or truncate the file to {offset} bytes)",
                self.path.display(),
                len - offset
            )));
        }
        let head = self.read_head(file, len)?;
        let entry = Entry::seal(head.as_ref(), new, clock.now())?;
        let mut line = entry.canonical_line()?;
        if line.len() > MAX_LINE_BYTES {
            return Err(Error::invalid(
                "audit entry",
                format!(
                    "{} bytes serialized, the limit is {MAX_LINE_BYTES}",
                    line.len()
                ),
            ));
        }
        line.push(b'\n');
        file.write_all(&line)
            .map_err(self.io("append to audit log"))?;
        file.sync_data().map_err(self.io("sync audit log"))?;
        Ok(entry)
    }

    /// The last entry, checked (canonical form and hash), found by reading backwards.
    fn read_head(&self, file: &mut File, len: u64) -> Result<Option<Entry>> {
        if len == 0 {
            return Ok(None);
        }
        let (start, block) = last_lines(file, len, 1, 2 * (MAX_LINE_BYTES as u64 + 1))
            .map_err(self.io("read audit log"))?;
        let line = block.strip_suffix(b"\n").unwrap_or(&block);
        let bad = |why: String| {
            Error::State(format!(
                "the last entry of {} (byte offset {start}) is invalid: {why}; refusing to chain onto it. Run `opena2a audit verify`",
                self.path.display()
            ))
        };
        if line.contains(&b'\n') {
            return Err(bad("it could not be isolated".into()));
        }
        let entry = Entry::from_line(line).map_err(bad)?;
        let expected = entry.expected_hash()?;
        if expected != entry.hash {
            return Err(bad(format!("its hash {} should be {expected}", entry.hash)));
        }
        Ok(Some(entry))
    }

    /// Removes an incomplete last line (see the crash rule in the [module docs](self)). Returns the
    /// byte offset it was cut at, or `None` if the file ends cleanly. Takes the exclusive lock.
    pub fn discard_incomplete_tail(&self) -> Result<Option<u64>> {
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open audit log", &self.path, e)),
        };
        file.lock().map_err(self.io("lock audit log"))?;
        let result = (|| {
            let len = file.metadata()?.len();
            let cut = incomplete_tail(&mut file, len)?;
            if let Some(offset) = cut {
                file.set_len(offset)?;
                file.sync_all()?;
            }
            Ok(cut)
        })()
        .map_err(self.io("truncate audit log"));
        let _ = file.unlock();
        result
    }

    /// Opens the file for reading and returns it with its length, read under a shared lock so the
    /// length is at a line boundary. `None` if the file does not exist.
    fn snapshot(&self) -> Result<Option<(File, u64)>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open audit log", &self.path, e)),
        };
        file.lock_shared().map_err(self.io("lock audit log"))?;
        let len = file.metadata().map(|m| m.len());
        let _ = file.unlock();
        let len = len.map_err(self.io("stat audit log"))?;
        Ok(Some((file, len)))
    }

    /// Every entry in order, parsed strictly ([`Entry::from_line`]) but **not** verified (use
    /// [`verify`](Self::verify)). A malformed line yields an `Err` item and iteration continues;
    /// an incomplete last line or an over-long line yields a final `Err`.
    pub fn entries(&self) -> Result<impl Iterator<Item = Result<Entry>>> {
        let reader = self
            .snapshot()?
            .map(|(f, len)| io::BufReader::with_capacity(CHUNK, f.take(len)));
        Ok(EntryIter {
            reader,
            line: 0,
            path: self.path.clone(),
        })
    }

    /// The last `limit` entries, oldest first, read backwards from the end. Parsed strictly, not
    /// verified. Errors on an incomplete last line or a malformed entry among them.
    pub fn tail(&self, limit: usize) -> Result<Vec<Entry>> {
        let Some((mut file, len)) = self.snapshot()? else {
            return Ok(Vec::new());
        };
        if len == 0 || limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(offset) = incomplete_tail(&mut file, len).map_err(self.io("read audit log"))? {
            return Err(Error::State(format!(
                "{} ends with an incomplete line at byte offset {offset}; run `opena2a audit verify`",
                self.path.display()
            )));
        }
        let (start, block) =
            last_lines(&mut file, len, limit, u64::MAX).map_err(self.io("read audit log"))?;
        let mut offset = start;
        let mut out = Vec::with_capacity(limit);
        for line in block.split_inclusive(|&b| b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let e = Entry::from_line(body).map_err(|why| {
                Error::invalid("audit entry", format!("at byte offset {offset}: {why}"))
            })?;
            out.push(e);
            offset += line.len() as u64;
        }
        Ok(out)
    }

    /// Verifies the whole log (and, given a checkpoint, that it is an append-only extension of
    /// the checkpointed log) with default [`VerifyOptions`]. `progress(done, total)` is called
    /// with bytes processed. `Err` only for I/O errors; a broken log is `Ok(report)` with
    /// `ok == false`.
    pub fn verify(
        &self,
        checkpoint: Option<&Checkpoint>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        self.verify_with(&VerifyOptions::default(), checkpoint, progress)
    }

    /// [`verify`](Self::verify) with options.
    ///
    /// Order of findings: the first chain problem in the file wins; otherwise an invalid
    /// checkpoint ([`ProblemKind::CheckpointInvalid`]); otherwise the comparison with the
    /// checkpoint ([`ProblemKind::Truncated`], [`ProblemKind::HistoryRewritten`]).
    pub fn verify_with(
        &self,
        opts: &VerifyOptions,
        checkpoint: Option<&Checkpoint>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let mut cp_problem = None;
        let mut cp_target = None;
        if let Some(cp) = checkpoint {
            match cp
                .verify(opts.trusted_key.as_ref())
                .and_then(|()| cp.root())
            {
                Ok(root) => cp_target = Some((cp.tree_size, root)),
                Err(e) => {
                    cp_problem = Some(Problem {
                        seq: None,
                        line: None,
                        kind: ProblemKind::CheckpointInvalid,
                        message: e.to_string(),
                    })
                }
            }
        }
        let mut verifier = ChainVerifier::new().strict(opts.strict);
        if let Some((size, _)) = cp_target {
            verifier = verifier.remember_root_at(size).keep_leaves(true);
        }
        let scan = self.scan(verifier, opts, progress)?;
        let chain_problem = scan.verifier.problem().cloned();
        let summary = scan.verifier.finish();
        let mut report = VerifyReport {
            ok: false,
            entries: summary.size,
            head_hash: summary.head_hash.clone(),
            root_hash: hex::encode(summary.root),
            problem: None,
            consistency: None,
        };
        if let Some(p) = chain_problem.or(cp_problem) {
            report.problem = Some(p);
            return Ok(report);
        }
        if let Some((size, root)) = cp_target {
            match summary.check_checkpoint(size, &root) {
                Ok(path) => {
                    report.consistency = Some(ConsistencyProof {
                        old_size: size,
                        new_size: summary.size,
                        old_root: hex::encode(root),
                        new_root: hex::encode(summary.root),
                        path: hex_path(&path),
                    })
                }
                Err(p) => {
                    report.problem = Some(p);
                    return Ok(report);
                }
            }
        }
        report.ok = true;
        Ok(report)
    }

    /// Verifies the log and signs a checkpoint over it. Refuses (`Err`) if the log does not
    /// verify: a checkpoint must never endorse a broken history.
    pub fn checkpoint(
        &self,
        key: &SigningKey,
        key_id: &str,
        clock: &dyn Clock,
    ) -> Result<Checkpoint> {
        let report = self.verify(None, &mut |_, _| {})?;
        if let Some(p) = report.problem {
            return Err(Error::State(format!(
                "refusing to sign a checkpoint: the audit log does not verify ({p})"
            )));
        }
        let root = super::chain::parse_hex32(&report.root_hash)
            .ok_or_else(|| Error::State("internal: bad root hex".into()))?;
        Ok(Checkpoint::sign(
            key,
            key_id,
            report.entries,
            &root,
            clock.now(),
        ))
    }

    /// Verifies the log, keeping all leaves; `Err` if it does not verify.
    fn verified_leaves(&self, why: &str) -> Result<Vec<Hash>> {
        let scan = self.scan(
            ChainVerifier::new().keep_leaves(true),
            &VerifyOptions::default(),
            &mut |_, _| {},
        )?;
        if let Some(p) = scan.verifier.problem() {
            return Err(Error::State(format!(
                "refusing to {why}: the audit log does not verify ({p})"
            )));
        }
        Ok(scan.verifier.finish().leaves)
    }

    /// The RFC 9162 inclusion proof of entry `seq` in the current log (which must verify).
    pub fn inclusion_proof(&self, seq: u64) -> Result<InclusionProof> {
        let leaves = self.verified_leaves("prove inclusion")?;
        let size = leaves.len() as u64;
        if seq >= size {
            return Err(Error::NotFound {
                what: "audit entry",
                name: format!("seq {seq} (the log has {size} entries)"),
            });
        }
        let path = merkle::inclusion_proof(&leaves, seq)?;
        let entry = self
            .entries()?
            .nth(seq as usize)
            .ok_or_else(|| Error::State("the audit log changed while proving".into()))??;
        Ok(InclusionProof {
            leaf_index: seq,
            tree_size: size,
            entry_hash: entry.hash,
            leaf_hash: hex::encode(leaves[seq as usize]),
            audit_path: hex_path(&path),
            root_hash: hex::encode(merkle::root(&leaves)),
        })
    }

    /// The RFC 9162 consistency proof from the first `old_size` entries to the current log
    /// (which must verify).
    pub fn consistency_proof(&self, old_size: u64) -> Result<ConsistencyProof> {
        let leaves = self.verified_leaves("prove consistency")?;
        let path = merkle::consistency_proof(&leaves, old_size)?;
        let old = usize::try_from(old_size)
            .unwrap_or(usize::MAX)
            .min(leaves.len());
        Ok(ConsistencyProof {
            old_size,
            new_size: leaves.len() as u64,
            old_root: hex::encode(merkle::root(&leaves[..old])),
            new_root: hex::encode(merkle::root(&leaves)),
            path: hex_path(&path),
        })
    }

    /// Feeds the file's lines to `verifier`, stopping at the first problem.
    fn scan(
        &self,
        mut verifier: ChainVerifier,
        opts: &VerifyOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Scan> {
        let Some((file, len)) = self.snapshot()? else {
            progress(0, 0);
            return Ok(Scan { verifier });
        };
        let mut reader = ChunkReader::new(file.take(len));
        let threads = match opts.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            n => n,
        };
        let strict = opts.strict;
        let io_err = self.io("read audit log");
        let end = if threads <= 1 {
            let mut first = true;
            loop {
                match reader
                    .next()
                    .map_err(|e| Error::io("read audit log", &self.path, e))?
                {
                    None => break None,
                    Some(Piece::Lines { buf, end }) => {
                        let digests = digest_lines(&buf, strict, first);
                        first = false;
                        if feed(&mut verifier, digests) {
                            break None;
                        }
                        progress(end, len);
                    }
                    Some(other) => break Some(other),
                }
            }
        } else {
            scan_parallel(&mut reader, &mut verifier, threads, strict, len, progress)
                .map_err(io_err)?
        };
        match end {
            Some(Piece::Incomplete { offset, len: n }) => {
                verifier.reject_line(format!(
                    "incomplete last line at byte offset {offset} ({n} bytes without a newline), probably left by a crash during an append; the entries before it are intact. Remove it with `AuditFile::discard_incomplete_tail` (truncate to {offset} bytes)"
                ));
            }
            Some(Piece::TooLong { offset }) => {
                verifier.reject_line(format!(
                    "line at byte offset {offset} is longer than the {MAX_LINE_BYTES}-byte limit"
                ));
            }
            _ => {}
        }
        progress(len, len);
        Ok(Scan { verifier })
    }
}

/// Pushes digests in order; `true` if the verifier found a problem.
fn feed(
    verifier: &mut ChainVerifier,
    digests: Vec<std::result::Result<EntryDigest, String>>,
) -> bool {
    digests
        .into_iter()
        .any(|d| verifier.push_digest(d, true).is_err())
}

/// Digests every `\n`-terminated line of `buf` (the expensive, independent per-line work). The
/// first line of the file always takes the strict path, like [`ChainVerifier::push_line`].
fn digest_lines(
    buf: &[u8],
    strict: bool,
    first_chunk: bool,
) -> Vec<std::result::Result<EntryDigest, String>> {
    let mut out = Vec::with_capacity(buf.len() / 200 + 1);
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', buf) {
        let line = &buf[start..nl];
        out.push(EntryDigest::of_line(
            line,
            strict || (first_chunk && start == 0),
        ));
        start = nl + 1;
    }
    out
}

/// Ordered parallel map: `threads` workers digest chunks, the calling thread feeds the verifier
/// in file order (the only sequential part: comparisons, one leaf hash and the Merkle frontier).
fn scan_parallel(
    reader: &mut ChunkReader,
    verifier: &mut ChainVerifier,
    threads: usize,
    strict: bool,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<Option<Piece>> {
    type Digests = Vec<std::result::Result<EntryDigest, String>>;
    let stop = AtomicBool::new(false);
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads * 2);
    let work_rx = Mutex::new(work_rx);
    let (res_tx, res_rx) = mpsc::channel::<(u64, Digests)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let res_tx = res_tx.clone();
            let work_rx = &work_rx;
            let stop = &stop;
            s.spawn(move || {
                loop {
                    let job = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((idx, buf)) = job else { return };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if res_tx
                        .send((idx, digest_lines(&buf, strict, idx == 0)))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(res_tx);

        let mut sent = 0u64;
        let mut done = 0u64;
        let mut ends = std::collections::VecDeque::new();
        let mut pending: BTreeMap<u64, Digests> = BTreeMap::new();
        let mut failed = false;
        let mut process = |pending: &mut BTreeMap<u64, Digests>,
                           ends: &mut std::collections::VecDeque<u64>,
                           done: &mut u64,
                           failed: &mut bool| {
            while !*failed {
                let Some(d) = pending.remove(done) else { break };
                if feed(verifier, d) {
                    *failed = true;
                    stop.store(true, Ordering::Relaxed);
                }
                *done += 1;
                if let Some(end) = ends.pop_front() {
                    progress(end, total);
                }
            }
        };
        let mut tail = None;
        let mut read_err = None;
        while !failed {
            match reader.next() {
                Ok(None) => break,
                Ok(Some(Piece::Lines { buf, end })) => {
                    ends.push_back(end);
                    if work_tx.send((sent, buf)).is_err() {
                        break;
                    }
                    sent += 1;
                    while let Ok((i, d)) = res_rx.try_recv() {
                        pending.insert(i, d);
                    }
                    process(&mut pending, &mut ends, &mut done, &mut failed);
                }
                Ok(Some(other)) => {
                    tail = Some(other);
                    break;
                }
                Err(e) => {
                    read_err = Some(e);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        drop(work_tx);
        while !failed && done < sent && read_err.is_none() {
            match res_rx.recv() {
                Ok((i, d)) => {
                    pending.insert(i, d);
                    process(&mut pending, &mut ends, &mut done, &mut failed);
                }
                Err(_) => break,
            }
        }
        if let Some(e) = read_err {
            return Err(e);
        }
        if done < sent && !failed {
            return Err(io::Error::other(
                "a verification worker stopped unexpectedly",
            ));
        }
        Ok(if failed { None } else { tail })
    })
}

/// What [`ChunkReader`] yields.
enum Piece {
    /// Complete lines, each ending with `\n`; `end` is the file offset after them.
    Lines { buf: Vec<u8>, end: u64 },
    /// Trailing bytes without a final `\n`, starting at `offset`.
    Incomplete { offset: u64, len: u64 },
    /// A line longer than [`MAX_LINE_BYTES`] starting at `offset`.
    TooLong { offset: u64 },
}

/// Reads a file in chunks of whole lines.
struct ChunkReader {
    r: io::Take<File>,
    carry: Vec<u8>,
    /// File offset of `carry[0]`.
    offset: u64,
    eof: bool,
}

impl ChunkReader {
    fn new(r: io::Take<File>) -> Self {
        Self {
            r,
            carry: Vec::new(),
            offset: 0,
            eof: false,
        }
    }

    fn next(&mut self) -> io::Result<Option<Piece>> {
        if self.eof {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            let old = buf.len();
            buf.resize(old + CHUNK, 0);
            let n = loop {
                match self.r.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(old + n);
            if n == 0 {
                self.eof = true;
                return Ok((!buf.is_empty()).then_some(Piece::Incomplete {
                    offset: self.offset,
                    len: buf.len() as u64,
                }));
            }
            if let Some(p) = memchr::memrchr(b'\n', &buf[old..]) {
                let cut = old + p + 1;
                self.carry = buf[cut..].to_vec();
                buf.truncate(cut);
                self.offset += cut as u64;
                return Ok(Some(Piece::Lines {
                    buf,
                    end: self.offset,
                }));
            }
            if buf.len() > MAX_LINE_BYTES {
                self.eof = true;
                return Ok(Some(Piece::TooLong {
                    offset: self.offset,
                }));
            }
        }
    }
}

/// If the file (of length `len`) does not end with `\n`, the offset where its last, incomplete
/// line starts.
fn incomplete_tail(file: &mut File, len: u64) -> io::Result<Option<u64>> {
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    read_at(file, len - 1, &mut last)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        read_at(file, start, &mut block[..n])?;
        if let Some(p) = memchr::memrchr(b'\n', &block[..n]) {
            return Ok(Some(start + p as u64 + 1));
        }
        end = start;
    }
    Ok(Some(0))
}

/// Reads backwards until the returned block (which ends at `len`, a `\n`) holds the last `n`
/// complete lines, or the whole file if it has fewer. Returns the block's start offset.
fn last_lines(file: &mut File, len: u64, n: usize, max_window: u64) -> io::Result<(u64, Vec<u8>)> {
    let mut window: u64 = 8 * 1024;
    loop {
        let w = window.min(len);
        let start = len - w;
        let mut block = vec![0u8; w as usize];
        read_at(file, start, &mut block)?;
        // Newlines other than the final one separate the lines inside the block.
        let body = &block[..block.len().saturating_sub(1)];
        let seps: Vec<usize> = memchr::memrchr_iter(b'\n', body).take(n).collect();
        if seps.len() == n {
            let cut = seps[n - 1] + 1;
            return Ok((start + cut as u64, block[cut..].to_vec()));
        }
        if start == 0 {
            return Ok((0, block));
        }
        if w >= max_window {
            return Err(io::Error::other(format!(
                "no line boundary found in the last {w} bytes"
            )));
        }
        window = window.saturating_mul(2);
    }
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

struct EntryIter {
    reader: Option<io::BufReader<io::Take<File>>>,
    line: u64,
    path: PathBuf,
}

impl Iterator for EntryIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        let mut buf = Vec::new();
        let read = io::BufRead::read_until(
            &mut (&mut *reader).take(MAX_LINE_BYTES as u64 + 1),
            b'\n',
            &mut buf,
        );
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.reader = None;
                return Some(Err(Error::io("read audit log", &self.path, e)));
            }
        };
        if n == 0 {
            self.reader = None;
            return None;
        }
        self.line += 1;
        let Some(body) = buf.strip_suffix(b"\n") else {
            self.reader = None;
            let why = if buf.len() > MAX_LINE_BYTES {
                "longer than the line limit"
            } else {
                "incomplete (no trailing newline)"
            };
            return Some(Err(Error::invalid(
                "audit log line",
                format!("line {} of {} is {why}", self.line, self.path.display()),
            )));
        };
        Some(
            Entry::from_line(body).map_err(|why| {
                Error::invalid("audit log line", format!("line {}: {why}", self.line))
            }),
        )
    }
}
