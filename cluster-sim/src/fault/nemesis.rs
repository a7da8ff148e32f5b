//! A seeded nemesis: a schedule of faults drawn from a seed, so a failing run replays exactly
//! with `CLUSTER_SIM_SEED`.

use std::fmt;
use std::time::Duration;

use super::types::{FaultKind, Impairment, Shape};
use crate::history::Recorder;
pub use crate::rng::SplitMix64;

/// Environment variable holding the nemesis seed to replay.
pub const SEED_VAR: &str = "CLUSTER_SIM_SEED";

/// The faults a nemesis may pick from.
#[derive(Debug, Clone, PartialEq)]
pub enum NemesisFault {
    /// A partition of this shape (`OneNode` and `RandomHalves` draw their node or seed).
    Partition(Shape),
    /// Freeze a random node's service.
    Freeze,
    /// Loss of this percentage on a random node's packets.
    Loss(f64),
    /// Skew a random node's service clock by up to this many milliseconds either way.
    Clock(i64),
    /// SIGKILL a random node; it is started again (same name, address and data) at the heal.
    Kill,
}

/// What one step of a schedule does: a fault from the fault ledger, or a node killed and started
/// again.
#[derive(Debug, Clone, PartialEq)]
pub enum NemesisAction {
    /// A fault, ended at the heal.
    Fault(FaultKind),
    /// SIGKILL this node; start it again at the heal.
    Kill {
        /// The node.
        node: String,
    },
}

impl NemesisAction {
    /// One word for the history's `f`: `partition`, `impair`, `freeze`, `clock`, `disk`, `kill`.
    pub fn word(&self) -> &'static str {
        match self {
            NemesisAction::Kill { .. } => "kill",
            NemesisAction::Fault(k) => match k {
                FaultKind::Partition { .. } => "partition",
                FaultKind::Impair { .. } => "impair",
                FaultKind::Freeze { .. } => "freeze",
                FaultKind::Clock { .. } => "clock",
                FaultKind::Disk { .. } => "disk",
            },
        }
    }
}

impl fmt::Display for NemesisAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NemesisAction::Fault(k) => write!(f, "{k}"),
            NemesisAction::Kill { node } => write!(f, "kill {node}"),
        }
    }
}

/// One step of a schedule: at `at` after the start, start `kind`; end it `heal_after` later.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisStep {
    /// When, from the nemesis's start.
    pub at: Duration,
    /// What.
    pub action: NemesisAction,
}

/// A seeded schedule: every `every`, one fault drawn from `faults`, healed after `heal_after`.
#[derive(Debug, Clone)]
pub struct Nemesis {
    /// The seed (printed in test.log; replay it with `CLUSTER_SIM_SEED`).
    pub seed: u64,
    /// Time between the starts of two faults.
    pub every: Duration,
    /// How long each fault lasts.
    pub heal_after: Duration,
    /// What it picks from.
    pub faults: Vec<NemesisFault>,
    /// Where its actions are recorded (process `nemesis` of a history), if anywhere.
    pub recorder: Option<Recorder>,
}

impl Nemesis {
    /// A nemesis over `faults`, its seed from `CLUSTER_SIM_SEED` or fresh; every 5s, healed
    /// after 2s.
    pub fn new(faults: Vec<NemesisFault>) -> Self {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(fresh_seed);
        Self {
            seed,
            every: Duration::from_secs(5),
            heal_after: Duration::from_secs(2),
            faults,
            recorder: None,
        }
    }

