//! The local audit log: one canonical JSON entry per line in `aim-core/audit.jsonl`.
//!
//! Invariants:
//! - An append holds an exclusive lock on the file while it reads the head and writes, so two
//!   processes cannot fork the chain. The head is found by reading backwards from the end (O(1) in
//!   the log size).
//! - Each entry is written with one `write` on an `O_APPEND` descriptor, then `fdatasync`ed before
//!   the append returns.
//! - A log whose last byte is not `\n` ends with an incomplete line (a crash during a write, or
//!   damage). Appending to it is refused with the byte offset, and `verify` reports it as
//!   `MALFORMED`: nothing is silently truncated or written after garbage. The entry that was being
//!   written was never acknowledged, so removing the partial line (after looking at it) loses
//!   nothing that was promised.
//! - Verification streams the file: O(log n) memory without a checkpoint, 32 bytes per entry with
//!   one (to recompute the checkpointed root).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::chain::{ChainVerifier, Entry, NewEntry, Problem, ProblemKind};
use super::checkpoint::Checkpoint;
use super::merkle;
use crate::clock::Clock;
use crate::{Error, Result, fsio};

/// Longest accepted line (an entry with very large details is a mistake or an attack).
pub const MAX_LINE: usize = 1024 * 1024;

/// Outcome of [`AuditFile::verify`]. A broken log is a verdict (`ok: false`), not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries verified before the first problem (all of them when `ok`).
    pub entries: u64,
    pub head_hash: Option<String>,
    /// Merkle root of the verified entries.
    pub root_hash: String,
    pub problem: Option<Problem>,
}

/// An RFC 9162 inclusion proof of one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub audit_path: Vec<String>,
    pub root_hash: String,
    /// The entry the proof is about.
    pub entry: Entry,
}

/// A JSONL audit log file.
#[derive(Debug, Clone)]
pub struct AuditFile {
    path: PathBuf,
}

impl AuditFile {
    /// The log at `path` (a missing file is an empty log; it is created on first append).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Ok(AuditFile { path: path.into() })
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry after the current head and makes it durable.
    pub fn append(&self, new: NewEntry, clock: &dyn Clock) -> Result<Entry> {
        if let Some(dir) = self.path.parent() {
            fsio::ensure_private_dir(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(fsio::SECRET_FILE_MODE);
        }
        let mut f = opts
            .open(&self.path)
            .map_err(|e| Error::io("cannot open", &self.path, e))?;
        f.lock()
            .map_err(|e| Error::io("cannot lock", &self.path, e))?;
        let head = self.read_head(&mut f)?;
        let entry = Entry::seal(head.as_ref(), new, clock.now())?;
        let mut line = entry.to_line()?;
        line.push('\n');
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| Error::io("cannot append to", &self.path, e))?;
        Ok(entry)
    }

