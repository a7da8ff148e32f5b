//! The neutral vocabulary of faults: which links are cut, how a link is impaired, what is done
//! to a service, its clock or its disk. Nothing here names a tool or a backend.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::FaultError;

/// Which way packets travel, seen from the node a rule is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets the node sends.
    Out,
    /// Packets the node receives.
    In,
}

/// A set of cut links: `(from, to)` means packets from `from` to `to` are dropped.
///
/// Every partition shape becomes one of these; a symmetric cut holds both directions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cuts(pub BTreeSet<(String, String)>);

impl Cuts {
    /// Cuts every link between nodes of different groups, both ways. A node in no group keeps
    /// all its links; a node in two groups is an error.
    pub fn between_groups<G: AsRef<[S]>, S: AsRef<str>>(groups: &[G]) -> Result<Self, FaultError> {
        let groups: Vec<Vec<String>> = groups
            .iter()
            .map(|g| g.as_ref().iter().map(|s| s.as_ref().to_string()).collect())
            .collect();
        let mut seen = BTreeSet::new();
        for n in groups.iter().flatten() {
            if !seen.insert(n.clone()) {
                return Err(FaultError::Invalid(format!(
                    "node {n} is in more than one group of the partition"
                )));
            }
        }
        if groups.iter().filter(|g| !g.is_empty()).count() < 2 {
            return Err(FaultError::Invalid(
                "a partition needs at least two non-empty groups".into(),
            ));
        }
        let mut cuts = BTreeSet::new();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for x in a {
                    for y in b {
                        cuts.insert((x.clone(), y.clone()));
                    }
                }
            }
        }
        Ok(Self(cuts))
    }

    /// Packets from `from` to `to` are dropped; the other way still flows.
    pub fn oneway(from: &str, to: &str) -> Result<Self, FaultError> {
        if from == to {
            return Err(FaultError::Invalid(format!(
                "a one-way partition needs two different nodes (got {from} twice)"
            )));
        }
        Ok(Self(BTreeSet::from([(from.to_string(), to.to_string())])))
    }

    /// Every node named here.
    pub fn nodes(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .collect()
    }
}

/// Partition shapes, after Jepsen's nemeses: each turns a node list into [`Cuts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// The first half of the nodes (in spec order) against the rest.
    Halves,
    /// A random half against the rest, drawn from the seed.
    RandomHalves {
        /// Seed of the draw.
        seed: u64,
    },
    /// One node against all others (the node named, or a random one drawn from the seed).
    OneNode {
        /// The node to isolate.
        node: String,
    },
    /// Two halves that each keep their link to one bridge node (the middle one), which sees both.
    Bridge,
    /// Every node sees a majority of the others, and no two nodes see the same majority: node
    /// `i` keeps its links to its ring neighbours within the majority's reach.
    MajoritiesRing,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Halves => f.write_str("halves"),
            Shape::RandomHalves { seed } => write!(f, "random halves (seed {seed})"),
            Shape::OneNode { node } => write!(f, "isolate {node}"),
            Shape::Bridge => f.write_str("bridge"),
            Shape::MajoritiesRing => f.write_str("majorities ring"),
        }
    }
}

