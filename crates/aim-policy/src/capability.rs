//! Capabilities (what an agent asks to do) and grants (what it was allowed to do).
//!
//! # Grammar
//!
//! ```text
//! capability = [ domain "/" ] namespace ":" action
//! grant      = [ domain "/" ] namespace ":" ( action / "*" )
//! domain     = label *( "." label )
//! label      = 1*63( a-z / 0-9 / "-" )             ; not starting or ending with "-"
//! namespace  = segment
//! action     = segment
//! segment    = ( a-z / 0-9 ) *63( a-z / 0-9 / "_" / "-" / "." )
//! ```
//!
//! Invariants, enforced by [`Capability::parse`] and [`Grant::parse`]:
//! - lower case ASCII only (no normalisation: `Files:Read` is refused, not folded), at most 128
//!   bytes in total;
//! - exactly one `:`; at most one `/`, and only between the domain and the namespace;
//! - `*` appears only in a grant, and only as the whole action (`files:*`). There is no
//!   grant-everything wildcard (`*`, `*:*`) and no domain wildcard: least privilege.
//! - A domain is part of the identity of a capability: `example.com/files:read` and
//!   `files:read` are different capabilities, and a grant matches only capabilities of its own
//!   domain (or of no domain, when it has none).

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};

/// The longest accepted capability or grant, in bytes.
pub const MAX_LEN: usize = 128;

/// A concrete capability, e.g. `files:read` or `example.com/db:query`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability {
    domain: Option<String>,
    namespace: String,
    action: String,
}

/// A grant: a capability, or every action of one namespace (`files:*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    domain: Option<String>,
    namespace: String,
    /// `None` = `*` (every action of the namespace).
    action: Option<String>,
}

fn bad(input: &str, reason: impl Into<String>) -> Error {
    Error::Capability {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn check_label(input: &str, label: &str) -> Result<()> {
    if label.is_empty() || label.len() > 63 {
        return Err(bad(input, "each domain label must be 1-63 characters"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(input, "a domain uses only a-z, 0-9, '-' and '.'"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(bad(input, "a domain label cannot start or end with '-'"));
    }
    Ok(())
}

fn check_segment(input: &str, what: &str, seg: &str) -> Result<()> {
    let first_ok = seg
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !first_ok || seg.len() > 64 {
        return Err(bad(
            input,
            format!("the {what} must be 1-64 characters starting with a-z or 0-9"),
        ));
    }
    if !seg
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
    {
        return Err(bad(
            input,
            format!("the {what} uses only lower-case a-z, 0-9, '_', '-' and '.'"),
        ));
    }
    Ok(())
}

/// Splits `[domain/]namespace:rest` and checks domain and namespace; returns `rest` unchecked.
fn split(input: &str) -> Result<(Option<String>, String, &str)> {
    if input.is_empty() {
        return Err(bad(
            input,
            "empty; expected namespace:action, e.g. files:read",
        ));
    }
    if input.len() > MAX_LEN {
        return Err(bad(input, format!("longer than {MAX_LEN} bytes")));
    }
    let (domain, rest) = match input.split_once('/') {
        Some((d, r)) => {
            for label in d.split('.') {
                check_label(input, label)?;
            }
            (Some(d.to_string()), r)
        }
        None => (None, input),
    };
    let Some((ns, action)) = rest.split_once(':') else {
        return Err(bad(input, "expected namespace:action, e.g. files:read"));
    };
    if action.contains(':') || action.contains('/') {
        return Err(bad(
            input,
            "only one ':' and at most one '/' (after the domain)",
        ));
    }
    check_segment(input, "namespace", ns)?;
    Ok((domain, ns.to_string(), action))
}

impl Capability {
    /// Parses a concrete capability (no wildcard). See the module grammar.
    pub fn parse(input: &str) -> Result<Self> {
        let (domain, namespace, action) = split(input)?;
        if action == "*" {
            return Err(bad(
                input,
                "'*' is only allowed in a grant, not in a requested capability",
            ));
        }
        check_segment(input, "action", action)?;
        Ok(Capability {
            domain,
            namespace,
            action: action.to_string(),
        })
    }

    /// The domain prefix, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The namespace (`files` in `files:read`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The action (`read` in `files:read`).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The grant `[domain/]namespace:*` that covers this capability's whole namespace. This is
    /// also the Cedar action group the capability's action belongs to.
    pub fn namespace_grant(&self) -> Grant {
        Grant {
            domain: self.domain.clone(),
            namespace: self.namespace.clone(),
            action: None,
        }
    }
}

impl Grant {
    /// Parses a grant: a capability or `[domain/]namespace:*`.
    pub fn parse(input: &str) -> Result<Self> {
        let (domain, namespace, action) = split(input)?;
        let action = if action == "*" {
            None
        } else {
            check_segment(input, "action", action)?;
            Some(action.to_string())
        };
        Ok(Grant {
            domain,
            namespace,
            action,
        })
    }

    /// True when this grant covers `cap`: same domain (both absent or equal), same namespace,
    /// and the same action or `*`.
    pub fn matches(&self, cap: &Capability) -> bool {
        self.domain == cap.domain
            && self.namespace == cap.namespace
            && self.action.as_ref().is_none_or(|a| *a == cap.action)
    }

    /// True for `namespace:*` grants.
    pub fn is_wildcard(&self) -> bool {
        self.action.is_none()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.domain {
            write!(f, "{d}/")?;
        }
        write!(f, "{}:{}", self.namespace, self.action)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.domain {
            write!(f, "{d}/")?;
        }
        write!(
            f,
            "{}:{}",
            self.namespace,
            self.action.as_deref().unwrap_or("*")
        )
    }
}

impl std::str::FromStr for Capability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Capability::parse(s)
    }
}

impl std::str::FromStr for Grant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Grant::parse(s)
    }
}

impl From<Capability> for Grant {
    fn from(c: Capability) -> Self {
        Grant {
            domain: c.domain,
            namespace: c.namespace,
            action: Some(c.action),
        }
    }
}

/// The grants of one agent. Answers "is this capability granted"; an empty set grants nothing
/// (no grant → deny).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSet {
    grants: BTreeSet<Grant>,
}

