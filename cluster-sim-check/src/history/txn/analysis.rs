//! The analysis behind the transactional checkers: dependencies inferred from what each
//! transaction wrote and read, real-time order, cycles found and explained as anomalies, and
//! the summary a report carries.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::anomaly::{self, Anomaly, Consistency, Findings, Found};
use super::append::Appends;
use super::cycles;
use super::graph::{self, Edges, Graph, RT};
use super::rw::Registers;
use super::svg::{self, DrawnCycle};
use super::txns::{Flavor, Txns};
use crate::history::{Completed, OpError, OpType, Violation};

/// What a transactional checker found beyond its verdict: every anomaly counted, the
/// consistency models they rule out, and the cycles to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnSummary {
    /// Transactions in the history (any outcome).
    pub transactions: usize,
    /// Dependency and real-time edges between them.
    pub edges: usize,
    /// How many of each anomaly were found (each kind explains its first few).
    pub anomalies: BTreeMap<Anomaly, usize>,
    /// The models the anomalies rule out, strongest first.
    pub ruled_out: Vec<Consistency>,
    /// The models none of the anomalies rules out.
    pub not_ruled_out: Vec<Consistency>,
    /// A cycle search in a very large component stopped at its budget: more kinds of cycle
    /// may be there than are reported.
    pub cut_short: bool,
    /// The cycles found, as [`TxnSummary::svg`] draws them.
    pub cycles: Vec<DrawnCycle>,
}

impl TxnSummary {
    /// The cycles as a self-contained SVG picture, one panel per cycle.
    pub fn svg(&self) -> String {
        svg::cycles_svg(&self.cycles)
    }
}

impl fmt::Display for TxnSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ms: &[Consistency]| ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
        if self.anomalies.is_empty() {
            return write!(f, "rules out none of: {}", names(&self.not_ruled_out));
        }
        let counts: Vec<String> = self
            .anomalies
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect();
        write!(
            f,
            "anomalies: {}\nrules out: {}",
            counts.join(", "),
            names(&self.ruled_out)
        )?;
        if !self.not_ruled_out.is_empty() {
            write!(
                f,
                "\nnot ruled out by these anomalies: {}",
                names(&self.not_ruled_out)
            )?;
        }
        if self.cut_short {
            write!(
                f,
                "\n(a cycle search stopped at its budget in a very large component: other kinds of cycle may be there too)"
            )?;
        }
        Ok(())
    }
}

/// Checks the client operations of a history of `flavor` transactions.
#[cfg(test)]
pub(crate) fn check_ops(
    ops: &[crate::history::Op],
    flavor: Flavor,
) -> Result<(Vec<Violation>, TxnSummary), OpError> {
    let ops = crate::history::complete(ops);
    analyse(&Txns::from_completed(&ops, flavor)?, Some(&ops))
}