    /// The last entry, read backwards from the end.
    fn read_head(&self, f: &mut File) -> Result<Option<Entry>> {
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("cannot read", &self.path, e))?;
        if len == 0 {
            return Ok(None);
        }
        let lines = tail_lines(f, len, 1, &self.path)?;
        let last = lines
            .last()
            .ok_or_else(|| Error::invalid("audit log", "empty"))?;
        let entry: Entry = serde_json::from_str(last).map_err(|e| {
            Error::invalid(
                "audit log",
                format!(
                    "the last entry of {} is unreadable ({e}); run `opena2a audit verify`",
                    self.path.display()
                ),
            )
        })?;
        Ok(Some(entry))
    }

    /// The last `limit` entries, oldest first.
    pub fn tail(&self, limit: usize) -> Result<Vec<Entry>> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io("cannot open", &self.path, e)),
        };
        let len = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("cannot read", &self.path, e))?;
        if len == 0 || limit == 0 {
            return Ok(vec![]);
        }
        tail_lines(&mut f, len, limit, &self.path)?
            .iter()
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    Error::invalid("audit entry", format!("{e}; run `opena2a audit verify`"))
                })
            })
            .collect()
    }

    /// Every entry, oldest first (parsed, not verified).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.for_each_line(&mut |_, line| {
            out.push(serde_json::from_str(line).map_err(|e| Error::invalid("audit entry", e))?);
            Ok(())
        })?;
        Ok(out)
    }

    fn for_each_line(&self, f: &mut dyn FnMut(u64, &str) -> Result<()>) -> Result<()> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("cannot open", &self.path, e)),
        };
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::with_capacity(1024);
        let mut offset = 0u64;
        loop {
            buf.clear();
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::io("cannot read", &self.path, e))?;
            if n == 0 {
                return Ok(());
            }
            offset += n as u64;
            let line =
                std::str::from_utf8(&buf).map_err(|_| Error::invalid("audit log", "not UTF-8"))?;
            f(offset, line)?;
        }
    }

    /// Verifies the whole log, and, given a checkpoint, that the log still contains exactly the
    /// checkpointed history (no truncation, no rewrite). `progress(bytes_done, total_bytes)` is
    /// called about every megabyte.
    pub fn verify(
        &self,
        checkpoint: Option<&Checkpoint>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        self.verify_with(checkpoint, None, progress)
    }

    /// [`AuditFile::verify`] requiring the checkpoint to be signed by `trusted`.
    pub fn verify_with(
        &self,
        checkpoint: Option<&Checkpoint>,
        trusted: Option<&ed25519_dalek::VerifyingKey>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let total = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let mut v = if checkpoint.is_some() {
            ChainVerifier::keeping_leaves()
        } else {
            ChainVerifier::new()
        };
        let mut problem: Option<Problem> = None;
        let mut next_report = 0u64;
        let mut line_no = 0u64;
        self.for_each_line(&mut |offset, raw| {
            if problem.is_some() {
                return Ok(());
            }
            line_no += 1;
            let Some(line) = raw.strip_suffix('\n') else {
                problem = Some(Problem {
                    seq: None,
                    line: Some(line_no),
                    kind: ProblemKind::Malformed,
                    message: format!(
                        "line {line_no} is incomplete (no newline at byte {}): a write was interrupted or the file was damaged",
                        offset
                    ),
                });
                return Ok(());
            };
            if line.len() > MAX_LINE {
                problem = Some(Problem {
                    seq: None,
                    line: Some(line_no),
                    kind: ProblemKind::Malformed,
                    message: format!("line {line_no} is longer than {MAX_LINE} bytes"),
                });
                return Ok(());
            }
            if let Err(p) = v.push_line(line) {
                problem = Some(p);
            }
            if offset >= next_report {
                progress(offset, total);
                next_report = offset + (1 << 20);
            }
            Ok(())
        })?;
        progress(total, total);
        if problem.is_none()
            && let Some(cp) = checkpoint
        {
            problem = check_against(cp, trusted, &v);
        }
        let s = v.summary();
        Ok(VerifyReport {
            ok: problem.is_none(),
            entries: s.size,
            head_hash: s.head_hash,
            root_hash: merkle::to_hex(&s.root),
            problem,
        })
    }

    /// Verifies the log and signs a checkpoint of it. Refuses to checkpoint a broken log.
    pub fn checkpoint(
        &self,
        key: &ed25519_dalek::SigningKey,
        key_id: &str,
        clock: &dyn Clock,
    ) -> Result<Checkpoint> {
        let mut v = ChainVerifier::new();
        self.verify_lines(&mut v)?;
        let s = v.summary();
        Ok(Checkpoint::sign(key, key_id, s.size, &s.root, clock.now()))
    }

    fn verify_lines(&self, v: &mut ChainVerifier) -> Result<()> {
        self.for_each_line(&mut |_, raw| {
            let line = raw.strip_suffix('\n').ok_or_else(|| {
                Error::State(
                    "the audit log ends with an incomplete line; run `opena2a audit verify`".into(),
                )
            })?;
            v.push_line(line).map_err(|p| {
                Error::State(format!(
                    "the audit log is broken: {}; run `opena2a audit verify`",
                    p.message
                ))
            })
        })
    }

    /// The inclusion proof of entry `seq` in the current tree (the log is verified first).
    pub fn inclusion_proof(&self, seq: u64) -> Result<InclusionProof> {
        let mut v = ChainVerifier::keeping_leaves();
        self.verify_lines(&mut v)?;
        let leaves = v.leaves().unwrap_or_default();
        let idx = usize::try_from(seq)
            .ok()
            .filter(|i| *i < leaves.len())
            .ok_or_else(|| Error::NotFound {
                what: "audit entry",
                name: format!(
                    "{seq} (the log has {} entries, numbered from 0)",
                    leaves.len()
                ),
            })?;
        let path = merkle::inclusion_proof(leaves, seq)?;
        let entry = self
            .entries()?
            .into_iter()
            .nth(idx)
            .ok_or_else(|| Error::State("the log changed while it was read".into()))?;
        Ok(InclusionProof {
            leaf_index: seq,
            tree_size: leaves.len() as u64,
            leaf_hash: merkle::to_hex(&leaves[idx]),
            audit_path: path.iter().map(merkle::to_hex).collect(),
            root_hash: merkle::to_hex(&merkle::root(leaves)),
            entry,
        })
    }
}

