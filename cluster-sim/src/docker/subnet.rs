//! Subnets for cluster networks. Each cluster gets its own /24 from a pool (default
//! `10.199.0.0/16`, `CLUSTER_SIM_SUBNET_POOL` overrides) so node addresses are known before any
//! container starts (templates need them) and stay fixed across restarts. Docker's own default
//! pools hold only about 30 bridge networks; ours holds 256 and never collides with them.

use std::net::Ipv4Addr;

/// Default pool of cluster subnets.
pub const DEFAULT_POOL: &str = "10.199.0.0/16";

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Net {
    /// Parses `a.b.c.d/n`.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = s.trim().split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 30).then(|| Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    fn contains_net(&self, o: &Net) -> bool {
        let p = self.prefix.min(o.prefix);
        (u32::from(self.addr) & mask(p)) == (u32::from(o.addr) & mask(p))
    }

    /// The `i`-th host address (1 is the gateway).
    pub fn host(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + i)
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// Routes of this host (except the default route), read from `/proc/net/route`.
pub fn host_routes() -> Vec<Net> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let m = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            (m != 0).then(|| Net {
                addr: Ipv4Addr::from(dest),
                prefix: m.count_ones() as u8,
            })
        })
        .collect()
}

/// The /24 candidates of a pool, starting at a point derived from `seed` so concurrent
/// clusters try different subnets first, skipping any that overlap a host route.
pub fn candidates(pool: &Net, seed: u64, routes: &[Net]) -> Vec<Net> {
    let count = 1u32 << (24 - pool.prefix.min(24));
    let start = (seed % u64::from(count)) as u32;
    (0..count)
        .map(|i| Net {
            addr: Ipv4Addr::from(u32::from(pool.addr) + (((start + i) % count) << 8)),
            prefix: 24,
        })
        .filter(|n| !routes.iter().any(|r| r.contains_net(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_wrap_and_skip_routes() {
        let pool = Net::parse("10.199.0.0/16").unwrap();
        let c = candidates(&pool, 255, &[]);
        assert_eq!(c.len(), 256);
        assert_eq!(c[0].to_string(), "10.199.255.0/24");
        assert_eq!(c[1].to_string(), "10.199.0.0/24");
        let route = Net::parse("10.199.0.0/17").unwrap();
        assert_eq!(candidates(&pool, 0, &[route]).len(), 128);
        assert_eq!(c[1].host(2).to_string(), "10.199.0.2");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(Net::parse("10.0.0.0").is_none());
        assert!(Net::parse("10.0.0.0/31").is_none());
        assert_eq!(
            Net::parse("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
    }
}
