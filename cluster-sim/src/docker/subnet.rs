//! Subnets for cluster networks. Each cluster gets its own subnet from a pool (default
//! `10.199.0.0/16`, `CLUSTER_SIM_SUBNET_POOL` overrides) so node addresses are known before any
//! container starts (templates need them) and stay fixed across restarts. Docker's own default
//! pools hold only about 30 bridge networks; ours holds 256 clusters of up to 250 nodes and
//! never collides with them.
//!
//! A subnet is a /24 unless the cluster needs more: then the smallest aligned block that holds
//! its nodes, the gateway and a small reserve (`prefix_for`): a /23 up to 506 nodes, a /22 up to
//! 1,018. Nodes take `.2` onwards in spec order, the gateway `.1`.

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

/// Addresses of a subnet that are never a node's: the network and broadcast addresses, the
/// gateway and a reserve of 3 (so a /24 holds 250 nodes, as it always has).
const NOT_NODES: u32 = 6;

/// The smallest prefix a cluster network needs to hold `nodes` nodes: 24, or shorter for more
/// than 250 nodes. `None` past a /16 (65,530 nodes; far beyond what one engine runs).
pub fn prefix_for(nodes: usize) -> Option<u8> {
    (16..=24u8)
        .rev()
        .find(|&p| (1u64 << (32 - p)) - u64::from(NOT_NODES) >= nodes as u64)
}

/// How many nodes a network of this prefix holds.
pub fn capacity(prefix: u8) -> u32 {
    (1u32 << (32 - u32::from(prefix))) - NOT_NODES
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

/// The aligned subnets of `prefix` in a pool (none when the pool is smaller than that),
/// starting at a point derived from `seed` so concurrent clusters try different subnets first,
/// skipping any that overlap a host route.
pub fn candidates(pool: &Net, prefix: u8, seed: u64, routes: &[Net]) -> Vec<Net> {
    if prefix < pool.prefix || prefix > 30 {
        return Vec::new();
    }
    let count = 1u64 << (prefix - pool.prefix);
    let start = seed % count;
    let size = 1u64 << (32 - prefix);
    (0..count)
        .map(|i| Net {
            addr: Ipv4Addr::from(
                (u64::from(u32::from(pool.addr)) + ((start + i) % count) * size) as u32,
            ),
            prefix,
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
        let c = candidates(&pool, 24, 255, &[]);
        assert_eq!(c.len(), 256);
        assert_eq!(c[0].to_string(), "10.199.255.0/24");
        assert_eq!(c[1].to_string(), "10.199.0.0/24");
        let route = Net::parse("10.199.0.0/17").unwrap();
        assert_eq!(candidates(&pool, 24, 0, &[route]).len(), 128);
        assert_eq!(c[1].host(2).to_string(), "10.199.0.2");
    }

    #[test]
    fn prefix_grows_with_the_node_count() {
        assert_eq!(prefix_for(1), Some(24));
        assert_eq!(prefix_for(250), Some(24));
        assert_eq!(prefix_for(251), Some(23));
        assert_eq!(prefix_for(506), Some(23));
        assert_eq!(prefix_for(507), Some(22));
        assert_eq!(prefix_for(1018), Some(22));
        assert_eq!(prefix_for(1019), Some(21));
        assert_eq!(prefix_for(65530), Some(16));
        assert_eq!(prefix_for(65531), None);
        for n in [1, 3, 250, 251, 300, 506, 507, 2000] {
            let p = prefix_for(n).unwrap();
            // Node n's address (the last) stays below the broadcast address with room to spare.
            assert!(capacity(p) as usize >= n, "{n} nodes in a /{p}");
            assert!(
                p == 24 || capacity(p + 1) < n as u32,
                "{n} nodes: /{p} is not the smallest"
            );
        }
    }

    #[test]
    fn larger_subnets_are_aligned_blocks_of_the_pool() {
        let pool = Net::parse("10.199.0.0/16").unwrap();
        let c = candidates(&pool, 23, 1, &[]);
        assert_eq!(c.len(), 128);
        assert_eq!(c[0].to_string(), "10.199.2.0/23");
        assert_eq!(c[127].to_string(), "10.199.0.0/23");
        assert!(c.iter().all(|n| u32::from(n.addr) % 512 == 0));
        assert_eq!(c[0].host(257).to_string(), "10.199.3.1");
        let c = candidates(&pool, 22, 7, &[]);
        assert_eq!(c.len(), 64);
        assert_eq!(c[0].to_string(), "10.199.28.0/22");
        // A /23 overlapping a routed /24 is skipped, its neighbour is not.
        let route = Net::parse("10.199.3.0/24").unwrap();
        let c = candidates(&pool, 23, 0, &[route]);
        assert_eq!(c.len(), 127);
        assert!(!c.iter().any(|n| n.to_string() == "10.199.2.0/23"));
        // A pool smaller than the subnet holds none; a pool of exactly that size holds one.
        let small = Net::parse("10.199.4.0/24").unwrap();
        assert!(candidates(&small, 23, 0, &[]).is_empty());
        let exact = Net::parse("10.199.4.0/23").unwrap();
        assert_eq!(candidates(&exact, 23, 5, &[]).len(), 1);
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
