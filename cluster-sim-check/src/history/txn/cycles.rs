//! Cycles in the dependency graph, one shortest cycle of each kind per strongly connected
//! component, named as Adya and Elle name them.
//!
//! Each kind is a search specification, as in Elle's `cycle-anomaly-specs`: the kind of the
//! edge the cycle starts with, the kinds it may continue through, and what it must have used by
//! the time it is back (another rw edge, a real-time edge, no two rw edges in a row). A
//! breadth-first search over (transaction, what the path has used so far) from each starting
//! edge finds the shortest such cycle through it; the shortest over the starting edges is kept.
//! Real-time variants are searched for only in a component with no cycle of data edges alone,
//! since those already rule out every model a real-time one would.

use super::anomaly::Anomaly;
use super::graph::{Graph, KINDS, RT, RW, WR, WW};

/// How a cycle of one anomaly is shaped.
#[derive(Debug, Clone, Copy)]
struct Spec {
    anomaly: Anomaly,
    /// The kind of the edge the search starts from.
    start: u8,
    /// The kinds the rest of the cycle may use.
    path: u8,
    /// At least one rw edge besides the starting one.
    more_rw: bool,
    /// No two rw edges in a row (the starting edge is rw).
    nonadjacent: bool,
    /// At least one real-time edge.
    realtime: bool,
}

const fn spec(anomaly: Anomaly, start: u8, path: u8, more_rw: bool, realtime: bool) -> Spec {
    Spec {
        anomaly,
        start,
        path,
        more_rw,
        nonadjacent: false,
        realtime,
    }
}

/// Cycles of data dependencies alone, worst first.
const DATA: [Spec; 5] = [
    spec(Anomaly::G0, WW, WW, false, false),
    spec(Anomaly::G1c, WR, WW | WR, false, false),
    spec(Anomaly::GSingle, RW, WW | WR, false, false),
    Spec {
        nonadjacent: true,
        ..spec(Anomaly::GNonadjacent, RW, WW | WR | RW, true, false)
    },
    spec(Anomaly::G2Item, RW, WW | WR | RW, true, false),
];

/// Cycles that need real-time order.
const REALTIME: [Spec; 4] = [
    spec(Anomaly::G0Realtime, WW, WW | RT, false, true),
    spec(Anomaly::G1cRealtime, WR, WW | WR | RT, false, true),
    spec(Anomaly::GSingleRealtime, RW, WW | WR | RT, false, true),
    spec(Anomaly::G2ItemRealtime, RW, WW | WR | RW | RT, true, true),
];

/// What the path has used so far, as bits.
const MORE_RW: u8 = 1;
const LAST_RW: u8 = 2;
const SAW_RT: u8 = 4;
const STATES: usize = 8;

/// Starting edges tried per kind and component, and edges a search may look at before it
/// stops trying further ones: enough to try every edge of any component a real database
/// produces by accident, and to stay linear on a pathological one (a component of a hundred
/// thousand transactions).
const MAX_STARTS: usize = 512;
const BUDGET: usize = 4_000_000;

impl Spec {
    fn step(&self, state: u8, kind: u8) -> Option<u8> {
        match kind {
            RW if self.nonadjacent && state & LAST_RW != 0 => None,
            RW => Some(state | MORE_RW | LAST_RW),
            RT => Some((state & !LAST_RW) | SAW_RT),
            _ => Some(state & !LAST_RW),
        }
    }

    fn accepts(&self, state: u8) -> bool {
        (!self.more_rw || state & MORE_RW != 0)
            && (!self.nonadjacent || state & LAST_RW == 0)
            && (!self.realtime || state & SAW_RT != 0)
    }
}

/// A cycle: `txns[i] -edges[i]-> txns[i + 1]`, the last edge back to `txns[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cycle {
    pub(crate) anomaly: Anomaly,
    pub(crate) txns: Vec<u32>,
    pub(crate) edges: Vec<u8>,
}

/// The cycles found, and whether some search stopped at its budget (so a kind of cycle may
/// have gone unreported in a very large component).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) cycles: Vec<Cycle>,
    pub(crate) cut_short: bool,
}

/// Searches every component of `g` for cycles of each kind.
pub(crate) fn find(g: &Graph, components: &[Vec<u32>]) -> Found {
    let mut s = Searcher::new(g.nodes(), components.iter().map(Vec::len).max());
    let mut found = Found::default();
    for comp in components {
        s.enter(comp);
        let mut here: Vec<Anomaly> = Vec::new();
        for spec in &DATA {
            // A non-adjacent cycle is also G2-item: report the more telling name once.
            if spec.anomaly == Anomaly::G2Item && here.contains(&Anomaly::GNonadjacent) {
                continue;
            }
            if let Some(c) = s.shortest(g, spec, &mut found.cut_short) {
                here.push(c.anomaly);
                found.cycles.push(c);
            }
        }
        if here.is_empty() {
            for spec in &REALTIME {
                if let Some(c) = s.shortest(g, spec, &mut found.cut_short) {
                    found.cycles.push(c);
                }
            }
        }
        s.leave();
    }
    found
}

