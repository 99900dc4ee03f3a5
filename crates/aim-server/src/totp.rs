//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, ±1 step of skew).
//!
//! A code is accepted at most once: the store keeps the highest step already used per user and
//! accepts only a strictly later step (so a code replayed inside its window is refused, and so is
//! an older code once a newer one was used).

use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::error::{ApiError, Error};

/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

fn build(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, Error> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Crypto(format!("TOTP: {e}")))
}

/// What the user needs to add the secret to an authenticator app.
pub struct Enrollment {
    pub secret_base32: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    pub qr_svg: String,
}

/// Builds the otpauth URI and QR code (SVG) for `secret`.
pub fn enrollment(secret: &[u8], issuer: &str, account: &str) -> Result<Enrollment, Error> {
    let totp = build(secret, issuer, account)?;
    let uri = Zeroizing::new(
        totp.to_url()
            .map_err(|e| Error::Crypto(format!("TOTP URI: {e}")))?,
    );
    let qr =
        qrcode::QrCode::new(uri.as_bytes()).map_err(|e| Error::Crypto(format!("QR code: {e}")))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrollment {
        secret_base32: Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret)),
        otpauth_uri: uri,
        qr_svg,
    })
}

/// The time step that `code` is valid for at `unix_secs`, if any. Codes must be exactly 6 digits.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64) -> Result<Option<i64>, ApiError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp =
        build(secret, "AIM", "user").map_err(|_| ApiError::bad_request("invalid TOTP state"))?;
    let t = u64::try_from(unix_secs).unwrap_or(0);
    Ok(totp.check(code, t).and_then(|s| i64::try_from(s).ok()))
}

/// The current code for `secret` (tests and tooling).
pub fn code_at(secret: &[u8], unix_secs: i64) -> Result<String, Error> {
    let totp = build(secret, "AIM", "user")?;
    Ok(totp
        .generate(u64::try_from(unix_secs).unwrap_or(0))
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 -> 94287082 (8 digits);
        // with 6 digits it is the last six: 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(matching_step(secret, "287082", 59).unwrap(), Some(1));
        assert_eq!(
            matching_step(secret, "287082", 89).unwrap(),
            Some(1),
            "one step of skew"
        );
        assert_eq!(matching_step(secret, "287082", 150).unwrap(), None);
        assert_eq!(matching_step(secret, "28708", 59).unwrap(), None);
        assert_eq!(matching_step(secret, "abcdef", 59).unwrap(), None);
    }

    #[test]
    fn enrollment_has_uri_and_qr() {
        let e = enrollment(&[7u8; SECRET_LEN], "AIM", "alice@example.com").unwrap();
        assert!(
            e.otpauth_uri
                .starts_with("otpauth://totp/AIM:alice%40example.com?"),
            "{}",
            &*e.otpauth_uri
        );
        assert!(e.qr_svg.contains("<svg"));
    }
}
