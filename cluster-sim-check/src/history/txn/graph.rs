//! The dependency graph between transactions: ww, wr and rw edges inferred from what they wrote
//! and read, real-time edges from when they ran, stored as compressed adjacency lists (each
//! edge a target and a bit set of kinds), and its strongly connected components (Tarjan).
//!
//! A graph of a million transactions has some ten million edges, so it is built from a flat
//! edge list by counting sort, never a map per node.

use super::txns::Txns;
use crate::history::OpType;

/// Edge kinds, as bits: an edge between two transactions may be of several kinds at once.
pub(crate) const WW: u8 = 1;
pub(crate) const WR: u8 = 2;
pub(crate) const RW: u8 = 4;
/// Real time: the first completed before the second was invoked.
pub(crate) const RT: u8 = 8;

/// The kinds one at a time, in the order explanations prefer them (data edges first).
pub(crate) const KINDS: [u8; 4] = [WW, WR, RW, RT];

pub(crate) fn kind_name(k: u8) -> &'static str {
    match k {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        _ => "rt",
    }
}

/// Edges as they are inferred, before the graph is built.
#[derive(Debug, Default)]
pub(crate) struct Edges(pub(crate) Vec<(u32, u32, u8)>);

impl Edges {
    /// Adds `from -kind-> to`; an edge from a transaction to itself says nothing and is dropped.
    pub(crate) fn add(&mut self, from: u32, to: u32, kind: u8) {
        if from != to {
            self.0.push((from, to, kind));
        }
    }
}

/// Adjacency lists over transactions `0..n`.
#[derive(Debug)]
pub(crate) struct Graph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    kinds: Vec<u8>,
}

