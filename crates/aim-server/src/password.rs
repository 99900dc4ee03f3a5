//! Passwords: the strength policy and Argon2id hashing.
//!
//! Policy (documented in docs/server.md):
//! - 12 to 256 characters;
//! - not the email address, nor containing its local part (when that is 4+ characters);
//! - at least 5 distinct characters (rejects `aaaaaaaaaaaa`, `abababababab`);
//! - not one of the commonly used passwords embedded below, compared case-insensitively and after
//!   stripping trailing digits and symbols (`Password123!` is `password`).
//!
//! Hashing: Argon2id v19, m = 19 MiB, t = 2, p = 1 (OWASP's minimum), 16-byte random salt, PHC
//! string stored. At most `available_parallelism` hashes run at once (each takes 19 MiB and one
//! core), on the blocking pool so the async workers stay responsive.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{ApiError, Error};

/// Longest accepted password (characters); bounds hashing work per request.
pub const MAX_LEN: usize = 256;
/// Shortest accepted password (characters).
pub const MIN_LEN: usize = 12;

/// Common passwords and words that are never accepted as a password's stem.
const COMMON: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "qwerty",
    "qwertyuiop",
    "qwertyuiopasdf",
    "asdfghjkl",
    "zxcvbnm",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "iloveyou",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "superman",
    "batman",
    "trustno",
    "master",
    "shadow",
    "changeme",
    "secret",
    "default",
    "abc",
    "abcd",
    "abcdef",
    "abcdefgh",
    "abcdefghijkl",
    "qazwsx",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "starwars",
    "whatever",
    "login",
    "welcome1",
    "hello",
    "freedom",
    "access",
    "computer",
    "internet",
    "opena2a",
    "aimserver",
    "correcthorsebatterystaple",
];

/// Checks the strength policy. The message says what to fix; it never echoes the password.
pub fn check_policy(password: &str, email: &str) -> Result<(), ApiError> {
    let weak = |m: &str| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "weak_password", m);
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(weak("password must be at least 12 characters long"));
    }
    if n > MAX_LEN {
        return Err(weak("password must be at most 256 characters long"));
    }
    let lower = password.to_lowercase();
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if lower.contains(&email) || (local.chars().count() >= 4 && lower.contains(local)) {
        return Err(weak("password must not contain the email address"));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(weak("password must use at least 5 different characters"));
    }
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    let stem = stem.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if stem.is_empty() || COMMON.contains(&stem) || is_sequence(&lower) {
        return Err(weak("password is too common or predictable"));
    }
    Ok(())
}

/// `123456789012`, `abcdefghijkl`, `987654321098`: runs of consecutive characters.
fn is_sequence(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 1
        && (b
            .windows(2)
            .all(|w| w[1] == w[0].wrapping_add(1) || (w[0] == b'9' && w[1] == b'0'))
            || b.windows(2)
                .all(|w| w[0] == w[1].wrapping_add(1) || (w[0] == b'0' && w[1] == b'9')))
}

/// Argon2id hashing with bounded concurrency.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verified against when the email is unknown, so both
    /// paths cost the same.
    dummy: Arc<String>,
}

impl Hasher {
    /// OWASP parameters; computes the dummy hash (one hash at start-up).
    pub fn new() -> Result<Hasher, Error> {
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| Error::Crypto(e.to_string()))?;
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let pw = crate::secrets::new_one_time_password();
        let dummy = hash_with(&params, pw.as_bytes())?;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(parallel)),
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let params = self.params.clone();
        let pw = Zeroizing::new(password.as_bytes().to_vec());
        tokio::task::spawn_blocking(move || hash_with(&params, &pw))
            .await
            .map_err(|e| Error::Crypto(e.to_string()))?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when `phc` is `None` (unknown
    /// user) so that timing does not reveal whether an account exists. Always false for `None`.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let known = phc.is_some();
        let phc = phc
            .map(str::to_owned)
            .unwrap_or_else(|| (*self.dummy).clone());
        let pw = Zeroizing::new(password.as_bytes().to_vec());
        let ok = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            Argon2::default().verify_password(&pw, &parsed).is_ok()
        })
        .await
        .map_err(|e| Error::Crypto(e.to_string()))?;
        Ok(ok && known)
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, Error> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| Error::Crypto(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rejects_weak_passwords() {
        let email = "alice.smith@example.com";
        for bad in [
            "short",
            "Password123!",
            "password1234",
            "aaaaaaaaaaaaaaaa",
            "abababababab",
            "123456789012",
            "abcdefghijklm",
            "alice.smith@example.com",
            "xxalice.smithyy",
            "!!Qwertyuiop!!",
            &"x".repeat(300),
        ] {
            assert!(check_policy(bad, email).is_err(), "{bad:?} must be refused");
        }
        for good in ["correct horse battery", "Tr0ub4dor&3xyz", "g7#kP2m!qZ9w"] {
            assert!(
                check_policy(good, email).is_ok(),
                "{good:?} must be accepted"
            );
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new().unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse battery", Some(&phc)).await.unwrap());
        assert!(!h.verify("correct horse batterY", Some(&phc)).await.unwrap());
        assert!(
            !h.verify("anything", None).await.unwrap(),
            "unknown users never verify"
        );
        assert!(!h.verify("x", Some("not a phc string")).await.unwrap());
    }
}