impl Shape {
    /// The links this shape cuts among `nodes` (in spec order).
    pub fn cuts(&self, nodes: &[String]) -> Result<Cuts, FaultError> {
        let n = nodes.len();
        if n < 2 {
            return Err(FaultError::Invalid(format!(
                "a partition needs two nodes or more (the cluster has {n})"
            )));
        }
        match self {
            Shape::Halves => {
                let (a, b) = nodes.split_at(n / 2);
                Cuts::between_groups(&[a, b])
            }
            Shape::RandomHalves { seed } => {
                let mut v = nodes.to_vec();
                crate::rng::SplitMix64::new(*seed).shuffle(&mut v);
                let (a, b) = v.split_at(n / 2);
                Cuts::between_groups(&[a, b])
            }
            Shape::OneNode { node } => {
                if !nodes.contains(node) {
                    return Err(FaultError::UnknownNode(node.clone()));
                }
                let rest: Vec<String> = nodes.iter().filter(|x| *x != node).cloned().collect();
                Cuts::between_groups(&[vec![node.clone()], rest])
            }
            Shape::Bridge => {
                if n < 3 {
                    return Err(FaultError::Invalid(
                        "a bridge partition needs three nodes or more".into(),
                    ));
                }
                let mid = n / 2;
                let a = &nodes[..mid];
                let b = &nodes[mid + 1..];
                Cuts::between_groups(&[a, b])
            }
            Shape::MajoritiesRing => {
                if n < 3 {
                    return Err(FaultError::Invalid(
                        "a majorities ring needs three nodes or more".into(),
                    ));
                }
                // Node i keeps i-r ..= i+r on the ring: 2r+1 >= n/2+1 nodes, a majority.
                let r = (n / 2).div_ceil(2);
                let mut cuts = BTreeSet::new();
                for i in 0..n {
                    for j in 0..n {
                        let d = i.abs_diff(j).min(n - i.abs_diff(j));
                        if i != j && d > r {
                            cuts.insert((nodes[i].clone(), nodes[j].clone()));
                        }
                    }
                }
                Ok(Cuts(cuts))
            }
        }
    }
}

/// How a link is degraded. Each field is optional; set fields stack. Start from
/// [`Impairment::loss`], [`Impairment::rate`] or [`Impairment::latency`] and add the rest with
/// the `with_*` methods; pass it to `Cluster::impair` (a node's links to every peer) or
/// `Cluster::impair_link` (to one peer).
///
/// Loss needs nftables, `rate` the htb qdisc, and latency, jitter, duplicate, corrupt and
/// reorder the netem qdisc (`Cluster::capabilities` says which a node has). Everything applies
/// to packets the node sends unless [`Impairment::inbound`] says otherwise.
///
/// ```
/// use cluster_sim_core::fault::{Direction, Impairment};
/// use std::time::Duration;
///
/// let wan = Impairment::latency(Duration::from_millis(80))
///     .with_jitter(Duration::from_millis(10))
///     .with_loss(1.0)
///     .with_rate("10mbit");
/// assert!(wan.needs_netem());
/// assert_eq!(wan.to_string(), "loss 1%, rate 10mbit, latency 80ms, jitter 10ms");
/// let deaf = Impairment::loss(100.0).inbound(); // drops what the node receives
/// assert_eq!(deaf.dir(), Direction::In);
/// assert!(Impairment::rate("fast").validate().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impairment {
    /// Which way, seen from the impaired node (default: packets it sends).
    pub direction: Option<Direction>,
    /// Drop this percentage of packets (0-100).
    pub loss: Option<f64>,
    /// Limit throughput, in tc's notation (`1mbit`, `500kbit`).
    pub rate: Option<String>,
    /// Delay every packet (needs netem).
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// Vary the delay by up to this much (needs netem).
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// Duplicate this percentage of packets (needs netem).
    pub duplicate: Option<f64>,
    /// Corrupt this percentage of packets (needs netem).
    pub corrupt: Option<f64>,
    /// Reorder this percentage of packets (needs netem and a latency).
    pub reorder: Option<f64>,
}

impl Impairment {
    /// Drops `percent` of packets.
    pub fn loss(percent: f64) -> Self {
        Self::default().with_loss(percent)
    }

    /// Limits throughput to `rate` (`"1mbit"`).
    pub fn rate(rate: impl Into<String>) -> Self {
        Self::default().with_rate(rate)
    }

    /// Delays every packet the node sends by `latency` (needs netem; add
    /// [`Impairment::with_jitter`] to vary it). For a delay on one link only, pass it to
    /// `Cluster::impair_link`.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::Impairment;
    /// use std::time::Duration;
    ///
    /// cluster.impair_link("n1", "n2", Impairment::latency(Duration::from_millis(100))).await?;
    /// # Ok(()) }
    /// ```
    pub fn latency(latency: Duration) -> Self {
        Self::default().with_latency(latency)
    }

