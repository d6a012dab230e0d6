//! Which address a request comes from: the TCP peer, or, only when the peer is a trusted proxy
//! (`SOKU_TRUSTED_PROXIES`), the rightmost address in `X-Forwarded-For` that is not itself a
//! trusted proxy. Off by default, so that a client cannot choose the address it is counted as.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// At most this many `X-Forwarded-For` hops are examined, from the right.
const MAX_HOPS: usize = 32;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or a single address (`/32`, `/128`).
/// Host bits are dropped (`10.1.2.3/8` is `10.0.0.0/8`); an IPv4-mapped IPv6 peer is matched
/// as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let net = match s.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) if !s.contains('/') => match s.parse::<IpAddr>() {
                Ok(addr) => IpNet::from(addr.to_canonical()),
                Err(_) => return Err(format!("{s:?} is not an IP address or CIDR range")),
            },
            Err(_) => {
                return Err(format!(
                    "{s:?} is not a CIDR range (an address, `/`, and a prefix length of 0 to 32 \
                     for IPv4 or 0 to 128 for IPv6)"
                ));
            }
        };
        Ok(Cidr(net))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `SOKU_TRUSTED_PROXIES`: CIDRs separated by commas (spaces allowed); empty means none.
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Cidr::from_str)
        .collect()
}

/// One `X-Forwarded-For` element: an address, possibly with a port (`[::1]:443`, `1.2.3.4:80`).
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim();
    let unbracketed = hop
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hop);
    unbracketed
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address. The peer's word is taken only when the peer is trusted; then each
/// hop to the left is taken while the one who reported it is trusted. An unreadable hop stops
/// the walk at the last trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    // Split as bytes: a client may send bytes that are no text (a header value may hold them),
    // and the proxies append to that same value; only the hops that are unreadable may be
    // lost, not the ones the proxies wrote after them.
    let hops: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `X-Forwarded-For` lines as a client and its proxies send them (bytes that are no text
    /// included).
    fn xff<V: AsRef<[u8]>>(values: &[V]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                "x-forwarded-for",
                HeaderValue::from_bytes(v.as_ref()).unwrap(),
            );
        }
        h
    }

    #[test]
    fn parses_and_matches_ranges() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.255.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped IPv6");
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let one: Cidr = "127.0.0.2".parse().unwrap();
        assert!(one.contains(ip("127.0.0.2")) && !one.contains(ip("127.0.0.1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")) && !all6.contains(ip("1.2.3.4")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/-1",
            "1.2.3.4/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_list(" 10.0.0.0/8, ::1 ,,").unwrap(),
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
        );
        assert_eq!(parse_list("").unwrap(), vec![]);
        assert!(parse_list("10.0.0.0/8,nonsense").is_err());
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_trusted() {
        let h = xff(&["198.51.100.7"]);
        assert_eq!(client_ip(ip("203.0.113.1"), &h, &[]), ip("203.0.113.1"));
        let trusted = parse_list("10.0.0.0/8").unwrap();
        assert_eq!(
            client_ip(ip("203.0.113.1"), &h, &trusted),
            ip("203.0.113.1")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn takes_the_rightmost_untrusted_hop() {
        let trusted = parse_list("10.0.0.0/8").unwrap();
        // The client wrote a spoofed first entry; the trusted proxies appended the truth.
        let h = xff(&["1.1.1.1, 198.51.100.7, 10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("198.51.100.7"));
        // Several headers are one list, in order.
        let h = xff(&["1.1.1.1", "198.51.100.7", "10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("198.51.100.7"));
        // Ports and brackets are tolerated; IPv4-mapped addresses are IPv4.
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("2001:db8::1"));
        let h = xff(&["[2001:db8::2]"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("2001:db8::2"));
        let h = xff(&["198.51.100.7:5000"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), &h, &trusted),
            ip("198.51.100.7")
        );
        // Bytes that are no text in the client's part do not hide what the proxies appended.
        let h = xff(&[b"\x80\xff, 198.51.100.7".as_slice()]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("198.51.100.7"));
        let h = xff(&[b"\x80".as_slice()]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.5"));
        // Every hop trusted: the leftmost.
        let h = xff(&["10.9.9.9, 10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.9.9.9"));
        // Garbage stops the walk at the last trusted proxy.
        let h = xff(&["198.51.100.7, unknown, 10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.9"));
        let h = xff(&["nonsense"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
    }
}
