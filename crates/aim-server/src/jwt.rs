//! Access tokens: EdDSA (Ed25519) JWTs with a `kid`, signed by the newest key of a rotating set.
//!
//! Invariants:
//! - Only `EdDSA` is accepted; the header must name a `kid` we know. `alg: none`, HMAC with the
//!   public key (algorithm confusion) and unknown keys are refused before any claim is read.
//! - `iss` and `aud` must match the configuration; `exp`, `nbf`, `iat`, `sub`, `sid` are required.
//!   `exp`/`nbf` are checked against the injected clock with [`LEEWAY_SECS`] of tolerance.
//! - Rotation never logs anyone out: a new key signs from its creation on, older keys keep
//!   verifying for as long as tokens they signed can be alive. Keys live in the store (private
//!   halves sealed with the key ring), so every replica signs and verifies with the same set; a
//!   replica that sees an unknown `kid` reloads the set (at most every few seconds).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aim_core::clock::Clock;
use aim_store::{AuditRecord, JwtKey, Store};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keyring::KeyRing;
use crate::secrets::{b64url, random_bytes, sha256};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 5;
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the DER wrapper around the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: Uuid,
    /// Organization id.
    pub org: Uuid,
    /// Session (refresh-token family) id; revoking the session ends the token at once.
    pub sid: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

struct Active {
    kid: String,
    key: EncodingKey,
    created_at: i64,
}

#[derive(Default)]
struct Set {
    active: Option<Active>,
    verify: HashMap<String, DecodingKey>,
    public: Vec<(String, Vec<u8>)>,
}

/// The signing/verification key set.
pub struct JwtKeys {
    store: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    rotation_secs: i64,
    set: RwLock<Set>,
    last_reload: Mutex<Option<Instant>>,
}

impl JwtKeys {
    /// Loads the keys from the store, creating the first (or a fresh) one when needed.
    pub async fn load(
        store: Arc<dyn Store>,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        issuer: String,
        audience: String,
        ttl_secs: u64,
        rotation_secs: u64,
    ) -> Result<JwtKeys, Error> {
        let keys = JwtKeys {
            store,
            ring,
            clock,
            issuer,
            audience,
            ttl_secs: i64::try_from(ttl_secs)
                .map_err(|_| Error::Config("access token ttl too large".into()))?,
            rotation_secs: i64::try_from(rotation_secs)
                .map_err(|_| Error::Config("rotation too large".into()))?,
            set: RwLock::new(Set::default()),
            last_reload: Mutex::new(None),
        };
        keys.reload().await?;
        keys.rotate_if_due().await?;
        Ok(keys)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Re-reads every key that may still verify live tokens.
    async fn reload(&self) -> Result<(), Error> {
        let horizon = self.now_ms() - (self.rotation_secs + self.ttl_secs + 86_400) * 1000;
        let rows = self.store.list_jwt_keys(horizon).await?;
        let mut set = Set::default();
        for row in &rows {
            if row.algorithm != "EdDSA" || row.public_key.len() != 32 {
                continue;
            }
            set.verify
                .insert(row.kid.clone(), DecodingKey::from_ed_der(&row.public_key));
            set.public.push((row.kid.clone(), row.public_key.clone()));
        }
        if let Some(newest) = rows.iter().find(|r| r.algorithm == "EdDSA") {
            let seed = self
                .ring
                .open(&format!("jwt_key:{}", newest.kid), &newest.private_sealed)?;
            let mut der = Zeroizing::new(PKCS8_ED25519_PREFIX.to_vec());
            der.extend_from_slice(&seed);
            set.active = Some(Active {
                kid: newest.kid.clone(),
                key: EncodingKey::from_ed_der(&der),
                created_at: newest.created_at,
            });
        }
        *self.set.write().await = set;
        *self.last_reload.lock().await = Some(Instant::now());
        Ok(())
    }

    /// Creates a new signing key when there is none or the newest is older than the rotation
    /// period. Returns whether a key was created.
    pub async fn rotate_if_due(&self) -> Result<bool, Error> {
        let due = match &self.set.read().await.active {
            None => true,
            Some(a) => self.now_ms() - a.created_at >= self.rotation_secs * 1000,
        };
        if due {
            self.rotate_now().await?;
        }
        Ok(due)
    }

    /// Creates a new signing key unconditionally (older keys keep verifying).
    pub async fn rotate_now(&self) -> Result<String, Error> {
        let seed = random_bytes::<32>();
        let public = SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec();
        let kid = b64url(&sha256(&public)[..12]);
        // Strictly newer than the current key, so "newest signs" is unambiguous even within one ms.
        let newest = self.set.read().await.active.as_ref().map(|a| a.created_at);
        let created_at = newest.map_or(self.now_ms(), |n| self.now_ms().max(n + 1));
        let row = JwtKey {
            kid: kid.clone(),
            algorithm: "EdDSA".into(),
            private_sealed: self.ring.seal(&format!("jwt_key:{kid}"), &seed[..])?,
            public_key: public,
            created_at,
        };
        let audit = AuditRecord {
            org_id: None,
            at: row.created_at,
            event_type: "jwt_key.created".into(),
            actor: "system".into(),
            subject: Some(format!("jwt_key:{kid}")),
            payload: serde_json::json!({ "algorithm": "EdDSA" }),
            client_addr: None,
        };
        self.store.insert_jwt_key(&row, &audit).await?;
        self.reload().await?;
        tracing::info!(kid = %kid, "created JWT signing key");
        Ok(kid)
    }

    /// Issues an access token for a session. Returns the token and its lifetime in seconds.
    pub async fn issue(
        &self,
        user: Uuid,
        org: Uuid,
        session: Uuid,
    ) -> Result<(String, i64), Error> {
        let now = self.clock.now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            org,
            sid: session,
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: Uuid::new_v4(),
        };
        Ok((self.sign(&claims).await?, self.ttl_secs))
    }