impl Graph {
    /// Builds the graph of `n` nodes, merging parallel edges into one with both kinds.
    pub(crate) fn build(n: usize, edges: Edges) -> Graph {
        let mut edges = edges.0;
        // The list grew by doubling; the adjacency lists are built beside it.
        edges.shrink_to_fit();
        let mut offsets = vec![0u32; n + 1];
        for &(from, _, _) in &edges {
            offsets[from as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; edges.len()];
        let mut kinds = vec![0u8; edges.len()];
        for (from, to, kind) in edges {
            let at = &mut fill[from as usize];
            targets[*at as usize] = to;
            kinds[*at as usize] = kind;
            *at += 1;
        }
        // Sort each node's few edges by target and merge duplicates, compacting in place.
        let mut out = 0usize;
        let mut scratch: Vec<(u32, u8)> = Vec::new();
        let mut start = 0usize;
        for node in 0..n {
            let end = offsets[node + 1] as usize;
            scratch.clear();
            scratch.extend((start..end).map(|i| (targets[i], kinds[i])));
            scratch.sort_unstable_by_key(|&(t, _)| t);
            offsets[node] = out as u32;
            for &(t, k) in &scratch {
                if out > offsets[node] as usize && targets[out - 1] == t {
                    kinds[out - 1] |= k;
                } else {
                    targets[out] = t;
                    kinds[out] = k;
                    out += 1;
                }
            }
            start = end;
        }
        offsets[n] = out as u32;
        targets.truncate(out);
        kinds.truncate(out);
        targets.shrink_to_fit();
        kinds.shrink_to_fit();
        Graph {
            offsets,
            targets,
            kinds,
        }
    }

    pub(crate) fn nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// `node`'s out-edges: (target, kinds).
    pub(crate) fn out(&self, node: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let r = self.offsets[node as usize] as usize..self.offsets[node as usize + 1] as usize;
        self.targets[r.clone()]
            .iter()
            .copied()
            .zip(self.kinds[r].iter().copied())
    }

    /// The kinds of the edge `a -> b` (0: none).
    #[cfg(test)]
    pub(crate) fn kinds(&self, a: u32, b: u32) -> u8 {
        let r = self.offsets[a as usize] as usize..self.offsets[a as usize + 1] as usize;
        match self.targets[r.clone()].binary_search(&b) {
            Ok(i) => self.kinds[r.start + i],
            Err(_) => 0,
        }
    }
}

/// Real-time edges: `a -rt-> b` when `a` completed before `b` was invoked. Only the edges that
/// aren't implied by others are added (Elle does the same): when `b` is invoked it gets an edge
/// from each transaction on the frontier, the completed ones that no later-completed one
/// follows; a transaction that completes removes from the frontier those that completed before
/// it was invoked, since it now stands between them and everything invoked later. The frontier
/// holds about one transaction per process, so this is linear in the history.
pub(crate) fn realtime_edges(txns: &Txns, edges: &mut Edges) {
    // (time, invoke before completion at the same instant, txn): a transaction that completes
    // at the very moment another is invoked is concurrent with it, not before it.
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(txns.len() * 2);
    for (i, t) in txns.txns.iter().enumerate() {
        if t.outcome == OpType::Fail {
            continue;
        }
        events.push((t.start, false, i as u32));
        if let (OpType::Ok, Some(end)) = (t.outcome, t.end) {
            events.push((end, true, i as u32));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    for (_, completes, t) in events {
        if completes {
            let start = txns.txn(t).start;
            frontier.retain(|&f| txns.txn(f).end.is_some_and(|e| e >= start));
            frontier.push(t);
        } else {
            for &f in &frontier {
                edges.add(f, t, RT);
            }
        }
    }
}

/// Strongly connected components with more than one node (a cycle needs two transactions:
/// there are no self-edges), each sorted, in order of their smallest node. Tarjan's algorithm
/// with an explicit stack: a million nodes would overflow a recursive one.
pub(crate) fn components(g: &Graph) -> Vec<Vec<u32>> {
    const UNSEEN: u32 = u32::MAX;
    let n = g.nodes();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    // (node, position in its adjacency list)
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        calls.push((root, g.offsets[root as usize]));
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut at)) = calls.last_mut() {
            let end = g.offsets[v as usize + 1];
            if *at < end {
                let w = g.targets[*at as usize];
                *at += 1;
                if index[w as usize] == UNSEEN {
                    index[w as usize] = next;
                    low[w as usize] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    calls.push((w, g.offsets[w as usize]));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out.sort_unstable_by_key(|c| c[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, e: &[(u32, u32, u8)]) -> Graph {
        let mut edges = Edges::default();
        for &(a, b, k) in e {
            edges.add(a, b, k);
        }
        Graph::build(n, edges)
    }

    #[test]
    fn parallel_edges_merge_and_self_edges_vanish() {
        let g = graph(
            3,
            &[(0, 1, WW), (0, 1, RW), (1, 1, WR), (2, 0, WR), (0, 2, RT)],
        );
        assert_eq!(g.edge_count(), 3);
        assert_eq!(g.kinds(0, 1), WW | RW);
        assert_eq!(g.kinds(1, 0), 0);
        assert_eq!(g.out(0).collect::<Vec<_>>(), vec![(1, WW | RW), (2, RT)]);
    }

    #[test]
    fn components_are_the_cycles() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 -> 4 -> 3 another; 5 hangs off the first.
        let g = graph(
            6,
            &[
                (0, 1, WW),
                (1, 2, WW),
                (2, 0, RW),
                (2, 5, WR),
                (3, 4, WR),
                (4, 3, WR),
            ],
        );
        assert_eq!(components(&g), vec![vec![0, 1, 2], vec![3, 4]]);
        let acyclic = graph(4, &[(0, 1, WW), (1, 2, WW), (0, 3, RW), (3, 2, RT)]);
        assert!(components(&acyclic).is_empty());
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 200_000u32;
        let mut e: Vec<(u32, u32, u8)> = (0..n - 1).map(|i| (i, i + 1, WW)).collect();
        e.push((n - 1, 0, RW));
        let g = graph(n as usize, &e);
        let c = components(&g);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), n as usize);
    }
}
