//! Pinned peers: public keys of other agents, shared directly (standalone mode, no server).
//!
//! Stored in `$OPENA2A_HOME/aim-core/peers.json`, replaced atomically on every change. A peer is a
//! local name bound to one Ed25519 public key and the agent id it answers challenges as.
//!
//! Invariant: names are unique; a key is pinned under at most one name (pinning the same key twice
//! is almost always a mistake that would make audit entries ambiguous).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::identity::{agent_did, validate_name};
use crate::keys::{PublicKey, is_agent_id};
use crate::{Error, Result, fsio};

/// One pinned peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub name: String,
    /// The peer's agent id (derived from the key unless given explicitly, e.g. after rotations).
    pub agent_id: String,
    pub did: String,
    /// Base64 of the raw public key.
    pub public_key: String,
    pub added_at: String,
}

impl Peer {
    /// The pinned key.
    pub fn key(&self) -> Result<PublicKey> {
        PublicKey::from_base64(&self.public_key)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PeerFile {
    version: u32,
    peers: Vec<Peer>,
}

/// The peer store of one data root. Callers hold the data-root lock around changes.
#[derive(Debug, Clone)]
pub struct PeerStore {
    path: PathBuf,
}

impl PeerStore {
    /// The store under `$OPENA2A_HOME/aim-core` (`core_dir`).
    pub fn new(core_dir: &Path) -> Self {
        PeerStore {
            path: core_dir.join("peers.json"),
        }
    }

    fn load(&self) -> Result<PeerFile> {
        if !self.path.exists() {
            return Ok(PeerFile {
                version: 1,
                peers: vec![],
            });
        }
        let text = fsio::read_text(&self.path, 16 * 1024 * 1024)?;
        let f: PeerFile = serde_json::from_str(&text)
            .map_err(|e| Error::invalid("peers file", format!("{}: {e}", self.path.display())))?;
        Ok(f)
    }

    fn save(&self, f: &PeerFile) -> Result<()> {
        if let Some(d) = self.path.parent() {
            fsio::ensure_private_dir(d)?;
        }
        let body = serde_json::to_vec_pretty(f).map_err(|e| Error::invalid("peers file", e))?;
        fsio::atomic_write(&self.path, &body, fsio::PUBLIC_FILE_MODE)
    }

    /// All pinned peers, sorted by name.
    pub fn list(&self) -> Result<Vec<Peer>> {
        let mut p = self.load()?.peers;
        p.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(p)
    }

    /// The peer called `name`.
    pub fn get(&self, name: &str) -> Result<Peer> {
        self.load()?
            .peers
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::NotFound {
                what: "peer",
                name: name.to_string(),
            })
    }

    /// Pins `key` under `name`.
    pub fn add(
        &self,
        name: &str,
        key: PublicKey,
        agent_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Peer> {
        validate_name(name)?;
        let agent_id = match agent_id {
            Some(a) if is_agent_id(a) => a.to_string(),
            Some(a) => {
                return Err(Error::invalid(
                    "agent id",
                    format!("{a:?} is not an aim_ agent id"),
                ));
            }
            None => key.agent_id(),
        };
        let mut f = self.load()?;
        if f.peers.iter().any(|p| p.name == name) {
            return Err(Error::AlreadyExists {
                what: "peer",
                name: name.to_string(),
            });
        }
        let b64 = key.to_base64();
        if let Some(p) = f.peers.iter().find(|p| p.public_key == b64) {
            return Err(Error::AlreadyExists {
                what: "peer key",
                name: format!("{b64} (pinned as {})", p.name),
            });
        }
        let peer = Peer {
            name: name.to_string(),
            did: agent_did(&agent_id),
            agent_id,
            public_key: b64,
            added_at: rfc3339(now),
        };
        f.version = 1;
        f.peers.push(peer.clone());
        self.save(&f)?;
        Ok(peer)
    }

    /// Unpins the peer called `name` and returns it.
    pub fn remove(&self, name: &str) -> Result<Peer> {
        let mut f = self.load()?;
        let idx = f
            .peers
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| Error::NotFound {
                what: "peer",
                name: name.to_string(),
            })?;
        let p = f.peers.remove(idx);
        self.save(&f)?;
        Ok(p)
    }

    /// The peer whose DID is `did`, if pinned.
    pub fn by_did(&self, did: &str) -> Result<Option<Peer>> {
        Ok(self.load()?.peers.into_iter().find(|p| p.did == did))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    #[test]
    fn add_list_remove_with_uniqueness() {
        let d = tempfile::tempdir().unwrap();
        let s = PeerStore::new(&d.path().join("aim-core"));
        let now = crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let k1 = KeyPair::from_seed(&[1; 32]).public();
        let k2 = KeyPair::from_seed(&[2; 32]).public();
        let p = s.add("bob", k1, None, now).unwrap();
        assert_eq!(p.agent_id, k1.agent_id());
        assert!(matches!(
            s.add("bob", k2, None, now),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.add("bob2", k1, None, now),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(s.add("carol", k2, Some("not-an-id"), now).is_err());
        s.add("carol", k2, None, now).unwrap();
        assert_eq!(
            s.list()
                .unwrap()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["bob", "carol"]
        );
        assert_eq!(s.by_did(&p.did).unwrap().unwrap().name, "bob");
        s.remove("bob").unwrap();
        assert!(matches!(s.get("bob"), Err(Error::NotFound { .. })));
        assert!(matches!(s.remove("bob"), Err(Error::NotFound { .. })));
    }
}
