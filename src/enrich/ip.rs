//! IP address → ISO country, from a MaxMind-format database (GeoLite2-Country, DB-IP country lite;
//! read with the `maxminddb` crate) or a CSV of `network,country` CIDR rows (IPv4 and IPv6).

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::Path;

/// A loaded IP → country table.
pub enum IpCountry {
    Mmdb(maxminddb::Reader<Vec<u8>>),
    /// Sorted, non-overlapping after load: (first, last, country). IPv4 kept as IPv4-mapped IPv6.
    Ranges(Vec<(u128, u128, [u8; 2])>),
}

impl std::fmt::Debug for IpCountry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpCountry::Mmdb(_) => f.write_str("IpCountry::Mmdb"),
            IpCountry::Ranges(r) => write!(f, "IpCountry::Ranges({} networks)", r.len()),
        }
    }
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl IpCountry {
    /// Open `.mmdb` by content (its metadata marker), anything else as CSV.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read IP-country file", path.display()))?;
        if bytes.windows(14).any(|w| w == b"\xAB\xCD\xEFMaxMind.com") {
            let reader = maxminddb::Reader::from_source(bytes)
                .with_context(|| format!("{}: not a valid MaxMind database", path.display()))?;
            return Ok(IpCountry::Mmdb(reader));
        }
        let text = String::from_utf8_lossy(&bytes);
        Self::from_csv(&text).with_context(|| format!("{}: bad IP-country CSV", path.display()))
    }

    /// `network,country` rows; a header row is optional; more specific networks win over wider ones.
    pub fn from_csv(text: &str) -> Result<Self> {
        let mut nets: Vec<(IpNet, [u8; 2])> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split([',', '\t']).map(|p| p.trim().trim_matches('"'));
            let (Some(net), Some(cc)) = (parts.next(), parts.next()) else {
                bail!("line {}: expected `network,country`, got {line:?}", i + 1);
            };
            let parsed: IpNet = match net.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => match net.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) if i == 0 => continue, // header
                    Err(_) => bail!("line {}: {net:?} is not a CIDR network", i + 1),
                },
            };
            let cc = cc.to_ascii_uppercase();
            let b = cc.as_bytes();
            if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
                bail!("line {}: {cc:?} is not an ISO alpha-2 country", i + 1);
            }
            nets.push((parsed.trunc(), [b[0], b[1]]));
        }
        Ok(IpCountry::Ranges(disjoint(nets)))
    }

    /// Country of one textual IP (`1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:5060`, `1.2.3.4:5060`).
    pub fn lookup(&self, text: &str) -> Option<String> {
        let ip = parse_ip(text)?;
        match self {
            IpCountry::Mmdb(r) => {
                let res = r.lookup(ip).ok()?;
                let c: maxminddb::geoip2::Country = res.decode().ok()??;
                c.country.iso_code.or(c.registered_country.iso_code).map(str::to_string)
            }
            IpCountry::Ranges(ranges) => {
                let k = key(ip);
                let i = ranges.partition_point(|r| r.0 <= k);
                let (lo, hi, cc) = ranges.get(i.checked_sub(1)?)?;
                (*lo <= k && k <= *hi).then(|| String::from_utf8_lossy(cc).into_owned())
            }
        }
    }
}

/// CIDR networks are nested or disjoint: sort outer-first and sweep with a stack so that a more
/// specific network overrides the part of a wider one it covers. O(n log n) for full country lists.
fn disjoint(nets: Vec<(IpNet, [u8; 2])>) -> Vec<(u128, u128, [u8; 2])> {
    let mut nets: Vec<(u128, u128, [u8; 2])> =
        nets.into_iter().map(|(n, cc)| (key(n.network()), key(n.broadcast()), cc)).collect();
    nets.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    struct Open {
        hi: u128,
        cc: [u8; 2],
        cursor: Option<u128>,
    }
    let mut out = Vec::with_capacity(nets.len());
    let mut stack: Vec<Open> = Vec::new();
    fn close(stack: &mut Vec<Open>, out: &mut Vec<(u128, u128, [u8; 2])>) {
        let top = stack.pop().expect("non-empty");
        if let Some(c) = top.cursor.filter(|c| *c <= top.hi) {
            out.push((c, top.hi, top.cc));
        }
        if let Some(parent) = stack.last_mut() {
            parent.cursor = top.hi.checked_add(1);
        }
    }
    for (lo, hi, cc) in nets {
        while stack.last().is_some_and(|t| t.hi < lo) {
            close(&mut stack, &mut out);
        }
        if let Some(top) = stack.last_mut() {
            if let Some(c) = top.cursor.filter(|c| *c < lo) {
                out.push((c, lo - 1, top.cc));
            }
            top.cursor = None;
        }
        stack.push(Open { hi, cc, cursor: Some(lo) });
    }
    while !stack.is_empty() {
        close(&mut stack, &mut out);
    }
    out.sort_unstable_by_key(|r| r.0);
    out
}

/// Accept a bare address or one with a port (`1.2.3.4:5060`, `[::1]:5060`).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Ok(sa) = t.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    t.trim_start_matches('[').split(']').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_ranges_v4_v6_and_nesting() {
        let t = IpCountry::from_csv(
            "network,country\n1.0.0.0/8,CN\n1.2.3.0/24,jp\n240e::/20,CN\n2a00:1450::/32,US\n203.0.113.7,PH\n",
        )
        .unwrap();
        assert_eq!(t.lookup("1.9.9.9").as_deref(), Some("CN"));
        assert_eq!(t.lookup("1.2.3.4").as_deref(), Some("JP"));
        assert_eq!(t.lookup("1.2.4.1").as_deref(), Some("CN"));
        assert_eq!(t.lookup("240e:3a1:4c2::9").as_deref(), Some("CN"));
        assert_eq!(t.lookup("[240e:3a1::1]:5060").as_deref(), Some("CN"));
        assert_eq!(t.lookup("1.2.3.4:5060").as_deref(), Some("JP"));
        assert_eq!(t.lookup("2a00:1450:4001::1").as_deref(), Some("US"));
        assert_eq!(t.lookup("203.0.113.7").as_deref(), Some("PH"));
        assert_eq!(t.lookup("203.0.113.8"), None);
        assert_eq!(t.lookup("8.8.8.8"), None);
        assert_eq!(t.lookup("not-an-ip"), None);
        // an IPv4 address never matches an IPv6 network of the same bits
        assert_eq!(t.lookup("::1"), None);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = IpCountry::from_csv("network,country\n1.0.0.0/8,CN\nbogus,CN\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = IpCountry::from_csv("1.0.0.0/8,China\n").unwrap_err();
        assert!(e.to_string().contains("alpha-2"), "{e}");
    }
}

#[cfg(test)]
mod mmdb_tests {
    use super::*;

    /// tests/data/ip-country.mmdb is written by tests/data/make_mmdb.py (mmdb-writer).
    #[test]
    fn maxmind_database_v4_and_v6() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ip-country.mmdb");
        let t = IpCountry::open(&p).unwrap();
        assert!(matches!(t, IpCountry::Mmdb(_)));
        assert_eq!(t.lookup("36.112.4.20").as_deref(), Some("CN"));
        assert_eq!(t.lookup("240e:3a1:4c2::9").as_deref(), Some("CN"));
        assert_eq!(t.lookup("112.198.33.7:5060").as_deref(), Some("PH"));
        assert_eq!(t.lookup("2001:4450:1::1").as_deref(), Some("PH"));
        assert_eq!(t.lookup("86.130.0.1").as_deref(), Some("GB"));
        assert_eq!(t.lookup("8.8.8.8"), None);
    }
}