    /// Adds loss.
    pub fn with_loss(mut self, percent: f64) -> Self {
        self.loss = Some(percent);
        self
    }

    /// Adds a rate limit.
    pub fn with_rate(mut self, rate: impl Into<String>) -> Self {
        self.rate = Some(rate.into());
        self
    }

    /// Adds latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Adds jitter to the latency.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Duplicates a percentage of packets.
    pub fn with_duplicate(mut self, percent: f64) -> Self {
        self.duplicate = Some(percent);
        self
    }

    /// Corrupts a percentage of packets.
    pub fn with_corrupt(mut self, percent: f64) -> Self {
        self.corrupt = Some(percent);
        self
    }

    /// Reorders a percentage of packets.
    pub fn with_reorder(mut self, percent: f64) -> Self {
        self.reorder = Some(percent);
        self
    }

    /// Applies to packets the node receives instead of those it sends (from every peer, or
    /// from the one peer of `Cluster::impair_link`), as `Cluster::impair_inbound` and
    /// `cluster-sim impair --inbound` do. Loss is dropped where the packets arrive; shaping
    /// (rate, and the netem fields) is done by the senders on their way out to the node, since
    /// tc shapes only what a node sends, so it needs what the senders' kernels have.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::Impairment;
    ///
    /// cluster.impair("n2", Impairment::loss(100.0).inbound()).await?; // n2 hears nobody
    /// # Ok(()) }
    /// ```
    pub fn inbound(mut self) -> Self {
        self.direction = Some(Direction::In);
        self
    }

    /// The direction (default: out).
    pub fn dir(&self) -> Direction {
        self.direction.unwrap_or(Direction::Out)
    }

    /// Whether any field needs netem (latency, jitter, duplicate, corrupt, reorder).
    pub fn needs_netem(&self) -> bool {
        self.latency.is_some()
            || self.jitter.is_some()
            || self.duplicate.is_some()
            || self.corrupt.is_some()
            || self.reorder.is_some()
    }

    /// Checks ranges and the rate's notation.
    pub fn validate(&self) -> Result<(), FaultError> {
        for (what, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
            ("reorder", self.reorder),
        ] {
            if let Some(p) = v {
                if !(0.0..=100.0).contains(&p) || p.is_nan() {
                    return Err(FaultError::Invalid(format!(
                        "{what} {p}% is not a percentage between 0 and 100"
                    )));
                }
            }
        }
        if let Some(r) = &self.rate {
            let digits = r.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &r[digits.len()..];
            let units = ["bit", "kbit", "mbit", "gbit", "bps", "kbps", "mbps", "gbps"];
            if digits.is_empty()
                || digits.parse::<f64>().map_or(true, |v| v <= 0.0)
                || !units.contains(&unit.to_ascii_lowercase().as_str())
            {
                return Err(FaultError::Invalid(format!(
                    "rate {r:?}: expected a number and a unit ({})",
                    units.join(", ")
                )));
            }
        }
        if self.jitter.is_some() && self.latency.is_none() {
            return Err(FaultError::Invalid("jitter needs a latency".into()));
        }
        if self == &Self::default() || (self.direction.is_some() && self.is_empty_but_direction()) {
            return Err(FaultError::Invalid(
                "an impairment needs loss, rate, latency, duplicate, corrupt or reorder".into(),
            ));
        }
        Ok(())
    }

    fn is_empty_but_direction(&self) -> bool {
        Self {
            direction: None,
            ..self.clone()
        } == Self::default()
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.loss {
            parts.push(format!("loss {p}%"));
        }
        if let Some(r) = &self.rate {
            parts.push(format!("rate {r}"));
        }
        if let Some(d) = self.latency {
            parts.push(format!("latency {}", humantime::format_duration(d)));
        }
        if let Some(d) = self.jitter {
            parts.push(format!("jitter {}", humantime::format_duration(d)));
        }
        if let Some(p) = self.duplicate {
            parts.push(format!("duplicate {p}%"));
        }
        if let Some(p) = self.corrupt {
            parts.push(format!("corrupt {p}%"));
        }
        if let Some(p) = self.reorder {
            parts.push(format!("reorder {p}%"));
        }
        if self.dir() == Direction::In {
            parts.push("inbound".into());
        }
        f.write_str(&parts.join(", "))
    }
}

