//! The local pin store: `$OPENA2A_HOME/aim-mcp/pins/<name>.json`.
//!
//! Invariants: a pin file is written atomically (`aim_core::fsio::atomic_write`, mode 0600, in a
//! 0700 directory); the pin name is a safe file name (letters, digits, `.`, `_`, `-`, at most
//! 128 bytes, not starting with `.`); a pin whose stored hash does not match its manifest is
//! rejected on load (a hand-edited pin is not trusted silently).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::{Error, Result};

/// `format` of a pin file.
pub const PIN_FORMAT: &str = "opena2a-mcp-pin";

/// A pinned manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub format: String,
    pub version: u32,
    /// The server's name in the client config.
    pub name: String,
    pub pinned_at: String,
    /// Where the server was found (client and config path), for humans.
    pub source: String,
    pub manifest_hash: String,
    pub structural_hash: String,
    pub manifest: Manifest,
}

/// The pin directory of a data root.
#[derive(Debug, Clone)]
pub struct PinStore {
    dir: PathBuf,
}

/// Checks that `name` can be a pin file name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "pin name",
            format!(
                "{name:?}: use letters, digits, '.', '_' and '-' (max 128, not starting with '.')"
            ),
        ))
    }
}

impl PinStore {
    /// The store under `home` (`$OPENA2A_HOME`).
    pub fn new(home: &Path) -> Self {
        PinStore {
            dir: home.join("aim-mcp").join("pins"),
        }
    }

    /// The file of pin `name`.
    pub fn path_of(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Pins `manifest` under `name` (replacing an earlier pin).
    pub fn save(
        &self,
        name: &str,
        source: &str,
        manifest: &Manifest,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Pin> {
        let path = self.path_of(name)?;
        let pin = Pin {
            format: PIN_FORMAT.into(),
            version: 1,
            name: name.into(),
            pinned_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source: source.into(),
            manifest_hash: manifest.surface_hash()?,
            structural_hash: manifest.structural_hash()?,
            manifest: manifest.clone(),
        };
        if let Some(parent) = self.dir.parent() {
            aim_core::fsio::ensure_private_dir(parent)?;
        }
        aim_core::fsio::ensure_private_dir(&self.dir)?;
        let text = serde_json::to_string_pretty(&pin).map_err(|e| Error::invalid("pin", e))?;
        aim_core::fsio::atomic_write(&path, text.as_bytes(), aim_core::fsio::SECRET_FILE_MODE)?;
        Ok(pin)
    }

    /// Loads pin `name`.
    pub fn load(&self, name: &str) -> Result<Pin> {
        let path = self.path_of(name)?;
        if !path.exists() {
            return Err(Error::NotFound(format!(
                "no pin named {name} (run `opena2a mcp pin {name}` first)"
            )));
        }
        let text = aim_core::fsio::read_text(&path, 64 * 1024 * 1024)?;
        let pin: Pin = serde_json::from_str(&text).map_err(|e| Error::invalid("pin file", e))?;
        if pin.format != PIN_FORMAT || pin.version != 1 {
            return Err(Error::invalid("pin file", "unknown format"));
        }
        if pin.manifest.surface_hash()? != pin.manifest_hash {
            return Err(Error::invalid(
                "pin file",
                format!(
                    "{}: manifestHash does not match the stored manifest (edited?)",
                    path.display()
                ),
            ));
        }
        Ok(pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_validated() {
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("filesystem-1.2_x").unwrap();
    }

    #[test]
    fn save_load_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path());
        let m = Manifest::from_parts(
            &json!({"name": "s", "version": "1"}),
            None,
            Some(&[]),
            None,
            None,
        )
        .unwrap();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        store.save("srv", "cursor", &m, now).unwrap();
        assert_eq!(store.load("srv").unwrap().manifest, m);
        assert!(matches!(store.load("other"), Err(Error::NotFound(_))));
        let p = store.path_of("srv").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"version\": \"1\"", "\"version\": \"2\"");
        std::fs::write(&p, text).unwrap();
        assert!(store.load("srv").is_err());
    }
}