/// Checks a verified chain (with leaves) against a checkpoint.
fn check_against(
    cp: &Checkpoint,
    trusted: Option<&ed25519_dalek::VerifyingKey>,
    v: &ChainVerifier,
) -> Option<Problem> {
    let bad = |kind, message: String| {
        Some(Problem {
            seq: None,
            line: None,
            kind,
            message,
        })
    };
    if let Err(e) = cp.verify(trusted) {
        return bad(
            ProblemKind::CheckpointInvalid,
            format!("the checkpoint is not valid: {e}"),
        );
    }
    let Ok(cp_root) = cp.root() else {
        return bad(
            ProblemKind::CheckpointInvalid,
            "the checkpoint root is malformed".into(),
        );
    };
    let leaves = v.leaves().unwrap_or_default();
    let n = leaves.len() as u64;
    if cp.tree_size > n {
        return bad(
            ProblemKind::Truncated,
            format!(
                "the checkpoint covers {} entries but the log has {n}: entries were removed from the end",
                cp.tree_size
            ),
        );
    }
    let Ok(proof) = merkle::consistency_proof(leaves, cp.tree_size) else {
        return bad(
            ProblemKind::CheckpointInvalid,
            "cannot build a consistency proof".into(),
        );
    };
    let now_root = merkle::root(leaves);
    if merkle::root(&leaves[..cp.tree_size as usize]) != cp_root
        || !merkle::verify_consistency(cp.tree_size, n, &cp_root, &now_root, &proof)
    {
        return Some(Problem {
            seq: None,
            line: None,
            kind: ProblemKind::HistoryRewritten,
            message: format!(
                "the first {} entries no longer hash to the checkpoint's root {}: history was rewritten",
                cp.tree_size, cp.root_hash
            ),
        });
    }
    None
}