impl GrantSet {
    /// An empty set (grants nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses every string as a grant; the first malformed one is the error.
    pub fn parse<I, S>(grants: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = GrantSet::new();
        for g in grants {
            set.insert(Grant::parse(g.as_ref())?);
        }
        Ok(set)
    }

    /// Adds a grant.
    pub fn insert(&mut self, grant: Grant) {
        self.grants.insert(grant);
    }

    /// Removes a grant (exactly this grant; removing `files:*` does not remove `files:read`).
    pub fn remove(&mut self, grant: &Grant) -> bool {
        self.grants.remove(grant)
    }

    /// The first grant (in sort order) that covers `cap`, if any.
    pub fn granting(&self, cap: &Capability) -> Option<&Grant> {
        self.grants.iter().find(|g| g.matches(cap))
    }

    /// True when some grant covers `cap`.
    pub fn is_granted(&self, cap: &Capability) -> bool {
        self.granting(cap).is_some()
    }

    /// The grants, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter()
    }

    /// Number of grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// True when nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_capabilities_are_refused() {
        for bad in [
            "",
            "files",
            ":read",
            "files:",
            "files:read:x",
            "Files:read",
            "files:Read",
            "files:*",
            "*:read",
            "*",
            "*:*",
            "files: read",
            "files:re ad",
            "/files:read",
            "example.com/",
            "example.com/files",
            "a/b/files:read",
            "files:read/x",
            "-bad.com/files:read",
            "bad-.com/files:read",
            "ex..com/files:read",
            "EXAMPLE.com/files:read",
            "ex_ample.com/files:read",
            "_files:read",
            "files:.read",
            "files:réad",
            "files:read\n",
            "files:read\0",
        ] {
            assert!(Capability::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("files:{}", "a".repeat(MAX_LEN));
        assert!(Capability::parse(&long).is_err());
        assert!(Grant::parse("*").is_err());
        assert!(Grant::parse("*:*").is_err());
        assert!(Grant::parse("files:re*").is_err());
        assert!(Grant::parse("example.com/*:read").is_err());
        assert!(Grant::parse("*.example.com/files:read").is_err());
    }

    #[test]
    fn well_formed_capabilities_round_trip() {
        for ok in [
            "files:read",
            "db:query",
            "mcp.tools:call_tool",
            "a:b",
            "0:0",
            "example.com/files:read",
            "acme-corp.example.org/payments:refund.partial",
            "localhost/x_y:z-w",
        ] {
            let c = Capability::parse(ok).unwrap();
            assert_eq!(c.to_string(), ok);
        }
        let c = Capability::parse("example.com/files:read").unwrap();
        assert_eq!(c.domain(), Some("example.com"));
        assert_eq!(c.namespace(), "files");
        assert_eq!(c.action(), "read");
        assert_eq!(c.namespace_grant().to_string(), "example.com/files:*");
    }

    #[test]
    fn grants_match_by_domain_namespace_and_action() {
        let read = Capability::parse("files:read").unwrap();
        let d_read = Capability::parse("example.com/files:read").unwrap();
        let write = Capability::parse("files:write").unwrap();
        let g = Grant::parse("files:read").unwrap();
        assert!(g.matches(&read));
        assert!(!g.matches(&write));
        assert!(
            !g.matches(&d_read),
            "a domain-less grant must not cover a domain"
        );
        let w = Grant::parse("files:*").unwrap();
        assert!(w.is_wildcard());
        assert!(w.matches(&read) && w.matches(&write));
        assert!(!w.matches(&d_read));
        assert!(!w.matches(&Capability::parse("filesx:read").unwrap()));
        let dw = Grant::parse("example.com/files:*").unwrap();
        assert!(dw.matches(&d_read));
        assert!(!dw.matches(&read));
        assert!(!dw.matches(&Capability::parse("other.com/files:read").unwrap()));
    }

    #[test]
    fn empty_grant_set_denies() {
        let set = GrantSet::new();
        assert!(!set.is_granted(&Capability::parse("files:read").unwrap()));
        let set = GrantSet::parse(["db:*", "files:read"]).unwrap();
        assert!(set.is_granted(&Capability::parse("db:drop").unwrap()));
        assert!(!set.is_granted(&Capability::parse("files:write").unwrap()));
        assert!(GrantSet::parse(["db:*", "BAD"]).is_err());
    }
}