/// A signal for the service's process group, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// SIGKILL.
    Kill,
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP.
    Hup,
    /// SIGSTOP (what freeze sends).
    Stop,
    /// SIGCONT (what thaw sends).
    Cont,
}

impl Signal {
    /// Reads `TERM`, `sigterm`, `SIGKILL`...; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.trim().to_ascii_uppercase();
        let n = n.strip_prefix("SIG").unwrap_or(&n);
        [
            Signal::Kill,
            Signal::Term,
            Signal::Int,
            Signal::Hup,
            Signal::Stop,
            Signal::Cont,
        ]
        .into_iter()
        .find(|s| s.name() == n)
    }

    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// One kind of fault, with everything needed to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Cut links (every partition shape, one-way cuts, isolation).
    Partition {
        /// How it was asked for, for people (`n1 | n2,n3`, `halves`).
        shape: String,
        /// The links cut.
        cuts: Cuts,
    },
    /// A degraded link from one node (to one peer, or to every peer of the cluster).
    Impair {
        /// The impaired node.
        node: String,
        /// The peer, or every other node when `None`.
        peer: Option<String>,
        /// How.
        impairment: Impairment,
    },
    /// The node's service is stopped with SIGSTOP.
    Freeze {
        /// The node.
        node: String,
    },
    /// The node's service sees its clock offset (libfaketime).
    Clock {
        /// The node.
        node: String,
        /// The offset in milliseconds (negative: behind).
        offset_ms: i64,
        /// When set, the clock jumps between the offset and true time every this many ms.
        strobe_ms: Option<u64>,
    },
    /// Writes under a path fail with ENOSPC.
    Disk {
        /// The node.
        node: String,
        /// The path.
        path: String,
    },
    /// I/O errors, delays or corruption under a path of a `faulty_dirs` directory.
    Storage {
        /// The node.
        node: String,
        /// The path or glob, as given (relative to the node's working directory, or absolute).
        path: String,
        /// What happens there.
        fault: super::storage::StorageFault,
    },
}

impl FaultKind {
    /// Whether the fault lives in the network rules.
    pub fn is_network(&self) -> bool {
        matches!(self, FaultKind::Partition { .. } | FaultKind::Impair { .. })
    }

    /// The nodes it touches.
    pub fn nodes(&self) -> Vec<String> {
        match self {
            FaultKind::Partition { cuts, .. } => {
                cuts.nodes().into_iter().map(str::to_string).collect()
            }
            FaultKind::Impair { node, peer, .. } => {
                let mut v = vec![node.clone()];
                v.extend(peer.clone());
                v
            }
            FaultKind::Freeze { node }
            | FaultKind::Clock { node, .. }
            | FaultKind::Disk { node, .. }
            | FaultKind::Storage { node, .. } => vec![node.clone()],
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Partition { shape, .. } => write!(f, "partition {shape}"),
            FaultKind::Impair {
                node,
                peer,
                impairment,
            } => match peer {
                Some(p) => write!(f, "impair {node}->{p}: {impairment}"),
                None => write!(f, "impair {node}: {impairment}"),
            },
            FaultKind::Freeze { node } => write!(f, "freeze {node}"),
            FaultKind::Clock {
                node,
                offset_ms,
                strobe_ms,
            } => {
                write!(f, "clock {node} {}", format_offset(*offset_ms))?;
                if let Some(s) = strobe_ms {
                    write!(f, " strobe every {s}ms")?;
                }
                Ok(())
            }
            FaultKind::Disk { node, path } => write!(f, "disk full {node}:{path}"),
            FaultKind::Storage { node, path, fault } => {
                write!(f, "{} {node}:{path} {fault}", fault.word())
            }
        }
    }
}

