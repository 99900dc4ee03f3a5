//! Random secrets, digests and encodings shared by tokens, API keys and recovery codes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// `n` bytes from the operating system's CSPRNG (via the thread RNG, reseeded from the OS).
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut b = Zeroizing::new([0u8; N]);
    rand::rng().fill_bytes(&mut b[..]);
    b
}

/// SHA-256 digest as stored for refresh tokens, API keys and recovery codes. These secrets carry
/// 256 bits (codes: 60 bits, single-use and rate limited by lockout), so a fast hash is enough.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// An opaque refresh token: 32 random bytes, base64url (43 characters).
pub fn new_refresh_token() -> Zeroizing<String> {
    Zeroizing::new(b64url(&random_bytes::<32>()[..]))
}

/// A one-time password for bootstrap or invitations: 20 characters from an unambiguous alphabet
/// (~100 bits).
pub fn new_one_time_password() -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let s: String = (0..20)
        .map(|_| {
            let i = (rng.next_u32() as usize) % ALPHABET.len();
            char::from(ALPHABET[i])
        })
        .collect();
    Zeroizing::new(s)
}

/// A recovery code: 10 base32 characters grouped `xxxxx-xxxxx` (50 bits), lower case.
pub fn new_recovery_code() -> Zeroizing<String> {
    let raw = data_encoding::BASE32_NOPAD
        .encode(&random_bytes::<7>()[..])
        .to_lowercase();
    Zeroizing::new(format!("{}-{}", &raw[..5], &raw[5..10]))
}

/// Canonical form of a recovery code as typed by a person (case, spaces and dashes ignored).
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_well_formed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 43);
        let p = new_one_time_password();
        assert_eq!(p.chars().count(), 20);
        let c = new_recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(
            normalize_recovery_code(&c.to_uppercase()),
            normalize_recovery_code(&c)
        );
    }
}