const NONE: u32 = u32::MAX;

/// Reusable search state: the current component (position to node and back), and per
/// (position, state) the search generation that reached it and how.
struct Searcher {
    local: Vec<u32>,
    order: Vec<u32>,
    seen: Vec<u32>,
    parent: Vec<u32>,
    via: Vec<u8>,
    generation: u32,
    queue: std::collections::VecDeque<u32>,
}

impl Searcher {
    fn new(nodes: usize, largest: Option<usize>) -> Self {
        let states = largest.unwrap_or(0) * STATES;
        Searcher {
            local: vec![NONE; nodes],
            order: Vec::new(),
            seen: vec![0; states],
            parent: vec![0; states],
            via: vec![0; states],
            generation: 0,
            queue: Default::default(),
        }
    }

    fn enter(&mut self, comp: &[u32]) {
        for (i, &node) in comp.iter().enumerate() {
            self.local[node as usize] = i as u32;
        }
        self.order.clear();
        self.order.extend_from_slice(comp);
    }

    fn leave(&mut self) {
        for &node in &self.order {
            self.local[node as usize] = NONE;
        }
    }

    fn at(&self, node: u32, state: u8) -> usize {
        self.local[node as usize] as usize * STATES + state as usize
    }

    /// The shortest cycle of `spec`'s kind in the current component, over the starting edges
    /// tried.
    fn shortest(&mut self, g: &Graph, spec: &Spec, cut_short: &mut bool) -> Option<Cycle> {
        let mut best: Option<Cycle> = None;
        let mut work = 0usize;
        let mut starts = 0usize;
        for i in 0..self.order.len() {
            let a = self.order[i];
            for (b, kinds) in g.out(a) {
                if kinds & spec.start == 0 || self.local[b as usize] == NONE {
                    continue;
                }
                if starts == MAX_STARTS || work > BUDGET {
                    // A cycle found may not be the shortest, which is no matter; none found
                    // means one may still be there.
                    *cut_short |= best.is_none();
                    return best;
                }
                starts += 1;
                if let Some(c) = self.through_edge(g, a, b, spec, &mut work) {
                    if best.as_ref().is_none_or(|b| c.txns.len() < b.txns.len()) {
                        best = Some(c);
                    }
                    // Two transactions is as short as a cycle gets.
                    if best.as_ref().is_some_and(|b| b.txns.len() == 2) {
                        return best;
                    }
                }
            }
        }
        best
    }

    /// The shortest cycle of `spec`'s kind that starts with the edge `a -> b`, as a simple
    /// cycle (no transaction twice), if the search finds one.
    fn through_edge(
        &mut self,
        g: &Graph,
        a: u32,
        b: u32,
        spec: &Spec,
        work: &mut usize,
    ) -> Option<Cycle> {
        self.generation += 1;
        let generation = self.generation;
        let first = if spec.start == RW { LAST_RW } else { 0 };
        let origin = self.at(b, first);
        self.seen[origin] = generation;
        self.queue.clear();
        self.queue.push_back(origin as u32);
        while let Some(cur) = self.queue.pop_front() {
            let (pos, state) = (cur as usize / STATES, (cur as usize % STATES) as u8);
            let node = self.order[pos];
            for (next, kinds) in g.out(node) {
                *work += 1;
                if self.local[next as usize] == NONE {
                    continue;
                }
                for kind in KINDS {
                    if kinds & kind & spec.path == 0 {
                        continue;
                    }
                    let Some(s) = spec.step(state, kind) else {
                        continue;
                    };
                    let to = self.at(next, s);
                    if self.seen[to] == generation {
                        continue;
                    }
                    self.seen[to] = generation;
                    self.parent[to] = cur;
                    self.via[to] = kind;
                    if next == a {
                        if spec.accepts(s) {
                            return self.cycle(to, origin, a, spec);
                        }
                        // The cycle closes at `a`: going on from it would repeat it.
                        continue;
                    }
                    self.queue.push_back(to as u32);
                }
            }
        }
        None
    }

    /// The cycle the search reached at `end`, from `a` through the start edge to `origin` and
    /// on; `None` when it passes a transaction twice (in two states of the search), since
    /// such a walk may split into cycles of other kinds.
    fn cycle(&self, end: usize, origin: usize, a: u32, spec: &Spec) -> Option<Cycle> {
        let mut back = Vec::new();
        let mut cur = end;
        while cur != origin {
            back.push((self.order[cur / STATES], self.via[cur]));
            cur = self.parent[cur] as usize;
        }
        let mut txns = vec![a, self.order[origin / STATES]];
        let mut edges = vec![spec.start];
        // `back` runs from `a` back towards `b`.
        for &(node, kind) in back.iter().rev() {
            edges.push(kind);
            if node != a {
                txns.push(node);
            }
        }
        let mut distinct = txns.clone();
        distinct.sort_unstable();
        distinct.dedup();
        (distinct.len() == txns.len()).then_some(Cycle {
            anomaly: spec.anomaly,
            txns,
            edges,
        })
    }
}