    /// Records each action in `rec` (an `invoke` when it starts, an `info` when it is healed),
    /// so the history shows what the clients went through.
    pub fn record(mut self, rec: &Recorder) -> Self {
        self.recorder = Some(rec.clone());
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the time between faults.
    pub fn every(mut self, d: Duration) -> Self {
        self.every = d;
        self
    }

    /// Sets how long each fault lasts (kept below `every`).
    pub fn heal_after(mut self, d: Duration) -> Self {
        self.heal_after = d;
        self
    }

    /// The first `steps` steps over `nodes`: the same seed and nodes give the same schedule.
    pub fn schedule(&self, nodes: &[String], steps: usize) -> Vec<NemesisStep> {
        self.draws(nodes)
            .take(steps)
            .filter_map(|(at, action)| {
                Some(NemesisStep {
                    at,
                    action: action?,
                })
            })
            .collect()
    }

    /// The schedule over `nodes`, drawn one step at a time as it is iterated, so a running
    /// nemesis draws only the steps it reaches: each step's time, and its action (`None`: the
    /// fault drawn does not fit these nodes, a partition of one node; nothing happens then).
    /// Endless, unless there is nothing to draw from (no fault or no node).
    pub(crate) fn draws(
        &self,
        nodes: &[String],
    ) -> impl Iterator<Item = (Duration, Option<NemesisAction>)> + Send + 'static {
        let mut rng = SplitMix64::new(self.seed);
        let (faults, nodes, every) = (self.faults.clone(), nodes.to_vec(), self.every);
        let endless = !faults.is_empty() && !nodes.is_empty();
        (0u32..).take_while(move |_| endless).map(move |i| {
            let pick = faults[rng.below(faults.len())].clone();
            let node = nodes[rng.below(nodes.len())].clone();
            let kind = match pick {
                NemesisFault::Kill => return (every * i, Some(NemesisAction::Kill { node })),
                NemesisFault::Partition(shape) => {
                    let shape = match shape {
                        Shape::RandomHalves { .. } => Shape::RandomHalves {
                            seed: rng.next_u64(),
                        },
                        Shape::OneNode { .. } => Shape::OneNode { node },
                        s => s,
                    };
                    match shape.cuts(&nodes) {
                        Ok(cuts) => FaultKind::Partition {
                            shape: shape.to_string(),
                            cuts,
                        },
                        Err(_) => return (every * i, None),
                    }
                }
                NemesisFault::Freeze => FaultKind::Freeze { node },
                NemesisFault::Loss(p) => FaultKind::Impair {
                    node,
                    peer: None,
                    impairment: Impairment::loss(p),
                },
                NemesisFault::Clock(max) => {
                    let span = (max.unsigned_abs().max(1) * 2 + 1) as usize;
                    FaultKind::Clock {
                        node,
                        offset_ms: rng.below(span) as i64 - max.abs(),
                        strobe_ms: None,
                    }
                }
            };
            (every * i, Some(NemesisAction::Fault(kind)))
        })
    }
}

fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let faults = vec![
            NemesisFault::Partition(Shape::RandomHalves { seed: 0 }),
            NemesisFault::Partition(Shape::OneNode {
                node: String::new(),
            }),
            NemesisFault::Partition(Shape::MajoritiesRing),
            NemesisFault::Freeze,
            NemesisFault::Loss(20.0),
            NemesisFault::Clock(5000),
            NemesisFault::Kill,
        ];
        let a = Nemesis::new(faults.clone()).seed(42).schedule(&nodes, 20);
        let b = Nemesis::new(faults.clone()).seed(42).schedule(&nodes, 20);
        let c = Nemesis::new(faults).seed(43).schedule(&nodes, 20);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn steps_that_fit_no_node_are_skipped_not_waited_for() {
        let one = vec!["n1".to_string()];
        let partitions = Nemesis::new(vec![NemesisFault::Partition(Shape::Halves)]).seed(7);
        assert!(partitions.schedule(&one, 10).is_empty());
        // Drawn lazily, a schedule is as long as asked, whatever it is asked for.
        let kills = Nemesis::new(vec![NemesisFault::Kill]).seed(7);
        let steps = kills.schedule(&one, 3);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].at, kills.every * 2);
        assert!(Nemesis::new(vec![]).schedule(&one, 3).is_empty());
    }

    #[test]
    fn splitmix_is_stable() {
        // Published SplitMix64 output for seed 0: a replayed seed must never change meaning.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
