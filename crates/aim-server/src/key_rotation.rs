//! Master-key rotation: add a key version, re-encrypt every sealed column to it, online.
//!
//! Invariants:
//! - Every sealed column is listed in [`aim_store::SealedColumn::ALL`]; the pass walks each in
//!   row order, in batches, so it never holds a long transaction or a large result in memory.
//! - A value is replaced with compare-and-swap ([`aim_store::Store::replace_sealed`]): if the
//!   server changed it meanwhile (TOTP re-enrolment), the newer value is kept, not overwritten.
//! - Until a row is re-encrypted it stays readable: the old version stays in the ring, and a
//!   running server reloads the key file when it meets an unknown (newer) version.
//! - Old versions are retired ([`RotateOptions::retire_old`]) only after a verification pass
//!   finds no value sealed with them; otherwise the command fails and keeps the file as it is.
//! - With `AIM_MASTER_KEY` the ring is not a file: the operator adds the version to the
//!   environment (`v1:<old>,v2:<new>`) on every replica, restarts, then runs the re-encryption
//!   pass (`--reseal-only`); retiring means dropping `v1:` from the variable afterwards.

use aim_store::{SealedColumn, SealedRow, Store};

use crate::config::Config;
use crate::error::Error;
use crate::keyring::{self, KeyRing};

/// What to do.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Do not add a version; only re-encrypt to the newest existing one.
    pub reseal_only: bool,
    /// After re-encrypting, drop older versions from the key file (only if none is still used).
    pub retire_old: bool,
    /// Rows per batch.
    pub batch: u32,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            reseal_only: false,
            retire_old: false,
            batch: 200,
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// The version every value is now sealed with.
    pub version: u32,
    /// Whether a version was added.
    pub added: bool,
    /// Sealed values looked at.
    pub examined: u64,
    /// Values re-encrypted.
    pub resealed: u64,
    /// Values changed by the server during the pass (left as the server wrote them).
    pub changed_meanwhile: u64,
    /// Values still sealed with an older version after the pass.
    pub remaining_old: u64,
    /// Versions removed from the key file.
    pub retired: Vec<u32>,
}

/// Re-encrypts every sealed value not sealed with the ring's newest version.
pub async fn reseal_all(
    store: &dyn Store,
    ring: &KeyRing,
    batch: u32,
) -> Result<RotateReport, Error> {
    let version = ring
        .current_version()
        .ok_or_else(|| Error::Crypto("empty key ring".into()))?;
    let mut report = RotateReport {
        version,
        ..Default::default()
    };
    for column in SealedColumn::ALL {
        let mut after: Option<SealedRow> = None;
        loop {
            let page = store.list_sealed(column, after.as_ref(), batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.row.clone());
            let full = page.len() >= batch as usize;
            for value in page {
                report.examined += 1;
                if keyring::sealed_version(&value.sealed) == Some(version) {
                    continue;
                }
                let context = value.row.context();
                let plain = ring.open(&context, &value.sealed).map_err(|e| {
                    Error::Crypto(format!("{} row {:?}: {e}", column.name(), value.row))
                })?;
                let fresh = ring.seal(&context, &plain)?;
                if store
                    .replace_sealed(column, &value.row, &value.sealed, &fresh)
                    .await?
                {
                    report.resealed += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
            if !full {
                break;
            }
        }
    }
    report.remaining_old = count_older(store, version, batch).await?;
    Ok(report)
}

/// Counts sealed values whose version is not `version`.
pub async fn count_older(store: &dyn Store, version: u32, batch: u32) -> Result<u64, Error> {
    let mut n = 0;
    for column in SealedColumn::ALL {
        let mut after: Option<SealedRow> = None;
        loop {
            let page = store.list_sealed(column, after.as_ref(), batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.row.clone());
            let full = page.len() >= batch as usize;
            n += page
                .iter()
                .filter(|v| keyring::sealed_version(&v.sealed) != Some(version))
                .count() as u64;
            if !full {
                break;
            }
        }
    }
    Ok(n)
}

/// `opena2a server rotate-key`: adds a version to the key file (unless `reseal_only`), re-encrypts
/// every sealed value through `store`, optionally retires older versions. Safe while servers run.
pub async fn rotate(
    store: &dyn Store,
    config: &Config,
    opts: RotateOptions,
) -> Result<RotateReport, Error> {
    let from_env = config.master_key.is_some();
    if from_env && !opts.reseal_only {
        return Err(Error::Config(
            "the master key comes from AIM_MASTER_KEY, which this command cannot change: set \
             AIM_MASTER_KEY=\"v1:<old>,v2:<new base64 of 32 random bytes>\" on every server, \
             restart them, then run `opena2a server rotate-key --reseal-only`"
                .into(),
        ));
    }
    if from_env && opts.retire_old {
        return Err(Error::Config(
            "with AIM_MASTER_KEY, retire an old version by removing it from the variable".into(),
        ));
    }
    let added = if opts.reseal_only {
        None
    } else {
        if !config.master_key_file.exists() {
            return Err(Error::Config(format!(
                "{} does not exist: start the server once to create it",
                config.master_key_file.display()
            )));
        }
        Some(keyring::add_version_to_file(&config.master_key_file)?)
    };
    let ring = KeyRing::load(config.master_key.as_ref(), &config.master_key_file)?;
    let mut report = reseal_all(store, &ring, opts.batch.max(1)).await?;
    report.added = added.is_some();
    if opts.retire_old {
        if report.remaining_old > 0 {
            return Err(Error::Config(format!(
                "{} value(s) are still sealed with an older version (changed during the pass); \
                 run the command again before retiring",
                report.remaining_old
            )));
        }
        report.retired = keyring::retire_versions_below(&config.master_key_file, report.version)?;
    }
    let audit = aim_store::AuditRecord {
        org_id: None,
        at: chrono::Utc::now().timestamp_millis(),
        event_type: "server.master_key.rotated".into(),
        actor: "system".into(),
        subject: None,
        payload: serde_json::json!({
            "version": report.version,
            "added": report.added,
            "resealed": report.resealed,
            "retired": report.retired,
        }),
        client_addr: None,
    };
    store.append_audit(&audit).await?;
    Ok(report)
}