/// Reads the last `n` complete lines (without newlines) by scanning backwards from `len`.
/// Fails if the file does not end with a newline.
fn tail_lines(f: &mut File, len: u64, n: usize, path: &Path) -> Result<Vec<String>> {
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))
        .and_then(|_| f.read_exact(&mut last))
        .map_err(|e| Error::io("cannot read", path, e))?;
    if last[0] != b'\n' {
        return Err(Error::State(format!(
            "{} ends with an incomplete line (after byte {len}, no newline): a write was interrupted or the file was damaged. \
             Nothing was appended; inspect the last line, then remove it (it was never acknowledged) or restore the file",
            path.display()
        )));
    }
    const CHUNK: u64 = 64 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    // Need n+1 newlines (the one ending the file plus one before each wanted line), or reach start.
    loop {
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        if newlines > n || pos == 0 {
            break;
        }
        if buf.len() > n.saturating_mul(MAX_LINE + 1) {
            return Err(Error::invalid(
                "audit log",
                "a line is longer than the maximum",
            ));
        }
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.read_exact(&mut chunk))
            .map_err(|e| Error::io("cannot read", path, e))?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
    }
    let text = String::from_utf8(buf).map_err(|_| Error::invalid("audit log", "not UTF-8"))?;
    let mut lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    if pos > 0 {
        lines.remove(0); // partial line at the chunk boundary
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use serde_json::json;

    fn clock() -> FixedClock {
        FixedClock(crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap())
    }

    fn new(i: usize) -> NewEntry {
        NewEntry {
            event_type: "e".into(),
            actor: Some("a".into()),
            subject: None,
            details: json!({ "i": i }),
        }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, AuditFile) {
        let d = tempfile::tempdir().unwrap();
        let log = AuditFile::open(d.path().join("core/audit.jsonl")).unwrap();
        for i in 0..n {
            log.append(new(i), &clock()).unwrap();
        }
        (d, log)
    }

    fn key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn append_reopen_verify_tail_and_prove() {
        let (_d, log) = log_with(5);
        let r = log.verify(None, &mut |_, _| {}).unwrap();
        assert!(r.ok && r.entries == 5, "{r:?}");
        let tail = log.tail(2).unwrap();
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(log.tail(100).unwrap().len(), 5);
        let p = log.inclusion_proof(3).unwrap();
        let path: Vec<merkle::Hash> = p
            .audit_path
            .iter()
            .map(|h| merkle::from_hex(h).unwrap())
            .collect();
        assert!(merkle::verify_inclusion(
            &merkle::from_hex(&p.leaf_hash).unwrap(),
            3,
            5,
            &path,
            &merkle::from_hex(&r.root_hash).unwrap()
        ));
        assert!(log.inclusion_proof(5).is_err());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn tail_works_across_chunk_boundaries() {
        let (_d, log) = log_with(0);
        for i in 0..400 {
            log.append(
                NewEntry {
                    details: json!({"pad": "x".repeat(300), "i": i}),
                    ..new(i)
                },
                &clock(),
            )
            .unwrap();
        }
        let t = log.tail(250).unwrap();
        assert_eq!(t.len(), 250);
        assert_eq!(t[0].seq, 150);
        assert_eq!(t[249].seq, 399);
    }

    #[test]
    fn checkpoint_detects_truncation_and_rewrite_and_accepts_growth() {
        let (_d, log) = log_with(6);
        let cp = log.checkpoint(&key(), "k", &clock()).unwrap();
        assert_eq!(cp.tree_size, 6);
        let ok = |l: &AuditFile, cp: &Checkpoint| l.verify(Some(cp), &mut |_, _| {}).unwrap();
        assert!(ok(&log, &cp).ok);
        log.append(new(6), &clock()).unwrap();
        assert!(ok(&log, &cp).ok, "growth is consistent");
        let original = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        // truncation: the chain alone cannot see it, the checkpoint does
        std::fs::write(log.path(), lines[..4].join("\n") + "\n").unwrap();
        assert!(log.verify(None, &mut |_, _| {}).unwrap().ok);
        assert_eq!(ok(&log, &cp).problem.unwrap().kind, ProblemKind::Truncated);
        // rewrite: rebuild a whole valid chain with different content
        std::fs::remove_file(log.path()).unwrap();
        for i in 0..7 {
            log.append(new(100 + i), &clock()).unwrap();
        }
        assert!(log.verify(None, &mut |_, _| {}).unwrap().ok);
        assert_eq!(
            ok(&log, &cp).problem.unwrap().kind,
            ProblemKind::HistoryRewritten
        );
        // a checkpoint from another key, when a trusted key is required
        std::fs::write(log.path(), &original).unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let r = log
            .verify_with(Some(&cp), Some(&other.verifying_key()), &mut |_, _| {})
            .unwrap();
        assert_eq!(r.problem.unwrap().kind, ProblemKind::CheckpointInvalid);
        let mut forged = cp.clone();
        forged.tree_size = 3;
        assert_eq!(
            ok(&log, &forged).problem.unwrap().kind,
            ProblemKind::CheckpointInvalid
        );
    }

    #[test]
    fn incomplete_last_line_blocks_appends_and_fails_verification() {
        let (_d, log) = log_with(3);
        let mut f = OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(b"{\"actor\":\"a\",\"det").unwrap();
        let before = std::fs::read(log.path()).unwrap();
        let e = log.append(new(3), &clock()).unwrap_err();
        assert!(e.to_string().contains("incomplete line"), "{e}");
        assert_eq!(
            std::fs::read(log.path()).unwrap(),
            before,
            "nothing was written"
        );
        let r = log.verify(None, &mut |_, _| {}).unwrap();
        assert!(!r.ok);
        assert_eq!(r.entries, 3);
        assert_eq!(r.problem.unwrap().kind, ProblemKind::Malformed);
        assert!(log.checkpoint(&key(), "k", &clock()).is_err());
    }

    #[test]
    fn concurrent_appends_stay_one_linear_chain() {
        let (_d, log) = log_with(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        log.append(new(t * 100 + i), &clock()).unwrap();
                    }
                });
            }
        });
        let r = log.verify(None, &mut |_, _| {}).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.entries, 100);
    }

    #[test]
    fn progress_is_reported_to_the_end() {
        let (_d, log) = log_with(10);
        let mut last = (0, 0);
        log.verify(None, &mut |d, t| last = (d, t)).unwrap();
        assert!(last.0 > 0 && last.0 == last.1);
    }
}
