//! The client's address: the socket peer, or — only when that peer is a configured trusted
//! proxy — the address the proxy reports in `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! Invariants:
//! - Forwarding headers from a peer outside `trusted_proxies` are ignored entirely, so a client
//!   cannot choose the address it is rate-limited and audited under.
//! - The chain is read right to left, skipping hops that are themselves trusted proxies; the first
//!   untrusted hop is the client. A malformed hop ends the walk at the last trusted address (never
//!   at an address the client wrote).
//! - `Forwarded` wins over `X-Forwarded-For` when both are present.
//!
//! [`resolve`] (run by the request layer, `crate::ops_layers`) replaces the request's `ConnectInfo<SocketAddr>` with the resolved
//! address (keeping the peer's port), so every handler, audit record and limiter sees the same
//! client; the socket peer stays available as [`PeerAddr`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::error::Error;
use crate::state::AppState;

/// The TCP peer of the connection, before forwarded headers were considered.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Parses a list of CIDRs (`10.0.0.0/8`) or bare addresses (`192.0.2.7`, meaning a /32 or /128).
pub fn parse_cidrs(items: &[String]) -> Result<Vec<IpNet>, Error> {
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    Error::Config(format!(
                        "trusted_proxies: {s:?} is not a CIDR (e.g. 10.0.0.0/8) or an IP address"
                    ))
                })
        })
        .collect()
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The hops a proxy chain reports, leftmost (original client) first. `None` marks a hop that is
/// not an IP address (`unknown`, an obfuscated identifier, garbage).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        let mut out = Vec::new();
        for value in forwarded {
            for element in value.split(',') {
                let hop = element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
                });
                out.push(hop.and_then(parse_forwarded_node));
            }
        }
        return out;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_forwarded_node(s.trim()))
        .collect()
}

/// `192.0.2.1`, `"192.0.2.1:443"`, `"[2001:db8::1]:443"`, `[2001:db8::1]`, `2001:db8::1`.
fn parse_forwarded_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    inner[..end].parse::<IpAddr>().ok()
}

/// The client address for a request from `peer` carrying `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if !trusted(proxies, peer) {
        return canonical(peer);
    }
    let mut current = canonical(peer);
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                current = canonical(ip);
                if !trusted(proxies, current) {
                    return current;
                }
            }
            None => return current,
        }
    }
    current
}

/// Resolves the client address of `req` once (see the module invariants): the peer is kept as
/// [`PeerAddr`], and `ConnectInfo` becomes the client address.
pub fn resolve(state: &AppState, req: &mut Request) {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let ip = client_ip(peer.ip(), req.headers(), &state.config.ops.trusted_proxies);
        req.extensions_mut().insert(PeerAddr(peer));
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_untrusted_peer_are_ignored() {
        let proxies = parse_cidrs(&["10.0.0.0/8".into()]).unwrap();
        let hdr = h(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(ip("192.0.2.1"), &hdr, &proxies), ip("192.0.2.1"));
        assert_eq!(client_ip(ip("192.0.2.1"), &hdr, &[]), ip("192.0.2.1"));
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let proxies = parse_cidrs(&["10.0.0.0/8".into()]).unwrap();
        // The client forged a first hop; the proxy appended the real one.
        let hdr = h(&[("x-forwarded-for", "1.1.1.1, 198.51.100.4, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &hdr, &proxies),
            ip("198.51.100.4")
        );
        let hdr = h(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(client_ip(ip("10.9.9.9"), &hdr, &proxies), ip("2001:db8::7"));
    }

    #[test]
    fn malformed_hops_stop_at_the_last_trusted_address() {
        let proxies = parse_cidrs(&["10.0.0.1".into()]).unwrap();
        let hdr = h(&[("x-forwarded-for", "203.0.113.9, garbage")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &hdr, &proxies), ip("10.0.0.1"));
        let hdr = h(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &hdr, &proxies), ip("10.0.0.1"));
        assert!(parse_cidrs(&["not-a-net".into()]).is_err());
    }

    #[test]
    fn forwarded_wins_and_mapped_addresses_are_canonical() {
        let proxies = parse_cidrs(&["127.0.0.0/8".into()]).unwrap();
        let hdr = h(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &hdr, &proxies),
            ip("198.51.100.1")
        );
    }
}
