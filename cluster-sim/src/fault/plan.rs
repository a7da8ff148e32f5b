//! What a set of active faults means for one node's network: addresses to drop each way,
//! loss rules, and the shaping of packets to each peer.

use std::collections::{BTreeMap, BTreeSet};

use super::error::FaultError;
use super::types::{ActiveFault, Direction, FaultKind, Impairment};
use crate::backend::types::NodeAddr;

/// Random loss on packets to or from some peers.
#[derive(Debug, Clone, PartialEq)]
pub struct LossRule {
    /// Which way.
    pub direction: Direction,
    /// Peer addresses it applies to.
    pub peers: Vec<String>,
    /// Per ten thousand, so 0.01% steps survive.
    pub per_10k: u32,
}

/// One node's whole network state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePlan {
    /// Addresses whose packets to this node are dropped.
    pub drop_in: BTreeSet<String>,
    /// Addresses this node's packets to are dropped.
    pub drop_out: BTreeSet<String>,
    /// Loss rules.
    pub loss: Vec<LossRule>,
    /// Outbound shaping by peer address.
    pub shape: BTreeMap<String, Impairment>,
}

impl NodePlan {
    /// Whether the node needs no rules at all.
    pub fn is_empty(&self) -> bool {
        self.drop_in.is_empty()
            && self.drop_out.is_empty()
            && self.loss.is_empty()
            && self.shape.is_empty()
    }

    /// Whether the node needs nftables rules (drops or loss).
    pub fn has_filter(&self) -> bool {
        !self.drop_in.is_empty() || !self.drop_out.is_empty() || !self.loss.is_empty()
    }

    /// Whether any shaping needs netem.
    pub fn needs_netem(&self) -> bool {
        self.shape.values().any(Impairment::needs_netem)
    }
}

/// The plan of `node` under `faults`, with node names resolved through `addrs`.
pub fn node_plan(
    node: &str,
    faults: &[ActiveFault],
    addrs: &[NodeAddr],
) -> Result<NodePlan, FaultError> {
    let addr = |n: &str| {
        addrs
            .iter()
            .find(|a| a.name == n)
            .map(|a| a.address.clone())
            .ok_or_else(|| FaultError::UnknownNode(n.to_string()))
    };
    let others: Vec<String> = addrs
        .iter()
        .filter(|a| a.name != node)
        .map(|a| a.address.clone())
        .collect();
    let mut plan = NodePlan::default();
    for f in faults {
        match &f.kind {
            FaultKind::Partition { cuts, .. } => {
                for (from, to) in &cuts.0 {
                    if from == node {
                        plan.drop_out.insert(addr(to)?);
                    }
                    if to == node {
                        plan.drop_in.insert(addr(from)?);
                    }
                }
            }
            FaultKind::Impair {
                node: n,
                peer,
                impairment,
            } if n == node => {
                let peers = match peer {
                    Some(p) => vec![addr(p)?],
                    None => others.clone(),
                };
                if let Some(p) = impairment.loss {
                    plan.loss.push(LossRule {
                        direction: impairment.dir(),
                        peers: peers.clone(),
                        per_10k: (p * 100.0).round() as u32,
                    });
                }
                let shaping = Impairment {
                    loss: None,
                    ..impairment.clone()
                };
                // Inbound shaping is done by the senders (next arm): tc shapes only what a
                // node sends, and an ifb device would need a module the kernel may lack.
                if (shaping.rate.is_some() || shaping.needs_netem())
                    && impairment.dir() == Direction::Out
                {
                    for p in peers {
                        let merged = plan.shape.entry(p).or_default();
                        merge(merged, &shaping);
                    }
                }
            }
            // Packets `n` receives from this node, slowed on their way out of this node.
            FaultKind::Impair {
                node: n,
                peer,
                impairment,
            } if impairment.dir() == Direction::In && peer.as_deref().is_none_or(|p| p == node) => {
                let shaping = Impairment {
                    loss: None,
                    direction: None,
                    ..impairment.clone()
                };
                if shaping.rate.is_some() || shaping.needs_netem() {
                    merge(plan.shape.entry(addr(n)?).or_default(), &shaping);
                }
            }
            _ => {}
        }
    }
    Ok(plan)
}