/// What the dependencies were inferred from, kept to explain a cycle's edges.
enum Inference<'a> {
    Append(Appends<'a>),
    Registers(Registers<'a>),
}

/// Checks a history of transactions: every anomaly explained (the first few of each kind) as
/// a [`Violation`], and the summary. `ops` are the history's operations when the transactions
/// were read from them (position for position), to show in violations as they are.
pub(crate) fn analyse(
    txns: &Txns,
    ops: Option<&[Completed]>,
) -> Result<(Vec<Violation>, TxnSummary), OpError> {
    let mut found = Findings::default();
    let mut edges = Edges::default();
    let inference = match txns.flavor {
        Flavor::ListAppend => Inference::Append(Appends::infer(txns, &mut found, &mut edges)?),
        Flavor::RwRegister => Inference::Registers(Registers::infer(txns, &mut found, &mut edges)?),
    };
    graph::realtime_edges(txns, &mut edges);
    let g = Graph::build(txns.len(), edges);
    let components = graph::components(&g);
    let searched = cycles::find(&g, &components);
    for c in &searched.cycles {
        found.add(c.anomaly, || explain_cycle(txns, &inference, c));
    }
    let mut kept = found.kept;
    kept.sort_by_key(|f| f.anomaly);
    let (ruled_out, not_ruled_out) = anomaly::verdict(found.counts.keys().copied());
    let summary = TxnSummary {
        transactions: txns.len(),
        edges: g.edge_count(),
        anomalies: found.counts,
        ruled_out,
        not_ruled_out,
        cut_short: searched.cut_short,
        cycles: kept
            .iter()
            .filter(|f| !f.edges.is_empty())
            .map(|f| DrawnCycle {
                anomaly: f.anomaly,
                txns: f.txns.iter().map(|&t| txns.show_txn(t)).collect(),
                edges: f
                    .edges
                    .iter()
                    .zip(&f.lines)
                    .map(|(&k, why)| (graph::kind_name(k).to_string(), why.clone()))
                    .collect(),
            })
            .collect(),
    };
    let violations = kept.iter().map(|f| violation(txns, ops, f)).collect();
    Ok((violations, summary))
}

/// The sentences that prove each edge of a cycle.
fn explain_cycle(txns: &Txns, inference: &Inference, c: &cycles::Cycle) -> Found {
    let n = c.txns.len();
    let lines = (0..n)
        .map(|i| {
            let (a, b) = (c.txns[i], c.txns[(i + 1) % n]);
            let (an, bn) = (format!("T{}", i + 1), format!("T{}", (i + 1) % n + 1));
            let kind = c.edges[i];
            let why = if kind == RT {
                let (ta, tb) = (txns.txn(a), txns.txn(b));
                Some(format!(
                    "{an} completed at {}, before {bn} began at {}",
                    ta.end.map_or("?".into(), crate::history::secs),
                    crate::history::secs(tb.start)
                ))
            } else {
                match inference {
                    Inference::Append(x) => x.why(a, b, kind, &an, &bn),
                    Inference::Registers(x) => x.why(a, b, kind, &an, &bn),
                }
            };
            // Every edge was inferred from something the explainer finds again; an edge it
            // can't explain would be a bug, shown as such rather than hidden.
            let why = why.unwrap_or_else(|| "(no explanation found: a checker bug)".into());
            format!("{an} -{}-> {bn}: {why}", graph::kind_name(kind))
        })
        .collect();
    Found {
        anomaly: c.anomaly,
        txns: c.txns.clone(),
        edges: c.edges.clone(),
        lines,
    }
}

/// An anomaly as a [`Violation`]: its name, the transactions (T1, T2, ... in order), and why.
fn violation(txns: &Txns, ops: Option<&[Completed]>, f: &Found) -> Violation {
    let names: Vec<String> = (1..=f.txns.len()).map(|i| format!("T{i}")).collect();
    let who = match names.len() {
        1 => "in T1, below".to_string(),
        _ => format!("among {} below, in order", names.join(", ")),
    };
    let shape = if f.edges.is_empty() {
        String::new()
    } else {
        let mut s = String::from(": T1");
        for (i, &k) in f.edges.iter().enumerate() {
            s.push_str(&format!(
                " -{}-> T{}",
                graph::kind_name(k),
                (i + 1) % f.txns.len() + 1
            ));
        }
        s
    };
    Violation {
        key: None,
        summary: format!("{} ({}) {who}{shape}", f.anomaly, f.anomaly.description()),
        explanation: f.lines.join(";\n   "),
        ops: f
            .txns
            .iter()
            .map(|&t| match ops {
                Some(ops) => ops[t as usize].clone(),
                None => completed(txns, t),
            })
            .collect(),
    }
}

/// A transaction as a [`Completed`] op, rebuilt from what the checker kept of it.
fn completed(txns: &Txns, t: u32) -> Completed {
    let txn = txns.txn(t);
    let ok = txn.outcome == OpType::Ok;
    Completed {
        process: txn.process.clone(),
        f: "txn".into(),
        key: None,
        input: txns.mops_json(t, false),
        output: if ok {
            txns.mops_json(t, true)
        } else {
            Value::Null
        },
        outcome: txn.outcome,
        start: txn.start,
        end: txn.end,
        index: txn.index,
    }
}
