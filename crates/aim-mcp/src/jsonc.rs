//! JSONC (JSON with comments and trailing commas), as VS Code writes `settings.json` and
//! `mcp.json`. [`strip`] turns JSONC into strict JSON; strict parsing errors stay errors.
//!
//! Invariant: only text outside string literals is changed; comments become spaces (so error
//! positions still point at the right line and column) and a comma followed only by whitespace
//! or comments before `}` or `]` is dropped.

/// Converts JSONC text to JSON text. An unterminated block comment is left for the JSON parser
/// to reject.
pub fn strip(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if b == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = input[i + 2..].find("*/").map(|p| i + 2 + p + 2);
                match end {
                    Some(end) => {
                        for &c in &bytes[i..end] {
                            out.push(if c == b'\n' { b'\n' } else { b' ' });
                        }
                        i = end;
                    }
                    None => {
                        out.extend_from_slice(&bytes[i..]);
                        i = bytes.len();
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    remove_trailing_commas(&out)
}

fn remove_trailing_commas(bytes: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut in_str = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if b == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_str = true;
        }
        if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}') | Some(b']')) {
                out.push(b' ');
                i += 1;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII bytes, so UTF-8 validity is preserved.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn comments_and_trailing_commas_removed_outside_strings() {
        let text = r#"{
  // a comment with "quotes"
  "a": "http://x//y", /* block
  comment */ "b": [1, 2,],
  "c": "has /* no comment */ inside",
}"#;
        let v: serde_json::Value = serde_json::from_str(&strip(text)).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
        assert_eq!(v["c"], "has /* no comment */ inside");
    }

    #[test]
    fn escaped_quote_does_not_end_string() {
        let v: serde_json::Value = serde_json::from_str(&strip(r#"{"a": "x\" // y",}"#)).unwrap();
        assert_eq!(v["a"], "x\" // y");
    }

    #[test]
    fn broken_json_stays_broken() {
        assert!(serde_json::from_str::<serde_json::Value>(&strip("{\"a\": /* open")).is_err());
        assert!(serde_json::from_str::<serde_json::Value>(&strip("{\"a\" 1}")).is_err());
    }
}
