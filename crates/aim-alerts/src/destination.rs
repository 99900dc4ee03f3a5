//! Which addresses a webhook may reach.
//!
//! A webhook route is a URL an organization admin types in; the server then POSTs to it. Left
//! unchecked, that is a request forgery primitive against the server's own network: loopback
//! services, the cloud metadata endpoint (169.254.169.254), private ranges. By default only
//! public unicast addresses are reachable:
//! - an IP literal in the URL is checked by [`check_host`] (when the route is saved and again
//!   before each delivery);
//! - a host name is resolved by [`PublicOnlyResolver`], which drops every non-public address
//!   and fails when none is left. reqwest connects only to the addresses the resolver returned,
//!   so a name that resolves differently at delivery time (DNS rebinding) is checked again.
//!
//! The client built by [`client`] also never follows redirects and ignores proxy settings from
//! the environment (a proxy would resolve the name itself, past this check).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918), shared
/// (RFC 6598), link-local (which holds the cloud metadata endpoints), unique-local (RFC 4193),
/// unspecified, multicast, broadcast, documentation or benchmarking space. IPv4-mapped and
/// NAT64 (64:ff9b::/96) IPv6 addresses are judged by the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // documentation 2001:db8::/32
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // IPv4-compatible (deprecated) ::/96
                || v6.octets()[..12] == [0; 12])
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        // "this network" 0.0.0.0/8
        || o[0] == 0
        // shared address space 100.64.0.0/10
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        // IETF protocol assignments 192.0.0.0/24
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        // benchmarking 198.18.0.0/15
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        // reserved 240.0.0.0/4
        || o[0] >= 240)
}

/// Refuses a URL whose host is an IP literal outside public unicast space (`Err` says why).
/// Host names pass here; [`PublicOnlyResolver`] checks what they resolve to. The URL parser
/// has already normalized other spellings of IPv4 literals (`2130706433`, `0x7f.1`).
pub fn check_host(url: &reqwest::Url) -> Result<(), String> {
    let Some(host) = url.host_str() else {
        return Err("the URL has no host".into());
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Err(format!(
            "{ip} is not a public address (loopback, private, link-local and similar ranges are refused)"
        )),
        _ => Ok(()),
    }
}

/// A resolver that returns only the public addresses of a name (system resolver underneath).
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address ({} refused)",
                    all.len()
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for webhook deliveries: no redirects, no proxy from the environment, and
/// (unless `allow_private`) only public addresses.
pub fn client(allow_private: bool) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    let b = if allow_private {
        b
    } else {
        b.dns_resolver(Arc::new(PublicOnlyResolver))
    };
    b.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        for refused in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.5",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!is_public(ip), "{refused} must be refused");
        }
        for allowed in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.253.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(is_public(ip), "{allowed} must be allowed");
        }
    }

    #[test]
    fn url_hosts() {
        let host = |u: &str| check_host(&reqwest::Url::parse(u).unwrap());
        assert!(host("https://hooks.example.com/x").is_ok());
        assert!(host("https://93.184.215.14/x").is_ok());
        assert!(host("https://127.0.0.1:8443/x").is_err());
        assert!(host("http://[::1]:8080/x").is_err());
        assert!(host("http://169.254.169.254/latest/meta-data").is_err());
        // Other spellings of an IPv4 literal are normalized by the URL parser first.
        assert!(host("http://2130706433/").is_err());
        assert!(host("http://0x7f.1/").is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_addresses() {
        let r = PublicOnlyResolver;
        let err = match r.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must not resolve to a usable address"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
    }

    #[tokio::test]
    async fn deliveries_to_loopback_names_fail_before_connecting() {
        // A listener that would accept the connection if the client tried.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = client(false)
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await;
        assert!(refused.is_err());
        let allowed = tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
        });
        // With private targets allowed the same URL connects (the request itself may fail:
        // the listener answers nothing).
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            client(true)
                .post(format!("http://localhost:{port}/hook"))
                .send(),
        )
        .await;
        tokio::time::timeout(std::time::Duration::from_secs(2), allowed)
            .await
            .expect("the allowed client connected")
            .unwrap();
    }
}
