//! What a node (or a backend's hosts as a whole) supports of the faults: nftables, tc and its
//! qdiscs, FUSE, libfaketime, a service to signal.

/// What a node supports, from a probe run on it (`Cluster::capabilities`), or what every host
/// of a backend supports (`FaultBackend::probe_kernel`, for `requires`). Each field is a yes or
/// no; [`Capabilities::has`] asks by name.
///
/// ```
/// use cluster_sim_core::fault::Capabilities;
///
/// let caps = Capabilities { nft: true, tc: true, htb: true, ..Default::default() };
/// assert_eq!(caps.has("rate"), Some(true)); // htb
/// assert_eq!(caps.has("latency"), Some(false)); // netem
/// assert_eq!(caps.has("gpu"), None); // not a capability
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// nftables (partitions, loss).
    pub nft: bool,
    /// tc (rate).
    pub tc: bool,
    /// The htb qdisc (rate).
    pub htb: bool,
    /// The netem qdisc (latency, jitter, duplicate, corrupt, reorder).
    pub netem: bool,
    /// libfaketime preloaded into the service (clock skew).
    pub faketime: bool,
    /// A running service to freeze, thaw or kill.
    pub service: bool,
    /// FUSE mounts work (the fault filesystem of `faulty_dirs`): `/dev/fuse`, and a mount
    /// allowed (root with CAP_SYS_ADMIN, else `fusermount3`).
    pub fuse: bool,
}

/// The capabilities a test may declare in `#[cluster_test(requires = [...])]`: kernel features
/// a backend's hosts have or lack as a whole, probed once per run without a cluster.
pub const KERNEL_FEATURES: &[&str] = &["nft", "tc", "htb", "netem", "fuse"];

impl Capabilities {
    /// Reads a probe's `key=yes|no` lines (a key not listed is a no).
    ///
    /// ```
    /// use cluster_sim_core::fault::Capabilities;
    ///
    /// let caps = Capabilities::parse("nft=yes\ntc=yes\nhtb=yes\nnetem=no\nfuse=no\n");
    /// assert_eq!(caps.has("fuse"), Some(false));
    /// assert_eq!(caps.has("nft"), Some(true));
    /// ```
    pub fn parse(out: &str) -> Self {
        let yes = |k: &str| out.lines().any(|l| l.trim() == format!("{k}=yes"));
        Capabilities {
            nft: yes("nft"),
            tc: yes("tc"),
            htb: yes("htb"),
            netem: yes("netem"),
            faketime: yes("faketime"),
            service: yes("service"),
            fuse: yes("fuse"),
        }
    }

    /// Features present in both (a backend has a feature only where all its hosts do).
    pub fn and(&self, other: &Self) -> Self {
        Capabilities {
            nft: self.nft && other.nft,
            tc: self.tc && other.tc,
            htb: self.htb && other.htb,
            netem: self.netem && other.netem,
            faketime: self.faketime && other.faketime,
            service: self.service && other.service,
            fuse: self.fuse && other.fuse,
        }
    }

    /// Whether the node has the named capability (`netem`, `htb`, `nft`, `tc`, `fuse`,
    /// `faketime`).
    pub fn has(&self, name: &str) -> Option<bool> {
        Some(match name {
            "nft" | "partition" | "loss" => self.nft,
            "tc" => self.tc,
            "htb" | "rate" => self.htb,
            "netem" | "latency" => self.netem,
            "faketime" | "clock" => self.faketime,
            "service" => self.service,
            "fuse" => self.fuse,
            _ => return None,
        })
    }

    /// The kernel module or tool behind a capability name, for messages.
    pub fn missing_what(name: &str) -> &'static str {
        match name {
            "netem" | "latency" => "the kernel module sch_netem",
            "htb" | "rate" => "the kernel module sch_htb",
            "nft" | "partition" | "loss" => "nftables (nft and the nf_tables module)",
            "tc" => "tc (iproute2)",
            "faketime" | "clock" => "libfaketime preloaded into the service",
            "fuse" => "FUSE (/dev/fuse and the right to mount it: CAP_SYS_ADMIN in a container, fusermount3 of the package fuse3 for a user)",
            _ => "an unknown capability",
        }
    }
}
