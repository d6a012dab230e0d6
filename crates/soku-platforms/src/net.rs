//! Requests to hosts a user names (images by URL, a Mastodon instance, a Bluesky PDS) must not
//! reach the server's own network (spec 8): loopback, private, link-local, metadata and other
//! special addresses are refused, for IP literals in the URL, for every address a name resolves
//! to (the resolver below is the only one the client uses, so a name cannot resolve to a public
//! address for the check and a private one for the connection), and after every redirect.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Which destinations a guarded client may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// Lets 127.0.0.0/8 and ::1 through (tests, whose fake platforms run on loopback). Every
    /// other special range stays refused.
    pub allow_loopback: bool,
}

impl NetPolicy {
    /// Whether `ip` may be connected to.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allow_loopback && ip.is_loopback() {
            return true;
        }
        is_public(ip)
    }

    /// Checks a URL before it is requested: http(s) only, and an IP-literal host must be allowed
    /// (names are checked when they are resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the scheme '{}' is not allowed", url.scheme()));
        }
        match url.host() {
            None => Err("the URL has no host".into()),
            Some(url::Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => {
                Err(format!("the address {ip} is not allowed"))
            }
            Some(url::Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => {
                Err(format!("the address {ip} is not allowed"))
            }
            Some(url::Host::Domain(d)) if !self.allow_loopback && is_local_name(d) => {
                Err(format!("the host '{d}' is not allowed"))
            }
            Some(_) => Ok(()),
        }
    }

    /// A client that can only reach allowed addresses, following at most `max_redirects`
    /// redirects, each checked.
    pub fn client(&self, timeout: Duration, max_redirects: usize) -> reqwest::Client {
        let policy = *self;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(format!("redirect refused: {why}")),
            }
        });
        reqwest::Client::builder()
            // A proxy would resolve names itself, past the guarded resolver.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .redirect(redirects)
            // A redirect's target is not told the URL it came from (its path and query may
            // carry a signed token).
            .referer(false)
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .user_agent(crate::http::USER_AGENT)
            .build()
            .expect("the TLS backend initialises")
    }
}

fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Resolves names, keeping only allowed addresses; a name with none left fails to resolve.
struct GuardedResolver {
    policy: NetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            if !policy.allow_loopback && is_local_name(&host) {
                return Err(format!("the host '{host}' is not allowed").into());
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                // One message either way: which names exist inside must not be probeable.
                let why: Box<dyn std::error::Error + Send + Sync> =
                    format!("'{host}' has no address, or only addresses that are not allowed")
                        .into();
                return Err(why);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A globally routable unicast address: not loopback, private, shared (CGNAT), link-local
/// (cloud metadata at 169.254.169.254 and fd00:ec2::254 included), multicast, documentation,
/// benchmarking, reserved or unspecified; IPv4 embedded in IPv6 is judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..=127).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..=19).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96), the deprecated IPv4-compatible form (::/96) and the IPv4-translated
    // form (::ffff:0:0/96) carry an IPv4 address.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4])
        || s[0..6] == [0; 6]
        || (s[0..4] == [0; 4] && s[4] == 0xffff && s[5] == 0)
    {
        let [.., hi, lo] = s;
        return is_public_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 included
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (64:ff9b:1::/48)
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID...)
        || s[0] == 0x2002 // 6to4 wraps an arbitrary IPv4 address
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_addresses_are_refused() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a00:1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must be refused");
        }
        for s in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn loopback_flag_lets_only_loopback_through() {
        let p = NetPolicy {
            allow_loopback: true,
        };
        assert!(p.allows(ip("127.0.0.1")) && p.allows(ip("::1")));
        assert!(!p.allows(ip("10.0.0.1")) && !p.allows(ip("169.254.169.254")));
        assert!(!NetPolicy::default().allows(ip("127.0.0.1")));
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let p = NetPolicy::default();
        let check = |u: &str| p.check_url(&reqwest::Url::parse(u).unwrap());
        assert!(check("https://example.com/a.png").is_ok());
        assert!(check("http://127.0.0.1/a.png").is_err());
        assert!(check("http://[::1]:8080/").is_err());
        assert!(check("http://169.254.169.254/latest/meta-data").is_err());
        assert!(check("http://localhost:3000/").is_err());
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("ftp://example.com/a.png").is_err());
    }
}
