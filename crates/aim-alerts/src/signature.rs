//! Webhook signatures.
//!
//! Header: `X-AIM-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256>` where the MAC key
//! is the route's secret (bytes of the string as configured) and the MAC input is
//! `<t> "." <raw body bytes>`. A receiver recomputes the MAC over the raw body it received
//! (before any JSON parsing), compares in constant time, and rejects timestamps further than its
//! tolerance from its clock (default 300 s) so a captured delivery cannot be replayed later.
//! Several `v1=` values may appear (secret rotation): any match is accepted.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Header name.
pub const HEADER: &str = "X-AIM-Signature";
/// Default receiver tolerance in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Verifies a received header against the raw body. `now` in Unix seconds.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<()> {
    let mut timestamp = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| Error::MalformedSignature(format!("part {part:?} has no '='")))?;
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(Error::MalformedSignature("two timestamps".into()));
                }
                timestamp = Some(v.parse::<i64>().map_err(|_| {
                    Error::MalformedSignature(format!("timestamp {v:?} is not an integer"))
                })?);
            }
            "v1" => {
                let bytes = hex::decode(v)
                    .map_err(|_| Error::MalformedSignature("v1 is not hex".into()))?;
                if bytes.len() != 32 {
                    return Err(Error::MalformedSignature("v1 is not 32 bytes".into()));
                }
                macs.push(bytes);
            }
            _ => {} // unknown schemes are ignored (forward compatibility)
        }
    }
    let t = timestamp.ok_or_else(|| Error::MalformedSignature("no t= part".into()))?;
    if macs.is_empty() {
        return Err(Error::MalformedSignature("no v1= part".into()));
    }
    let expected = mac(secret, t, body);
    if !macs
        .iter()
        .any(|m| bool::from(m.as_slice().ct_eq(&expected)))
    {
        return Err(Error::BadSignature);
    }
    let skew = now.saturating_sub(t);
    if skew.abs() > tolerance_secs {
        return Err(Error::StaleTimestamp(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_vector() {
        // HMAC-SHA256("Jefe", "what do ya want for nothing?") — RFC 4231 §4.3. With t = 0 the MAC
        // input is "0." + body, so check the primitive on the exact RFC input instead.
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sign_verify_and_every_negative_case() {
        let body = br#"{"id":"a1","severity":"high"}"#;
        let h = sign(b"s3cret", 1_800_000_000, body);
        assert!(h.starts_with("t=1800000000,v1="));
        verify(b"s3cret", &h, body, 1_800_000_010, 300).unwrap();
        // wrong secret, tampered body, tampered timestamp
        assert!(matches!(
            verify(b"other", &h, body, 1_800_000_010, 300),
            Err(Error::BadSignature)
        ));
        assert!(matches!(
            verify(
                b"s3cret",
                &h,
                br#"{"id":"a2","severity":"high"}"#,
                1_800_000_010,
                300
            ),
            Err(Error::BadSignature)
        ));
        let moved = h.replace("t=1800000000", "t=1800000100");
        assert!(matches!(
            verify(b"s3cret", &moved, body, 1_800_000_100, 300),
            Err(Error::BadSignature)
        ));
        // replay outside the tolerance
        assert!(matches!(
            verify(b"s3cret", &h, body, 1_800_000_301, 300),
            Err(Error::StaleTimestamp(301))
        ));
        // malformed headers
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify(b"s3cret", bad, body, 1, 300),
                    Err(Error::MalformedSignature(_))
                ),
                "{bad:?}"
            );
        }
        // rotation: any listed MAC may match
        let other = sign(b"old", 1_800_000_000, body);
        let both = format!("{},{}", other, h.split(',').nth(1).unwrap());
        verify(b"s3cret", &both, body, 1_800_000_000, 300).unwrap();
    }
}