    /// Signs arbitrary claims with the active key (tests use it to mint expired or misaddressed
    /// tokens with a genuine signature).
    pub async fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let set = self.set.read().await;
        let active = set
            .active
            .as_ref()
            .ok_or_else(|| Error::Crypto("no JWT signing key".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.key).map_err(|e| Error::Crypto(e.to_string()))
    }

    /// Verifies a token; `None` for every kind of invalid token (the reason is logged at debug).
    pub async fn verify(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            tracing::debug!(alg = ?header.alg, "token refused: algorithm");
            return None;
        }
        let kid = header.kid?;
        let key = match self.set.read().await.verify.get(&kid).cloned() {
            Some(k) => k,
            None => {
                self.reload_throttled().await;
                self.set.read().await.verify.get(&kid).cloned()?
            }
        };
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Time is checked below against the injected clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        let claims = match jsonwebtoken::decode::<Claims>(token, &key, &v) {
            Ok(d) => d.claims,
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                return None;
            }
        };
        let now = self.clock.now().timestamp();
        if claims.exp + LEEWAY_SECS <= now
            || claims.nbf - LEEWAY_SECS > now
            || claims.iat - LEEWAY_SECS > now
        {
            tracing::debug!("token refused: outside its validity period");
            return None;
        }
        Some(claims)
    }

    async fn reload_throttled(&self) {
        let recent =
            matches!(*self.last_reload.lock().await, Some(t) if t.elapsed() < RELOAD_EVERY);
        if !recent && let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot reload JWT keys");
        }
    }

    /// Public keys as a JWK set (for external verifiers).
    pub async fn jwks(&self) -> serde_json::Value {
        let set = self.set.read().await;
        let keys: Vec<_> = set
            .public
            .iter()
            .map(|(kid, x)| serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": b64url(x) }))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The configured `iss` and `aud`.
    pub fn issuer_audience(&self) -> (&str, &str) {
        (&self.issuer, &self.audience)
    }
}