/// Later fields win; unset fields keep what earlier impairments set.
fn merge(into: &mut Impairment, from: &Impairment) {
    if from.rate.is_some() {
        into.rate.clone_from(&from.rate);
    }
    if from.latency.is_some() {
        into.latency = from.latency;
    }
    if from.jitter.is_some() {
        into.jitter = from.jitter;
    }
    if from.duplicate.is_some() {
        into.duplicate = from.duplicate;
    }
    if from.corrupt.is_some() {
        into.corrupt = from.corrupt;
    }
    if from.reorder.is_some() {
        into.reorder = from.reorder;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::types::Cuts;

    fn addrs() -> Vec<NodeAddr> {
        (1..=3)
            .map(|i| NodeAddr {
                name: format!("n{i}"),
                address: format!("10.0.0.{i}"),
                workdir: "/w".into(),
            })
            .collect()
    }

    fn fault(id: u64, kind: FaultKind) -> ActiveFault {
        ActiveFault {
            id,
            since_ms: 0,
            kind,
        }
    }

    #[test]
    fn oneway_drops_on_both_ends_in_one_direction() {
        let f = [fault(
            1,
            FaultKind::Partition {
                shape: "n1 -> n2".into(),
                cuts: Cuts::oneway("n1", "n2").unwrap(),
            },
        )];
        let p1 = node_plan("n1", &f, &addrs()).unwrap();
        assert_eq!(p1.drop_out, BTreeSet::from(["10.0.0.2".to_string()]));
        assert!(p1.drop_in.is_empty());
        let p2 = node_plan("n2", &f, &addrs()).unwrap();
        assert_eq!(p2.drop_in, BTreeSet::from(["10.0.0.1".to_string()]));
        assert!(p2.drop_out.is_empty());
        assert!(node_plan("n3", &f, &addrs()).unwrap().is_empty());
    }

    #[test]
    fn impairments_stack_and_target_peers_only() {
        let f = [
            fault(
                1,
                FaultKind::Impair {
                    node: "n1".into(),
                    peer: None,
                    impairment: Impairment::rate("1mbit").with_loss(30.0),
                },
            ),
            fault(
                2,
                FaultKind::Impair {
                    node: "n1".into(),
                    peer: Some("n2".into()),
                    impairment: Impairment::rate("2mbit"),
                },
            ),
        ];
        let p = node_plan("n1", &f, &addrs()).unwrap();
        assert_eq!(p.loss.len(), 1);
        assert_eq!(p.loss[0].per_10k, 3000);
        assert_eq!(p.loss[0].peers, vec!["10.0.0.2", "10.0.0.3"]);
        assert_eq!(p.shape["10.0.0.2"].rate.as_deref(), Some("2mbit"));
        assert_eq!(p.shape["10.0.0.3"].rate.as_deref(), Some("1mbit"));
        let inbound = [fault(
            3,
            FaultKind::Impair {
                node: "n1".into(),
                peer: None,
                impairment: Impairment::rate("1mbit").inbound(),
            },
        )];
        // Shaping what n1 receives is shaping what the others send to n1.
        assert!(node_plan("n1", &inbound, &addrs()).unwrap().is_empty());
        for peer in ["n2", "n3"] {
            let p = node_plan(peer, &inbound, &addrs()).unwrap();
            assert_eq!(p.shape.len(), 1, "{peer}: {p:?}");
            assert_eq!(p.shape["10.0.0.1"].rate.as_deref(), Some("1mbit"));
        }
        let one_peer = [fault(
            4,
            FaultKind::Impair {
                node: "n1".into(),
                peer: Some("n3".into()),
                impairment: Impairment::latency(std::time::Duration::from_millis(50))
                    .with_loss(10.0)
                    .inbound(),
            },
        )];
        let p1 = node_plan("n1", &one_peer, &addrs()).unwrap();
        assert!(p1.shape.is_empty());
        assert_eq!(p1.loss[0].direction, Direction::In);
        assert_eq!(p1.loss[0].peers, vec!["10.0.0.3"]);
        assert!(node_plan("n2", &one_peer, &addrs()).unwrap().is_empty());
        let p3 = node_plan("n3", &one_peer, &addrs()).unwrap();
        assert!(p3.loss.is_empty());
        assert_eq!(
            p3.shape["10.0.0.1"].latency,
            Some(std::time::Duration::from_millis(50))
        );
    }
}