/// The anomaly a cycle's edges make it, whatever search found it (for checking the searches).
#[cfg(test)]
pub(crate) fn classify(edges: &[u8]) -> Anomaly {
    let rw = edges.iter().filter(|&&k| k == RW).count();
    let rt = edges.contains(&RT);
    let wr = edges.contains(&WR);
    match (rw, wr, rt) {
        (0, false, false) => Anomaly::G0,
        (0, true, false) => Anomaly::G1c,
        (1, _, false) => Anomaly::GSingle,
        (_, _, false) => Anomaly::G2Item,
        (0, false, true) => Anomaly::G0Realtime,
        (0, true, true) => Anomaly::G1cRealtime,
        (1, _, true) => Anomaly::GSingleRealtime,
        (_, _, true) => Anomaly::G2ItemRealtime,
    }
}

#[cfg(test)]
mod tests {
    use super::super::graph::{components, Edges};
    use super::*;

    fn cycles(n: usize, e: &[(u32, u32, u8)]) -> Vec<Cycle> {
        let mut edges = Edges::default();
        for &(a, b, k) in e {
            edges.add(a, b, k);
        }
        let g = Graph::build(n, edges);
        let found = find(&g, &components(&g));
        assert!(!found.cut_short);
        for c in &found.cycles {
            let expected = match classify(&c.edges) {
                Anomaly::G2Item if c.anomaly == Anomaly::GNonadjacent => Anomaly::GNonadjacent,
                other => other,
            };
            assert_eq!(c.anomaly, expected, "{c:?}");
            assert_eq!(c.txns.len(), c.edges.len());
            for (i, &k) in c.edges.iter().enumerate() {
                let (x, y) = (c.txns[i], c.txns[(i + 1) % c.txns.len()]);
                assert_ne!(g.kinds(x, y) & k, 0, "{c:?}: no {k} edge {x} -> {y}");
            }
        }
        found.cycles
    }

    fn named(c: &[Cycle]) -> Vec<(&'static str, Vec<u32>)> {
        c.iter()
            .map(|c| (c.anomaly.name(), c.txns.clone()))
            .collect()
    }

    #[test]
    fn each_kind_of_cycle_is_named() {
        assert_eq!(
            named(&cycles(2, &[(0, 1, WW), (1, 0, WW)])),
            [("G0", vec![0, 1])]
        );
        assert_eq!(
            named(&cycles(2, &[(0, 1, WW), (1, 0, WR)])),
            [("G1c", vec![1, 0])]
        );
        assert_eq!(
            named(&cycles(2, &[(0, 1, WR), (1, 0, RW)])),
            [("G-single", vec![1, 0])]
        );
        assert_eq!(
            named(&cycles(2, &[(0, 1, RW), (1, 0, RW)])),
            [("G2-item", vec![0, 1])]
        );
        // rw, ww, rw, ww: two anti-dependencies, never adjacent.
        assert_eq!(
            named(&cycles(
                4,
                &[(0, 1, RW), (1, 2, WW), (2, 3, RW), (3, 0, WW)]
            )),
            [("G-nonadjacent", vec![0, 1, 2, 3])]
        );
        // Real time closes the cycle: the read did not see a write completed before it began.
        assert_eq!(
            named(&cycles(2, &[(0, 1, RT), (1, 0, RW)])),
            [("G-single-realtime", vec![1, 0])]
        );
    }

    #[test]
    fn a_component_reports_the_shortest_cycle_of_each_kind() {
        // A long G0 (0 -> 1 -> 2 -> 3 -> 0) and a short one (2 -> 3 -> 2), plus a G1c through
        // 1 and 2, in one component.
        let c = cycles(
            4,
            &[
                (0, 1, WW),
                (1, 2, WW),
                (2, 3, WW),
                (3, 0, WW),
                (3, 2, WW),
                (2, 1, WR),
            ],
        );
        assert_eq!(named(&c), [("G0", vec![2, 3]), ("G1c", vec![2, 1])]);
        // Real-time cycles are not searched where data edges alone make one.
        let c = cycles(3, &[(0, 1, WW), (1, 0, WW), (1, 2, RT), (2, 1, RW)]);
        assert_eq!(named(&c), [("G0", vec![0, 1])]);
    }

    #[test]
    fn an_edge_of_two_kinds_serves_either() {
        // 0 -> 1 is both ww and rw: with 1 -> 0 wr that is a G1c and a G-single.
        let c = cycles(2, &[(0, 1, WW), (0, 1, RW), (1, 0, WR)]);
        assert_eq!(named(&c), [("G1c", vec![1, 0]), ("G-single", vec![0, 1])]);
    }
}
