//! Anomalies by the names the literature gives them (Adya's G0 to G2-item, Elle's lost update,
//! internal, incompatible order and the others), the consistency models each one rules out, and
//! one anomaly as found: the transactions involved and the sentences that prove it.
//!
//! Which anomaly rules out which model follows Elle's `consistency-model` namespace (after Adya,
//! Bailis, Cerone and others): a model is ruled out when it proscribes the anomaly or one the
//! anomaly implies.

use std::fmt;

/// An anomaly the transactional checkers find, named as Adya and Elle name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anomaly {
    /// A cycle of write-write dependencies: transactions overwrote each other (dirty write).
    G0,
    /// A committed transaction read a value written by one that failed (aborted read).
    G1a,
    /// A committed transaction read a value its writer later overwrote in the same transaction
    /// (intermediate read).
    G1b,
    /// A cycle of write-write and write-read dependencies with at least one write-read
    /// (circular information flow).
    G1c,
    /// A cycle with exactly one read-write anti-dependency (read skew).
    GSingle,
    /// A cycle with two or more anti-dependencies, no two of them adjacent.
    GNonadjacent,
    /// A cycle with two or more anti-dependencies (write skew).
    G2Item,
    /// G0 once real-time order is added.
    G0Realtime,
    /// G1c once real-time order is added.
    G1cRealtime,
    /// G-single once real-time order is added: a stale read, for instance.
    GSingleRealtime,
    /// G2-item once real-time order is added.
    G2ItemRealtime,
    /// Two committed transactions read the same version of a key and both wrote it.
    LostUpdate,
    /// A read disagrees with its own transaction's earlier read or write of the key.
    Internal,
    /// A read observed a value its own transaction writes only later.
    FutureRead,
    /// A list read holds the same appended element twice.
    DuplicateElements,
    /// Two reads of a list where neither is a prefix of the other: no single order of appends
    /// gives both.
    IncompatibleOrder,
    /// A read of a value that no transaction wrote.
    GarbageRead,
}

/// The consistency models a report rules in or out, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Consistency {
    /// Serializable, and the order respects real time.
    StrictSerializable,
    /// Some serial order of the committed transactions explains every read (Adya PL-3).
    Serializable,
    /// Reads from a snapshot, no write-write conflicts between concurrent transactions.
    SnapshotIsolation,
    /// Adya's PL-2.99: no G1 and no G2-item.
    RepeatableRead,
    /// Adya's PL-2: no G1.
    ReadCommitted,
    /// Adya's PL-1: no G0.
    ReadUncommitted,
}

impl Consistency {
    /// Every model, strongest first.
    pub const ALL: [Consistency; 6] = [
        Consistency::StrictSerializable,
        Consistency::Serializable,
        Consistency::SnapshotIsolation,
        Consistency::RepeatableRead,
        Consistency::ReadCommitted,
        Consistency::ReadUncommitted,
    ];

    /// The model's name, as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::StrictSerializable => "strict serializable",
            Consistency::Serializable => "serializable",
            Consistency::SnapshotIsolation => "snapshot isolation",
            Consistency::RepeatableRead => "repeatable read",
            Consistency::ReadCommitted => "read committed",
            Consistency::ReadUncommitted => "read uncommitted",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use Consistency::{
    ReadCommitted as RC, ReadUncommitted as RU, RepeatableRead as RR, Serializable as SER,
    SnapshotIsolation as SI, StrictSerializable as SSER,
};

impl Anomaly {
    /// The name Elle reports it under.
    pub fn name(self) -> &'static str {
        match self {
            Anomaly::G0 => "G0",
            Anomaly::G1a => "G1a",
            Anomaly::G1b => "G1b",
            Anomaly::G1c => "G1c",
            Anomaly::GSingle => "G-single",
            Anomaly::GNonadjacent => "G-nonadjacent",
            Anomaly::G2Item => "G2-item",
            Anomaly::G0Realtime => "G0-realtime",
            Anomaly::G1cRealtime => "G1c-realtime",
            Anomaly::GSingleRealtime => "G-single-realtime",
            Anomaly::G2ItemRealtime => "G2-item-realtime",
            Anomaly::LostUpdate => "lost-update",
            Anomaly::Internal => "internal",
            Anomaly::FutureRead => "future-read",
            Anomaly::DuplicateElements => "duplicate-elements",
            Anomaly::IncompatibleOrder => "incompatible-order",
            Anomaly::GarbageRead => "garbage-read",
        }
    }

