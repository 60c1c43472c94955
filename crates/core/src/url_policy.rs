//! Where live webhook endpoints may point. A live endpoint receives real
//! customers' data and is set by whoever holds a live key, so it must be
//! HTTPS and must not reach this machine or its private network (SSRF):
//! loopback, private, link-local, CGNAT, multicast, broadcast and
//! unspecified addresses are refused, at create/update for literal addresses
//! and names such as `localhost`, and again at delivery after DNS resolution
//! (so a name that later resolves to 10.0.0.1 is still refused). Operators
//! who self-host can allow ranges. Test mode keeps loopback for local work.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address range (such as 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is one a live endpoint may not reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6.to_ipv4().is_some_and(|v4| v6.segments()[..6] == [0; 6] && is_internal(IpAddr::V4(v4))) // IPv4-compatible
        }
    }
}

/// An address written as a URL host: `127.0.0.1`, `[::1]`, and the forms
/// browsers and resolvers also accept for IPv4 (`2130706433`, `0x7f000001`,
/// `0177.0.0.1`, `127.1`), which an attacker would use to slip past a check.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    inet_aton(host).map(IpAddr::V4)
}

/// `inet_aton`'s forms: 1 to 4 parts, each decimal, octal (`0…`) or hex (`0x…`).
fn inet_aton(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let n = if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse::<u64>().ok()?
        } else {
            return None;
        };
        nums.push(n);
    }
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if rest_bits < 64 && *last >= 1u64 << rest_bits {
        return None;
    }
    let mut value: u64 = 0;
    for (i, n) in init.iter().enumerate() {
        value |= n << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from((value | last) as u32))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not `http(s)://host…`.
    Malformed,
    /// A live endpoint over plain HTTP.
    NotHttps,
    /// `user:password@` in a live endpoint's URL.
    Credentials,
    /// The host is (or resolves to) an internal address.
    Internal(String),
}

impl UrlProblem {
    pub fn message(&self, url: &str) -> String {
        match self {
            UrlProblem::Malformed => format!(
                "Invalid URL: {url}. URLs must begin with http:// or https:// and name a host."
            ),
            UrlProblem::NotHttps => {
                format!("Invalid URL: {url}. Live mode webhook endpoints must use HTTPS.")
            }
            UrlProblem::Credentials => {
                format!("Invalid URL: {url}. Webhook URLs cannot contain credentials.")
            }
            UrlProblem::Internal(host) => format!(
                "Invalid URL: {url}. Live mode webhook endpoints cannot point at {host}, an internal address \
                 (an operator can allow it with --allow-private-endpoints)."
            ),
        }
    }
}

/// The parts of an endpoint URL the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub https: bool,
    pub credentials: bool,
    /// Without brackets for IPv6 literals' callers: use [`literal_ip`].
    pub host: &'a str,
}

pub fn target(url: &str) -> Result<Target<'_>, UrlProblem> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(UrlProblem::Malformed);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((_, h)) => (true, h),
        None => (false, authority),
    };
    let host = if hostport.starts_with('[') {
        hostport.find(']').map_or(hostport, |i| &hostport[..=i])
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(UrlProblem::Malformed);
    }
    Ok(Target {
        https,
        credentials,
        host,
    })
}

/// The operator's policy: which internal ranges live endpoints may reach anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow: Vec<Cidr>,
}

impl UrlPolicy {
    /// Whether a live delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    /// The checks that need no DNS: every URL must be well formed; a live one
    /// HTTPS, without credentials, and not at an internal literal address or
    /// a `localhost` name. A range the operator allowed is theirs: it may be
    /// reached over plain HTTP too (a receiver on the same private network).
    pub fn check(&self, url: &str, livemode: bool) -> Result<(), UrlProblem> {
        let t = target(url)?;
        if !livemode {
            return Ok(());
        }
        if t.credentials {
            return Err(UrlProblem::Credentials);
        }
        let lower = t.host.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        let named_loopback = lower == "localhost" || lower.ends_with(".localhost");
        let ip = literal_ip(lower).or(named_loopback.then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        match ip {
            Some(ip) if !self.permits(ip) => Err(UrlProblem::Internal(t.host.to_owned())),
            Some(ip) if is_internal(ip) => Ok(()),
            _ if !t.https => Err(UrlProblem::NotHttps),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_probes_live_urls_are_refused() {
        let policy = UrlPolicy::default();
        for url in [
            "http://example.com/hook",
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost:4242/hook",
            "https://2130706433/hook",
            "https://0x7f000001/hook",
            "https://0177.0.0.1/hook",
            "https://127.1/hook",
            "https://user:pw@192.168.1.1/hook",
            "https://192.168.1.1/hook",
            "https://100.64.0.1/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://0.0.0.0/hook",
            "https://224.0.0.1/hook",
            "https://api.localhost/hook",
        ] {
            assert!(
                policy.check(url, true).is_err(),
                "{url} must be refused in live mode"
            );
        }
        for url in [
            "https://example.com/hook",
            "https://93.184.216.34:8443/x",
            "https://[2606:4700::1]/",
        ] {
            assert_eq!(policy.check(url, true), Ok(()), "{url}");
        }
    }

    #[test]
    fn test_mode_keeps_loopback_and_plain_http() {
        let policy = UrlPolicy::default();
        for url in [
            "http://127.0.0.1:4242/hook",
            "http://localhost/hook",
            "http://user:pw@10.0.0.1/",
        ] {
            assert_eq!(policy.check(url, false), Ok(()), "{url}");
        }
        assert_eq!(policy.check("ftp://x/", false), Err(UrlProblem::Malformed));
        assert_eq!(
            policy.check("https:///x", false),
            Err(UrlProblem::Malformed)
        );
    }

    #[test]
    fn operators_can_allow_ranges() {
        let policy = UrlPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        };
        assert_eq!(policy.check("https://10.1.2.3/hook", true), Ok(()));
        assert_eq!(policy.check("https://localhost/hook", true), Ok(()));
        // An allowed range is the operator's network: plain HTTP is fine there.
        assert_eq!(policy.check("http://127.0.0.1:4242/hook", true), Ok(()));
        assert_eq!(
            policy.check("http://example.com/hook", true),
            Err(UrlProblem::NotHttps)
        );
        assert!(policy.check("https://192.168.0.1/hook", true).is_err());
        assert!(policy.permits("10.9.9.9".parse().unwrap()));
        assert!(!policy.permits("172.16.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(literal_ip("2130706433"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal_ip("127.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal_ip("10.1.258"), Some("10.1.1.2".parse().unwrap()));
        assert_eq!(literal_ip("example.com"), None);
        assert_eq!(literal_ip("256.1.1.1"), None);
        assert_eq!(literal_ip("4294967296"), None);
    }
}