/// `+30s`, `-1500ms`.
pub fn format_offset(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let d = Duration::from_millis(ms.unsigned_abs());
    format!("{sign}{}", humantime::format_duration(d))
}

/// Parses `+30s`, `-2m`, `90s` (no sign: ahead) into milliseconds.
pub fn parse_offset(s: &str) -> Result<i64, FaultError> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = humantime::parse_duration(rest)
        .map_err(|e| FaultError::Invalid(format!("clock offset {s:?}: {e}")))?;
    let ms = i64::try_from(d.as_millis())
        .map_err(|_| FaultError::Invalid(format!("clock offset {s:?} is too large")))?;
    Ok(if neg { -ms } else { ms })
}

/// A fault in force: an id (unique within the cluster), what it is, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Id within the cluster, for `end`.
    pub id: u64,
    /// Unix time in milliseconds when it started.
    pub since_ms: u64,
    /// What it is.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl fmt::Display for ActiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.id, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn groups_cut_both_ways_and_leave_ungrouped_nodes_alone() {
        let c = Cuts::between_groups(&[&["n1"][..], &["n2", "n3"][..]]).unwrap();
        assert!(c.0.contains(&("n1".into(), "n2".into())));
        assert!(c.0.contains(&("n3".into(), "n1".into())));
        assert!(!c.0.contains(&("n2".into(), "n3".into())));
        assert_eq!(c.0.len(), 4);
        assert!(Cuts::between_groups(&[&["n1"][..], &["n1"][..]]).is_err());
        assert!(Cuts::between_groups(&[&["n1"][..]]).is_err());
    }

    #[test]
    fn shapes() {
        let n = names(5);
        let halves = Shape::Halves.cuts(&n).unwrap();
        assert!(halves.0.contains(&("n1".into(), "n3".into())));
        assert!(!halves.0.contains(&("n1".into(), "n2".into())));
        let bridge = Shape::Bridge.cuts(&n).unwrap();
        // n3 is the bridge: it keeps every link.
        assert!(!bridge.nodes().contains("n3"));
        assert!(bridge.0.contains(&("n1".into(), "n5".into())));
        let ring = Shape::MajoritiesRing.cuts(&n).unwrap();
        // Each node keeps itself and both neighbours: 3 of 5, a majority.
        for x in &n {
            let cut = ring.0.iter().filter(|(a, _)| a == x).count();
            assert_eq!(cut, 2, "{x}");
        }
        assert!(!ring.0.contains(&("n1".into(), "n5".into())));
        let r1 = Shape::RandomHalves { seed: 7 }.cuts(&n).unwrap();
        let r2 = Shape::RandomHalves { seed: 7 }.cuts(&n).unwrap();
        assert_eq!(r1, r2);
    }

    #[test]
    fn impairment_validation() {
        assert!(Impairment::loss(30.0).validate().is_ok());
        assert!(Impairment::loss(130.0).validate().is_err());
        assert!(Impairment::rate("1mbit").validate().is_ok());
        assert!(Impairment::rate("fast").validate().is_err());
        assert!(Impairment::default().inbound().validate().is_err());
        assert!(Impairment::latency(Duration::from_millis(5)).needs_netem());
    }

    #[test]
    fn signal_names() {
        assert_eq!(Signal::from_name("term"), Some(Signal::Term));
        assert_eq!(Signal::from_name("SIGKILL"), Some(Signal::Kill));
        assert_eq!(Signal::from_name("USR1"), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+30s").unwrap(), 30_000);
        assert_eq!(parse_offset("-2m").unwrap(), -120_000);
        assert_eq!(parse_offset("90s").unwrap(), 90_000);
        assert!(parse_offset("soon").is_err());
        assert_eq!(format_offset(-1500), "-1s 500ms");
    }
}