    /// What it is, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            Anomaly::G0 => "write cycle",
            Anomaly::G1a => "aborted read",
            Anomaly::G1b => "intermediate read",
            Anomaly::G1c => "circular information flow",
            Anomaly::GSingle => "read skew: a cycle with one anti-dependency",
            Anomaly::GNonadjacent => "a cycle of non-adjacent anti-dependencies",
            Anomaly::G2Item => "anti-dependency cycle",
            Anomaly::G0Realtime => "write cycle with real-time order",
            Anomaly::G1cRealtime => "circular information flow with real-time order",
            Anomaly::GSingleRealtime => "one anti-dependency against real-time order",
            Anomaly::G2ItemRealtime => "anti-dependency cycle with real-time order",
            Anomaly::LostUpdate => "lost update",
            Anomaly::Internal => "internal inconsistency",
            Anomaly::FutureRead => "a read of the transaction's own later write",
            Anomaly::DuplicateElements => "duplicate read: an element twice in one list",
            Anomaly::IncompatibleOrder => "impossible reads: incompatible orders of one list",
            Anomaly::GarbageRead => "a read of a value never written",
        }
    }

    /// The consistency models this anomaly rules out.
    pub fn rules_out(self) -> &'static [Consistency] {
        match self {
            // Proscribed by read uncommitted (Adya PL-1), so by everything stronger; a
            // duplicate or a value from nowhere fits no version order at all.
            Anomaly::G0 | Anomaly::DuplicateElements | Anomaly::GarbageRead => {
                &[SSER, SER, SI, RR, RC, RU]
            }
            // G1 (and what implies it) is proscribed by read committed (PL-2) and up.
            Anomaly::G1a
            | Anomaly::G1b
            | Anomaly::G1c
            | Anomaly::IncompatibleOrder
            | Anomaly::FutureRead => &[SSER, SER, SI, RR, RC],
            // Proscribed by consistent view (implied by SI) and by PL-2.99's ban on G2-item.
            Anomaly::GSingle | Anomaly::GNonadjacent => &[SSER, SER, SI, RR],
            // Cursor stability and up proscribe lost update: RR, SI and serializability.
            Anomaly::LostUpdate => &[SSER, SER, SI, RR],
            // Write skew: snapshot isolation allows it.
            Anomaly::G2Item => &[SSER, SER, RR],
            // Cerone et al.'s INT axiom, required by SI and serializability.
            Anomaly::Internal => &[SSER, SER, SI],
            Anomaly::G0Realtime
            | Anomaly::G1cRealtime
            | Anomaly::GSingleRealtime
            | Anomaly::G2ItemRealtime => &[SSER],
        }
    }

    /// Whether it is a dependency cycle (drawn by `--svg`).
    pub fn is_cycle(self) -> bool {
        matches!(
            self,
            Anomaly::G0
                | Anomaly::G1c
                | Anomaly::GSingle
                | Anomaly::GNonadjacent
                | Anomaly::G2Item
                | Anomaly::G0Realtime
                | Anomaly::G1cRealtime
                | Anomaly::GSingleRealtime
                | Anomaly::G2ItemRealtime
        )
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly as found: the transactions involved (named T1, T2, ... in this order in the
/// explanation), and the sentences that prove it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) anomaly: Anomaly,
    pub(crate) txns: Vec<u32>,
    /// For a cycle: the kind of each edge, from `txns[i]` to `txns[i + 1]` (and the last back
    /// to the first).
    pub(crate) edges: Vec<u8>,
    pub(crate) lines: Vec<String>,
}

impl Found {
    pub(crate) fn new(anomaly: Anomaly, txns: Vec<u32>, line: String) -> Self {
        Found {
            anomaly,
            txns,
            edges: Vec::new(),
            lines: vec![line],
        }
    }
}

/// How many anomalies of one kind are kept with their explanation; the rest are only counted.
pub(crate) const KEPT_PER_KIND: usize = 10;

/// Anomalies as the checker finds them: every one counted, the first few of each kind kept.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) kept: Vec<Found>,
    pub(crate) counts: std::collections::BTreeMap<Anomaly, usize>,
}

impl Findings {
    /// Counts one `anomaly`, and keeps its explanation (built only then) if few of its kind
    /// are kept so far.
    pub(crate) fn add(&mut self, anomaly: Anomaly, explain: impl FnOnce() -> Found) {
        let n = self.counts.entry(anomaly).or_default();
        *n += 1;
        if *n <= KEPT_PER_KIND {
            self.kept.push(explain());
        }
    }
}

/// The models that `anomalies` rule out, strongest first, and those none of them rules out.
pub(crate) fn verdict(
    anomalies: impl IntoIterator<Item = Anomaly>,
) -> (Vec<Consistency>, Vec<Consistency>) {
    let mut out = std::collections::BTreeSet::new();
    for a in anomalies {
        out.extend(a.rules_out().iter().copied());
    }
    Consistency::ALL.iter().partition(|m| out.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_anomaly_rules_out() {
        let (out, kept) = verdict([Anomaly::G2Item]);
        assert_eq!(out, vec![SSER, SER, RR]);
        assert_eq!(kept, vec![SI, RC, RU]);
        let (out, kept) = verdict([Anomaly::G2Item, Anomaly::LostUpdate, Anomaly::G1a]);
        assert_eq!(out, vec![SSER, SER, SI, RR, RC]);
        assert_eq!(kept, vec![RU]);
        let (out, _) = verdict([Anomaly::GSingleRealtime]);
        assert_eq!(out, vec![SSER]);
        let (out, kept) = verdict([]);
        assert!(out.is_empty());
        assert_eq!(kept.len(), 6);
        // Every stronger model is ruled out whenever a weaker one is.
        for a in [
            Anomaly::G0,
            Anomaly::G1a,
            Anomaly::G1b,
            Anomaly::G1c,
            Anomaly::GSingle,
            Anomaly::GNonadjacent,
            Anomaly::G2Item,
            Anomaly::LostUpdate,
            Anomaly::Internal,
            Anomaly::FutureRead,
            Anomaly::DuplicateElements,
            Anomaly::IncompatibleOrder,
            Anomaly::GarbageRead,
            Anomaly::G2ItemRealtime,
        ] {
            let out = a.rules_out();
            assert!(out.contains(&SSER), "{a}");
            assert!(!out.contains(&RC) || out.contains(&RR), "{a}");
            assert!(!out.contains(&SER) || out.contains(&SSER), "{a}");
            assert!(!out.contains(&RU) || out.contains(&RC), "{a}");
        }
    }
}
