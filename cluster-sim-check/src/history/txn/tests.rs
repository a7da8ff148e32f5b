//! Hand-built histories, one per anomaly, for both flavors: each is found, named and explained,
//! and histories that look anomalous but are not pass.

use serde_json::{json, Value};

use super::*;
use crate::history::{Completed, OpType, Process, Violation};

/// A transaction of process `p` from `start` to `end` with these micro-operations (as they
/// completed, for an ok one).
fn t(p: u64, outcome: OpType, (start, end): (u64, u64), mops: Value) -> Completed {
    let (input, output) = match outcome {
        OpType::Ok => (Value::Null, mops),
        _ => (mops, Value::Null),
    };
    Completed {
        process: Process::Client(p),
        f: "txn".into(),
        key: None,
        input,
        output,
        outcome,
        start,
        end: (outcome != OpType::Info).then_some(end),
        index: 0,
    }
}

fn ok(p: u64, span: (u64, u64), mops: Value) -> Completed {
    t(p, OpType::Ok, span, mops)
}

/// All transactions overlap: no real-time order between them.
const C: (u64, u64) = (0, 100);

fn check(flavor: Flavor, ops: &[Completed]) -> (Vec<Violation>, TxnSummary) {
    let mut ops = ops.to_vec();
    for (i, o) in ops.iter_mut().enumerate() {
        o.index = i;
    }
    let txns = Txns::from_completed(&ops, flavor).expect("well-formed");
    analyse(&txns, Some(&ops)).expect("well-formed")
}

fn names(s: &TxnSummary) -> Vec<&'static str> {
    s.anomalies.keys().map(|a| a.name()).collect()
}

fn append(ops: &[Completed]) -> (Vec<Violation>, TxnSummary) {
    check(Flavor::ListAppend, ops)
}

fn register(ops: &[Completed]) -> (Vec<Violation>, TxnSummary) {
    check(Flavor::RwRegister, ops)
}

fn text(v: &[Violation]) -> String {
    v.iter().map(|v| format!("{v}\n")).collect()
}

#[test]
fn serializable_list_histories_pass() {
    let (v, s) = append(&[
        ok(0, (0, 10), json!([["append", "x", 1]])),
        ok(1, (20, 30), json!([["r", "x", [1]], ["append", "x", 2]])),
        ok(2, (40, 50), json!([["r", "x", [1, 2]], ["r", "y", null]])),
    ]);
    assert!(v.is_empty(), "{}", text(&v));
    assert_eq!(s.to_string(), "rules out none of: strict serializable, serializable, snapshot isolation, repeatable read, read committed, read uncommitted");
}

#[test]
fn list_histories_that_look_anomalous_but_are_not() {
    let (v, s) = append(&[
        // A read concurrent with an append may miss it...
        ok(0, (0, 10), json!([["append", "x", 1]])),
        ok(1, (5, 15), json!([["r", "x", []]])),
        // ...a failed append is never read, and an unknown one may have happened.
        t(2, OpType::Fail, (20, 30), json!([["append", "x", 2]])),
        t(
            3,
            OpType::Info,
            (20, 30),
            json!([["append", "x", 3], ["r", "y", null]]),
        ),
        // Its own appends are what a transaction reads back, after what others appended.
        ok(
            4,
            (40, 50),
            json!([
                ["append", "x", 4],
                ["r", "x", [1, 3, 4]],
                ["append", "x", 5]
            ]),
        ),
        ok(5, (60, 70), json!([["r", "x", [1, 3, 4, 5]]])),
        // Two transactions that read different keys and append to others: no cycle.
        ok(6, (80, 90), json!([["r", "a", []], ["append", "b", 1]])),
        ok(7, (80, 90), json!([["r", "b", [1]], ["append", "a", 1]])),
    ]);
    assert!(v.is_empty(), "{}", text(&v));
    assert_eq!(s.transactions, 8);
}

#[test]
fn g0_write_cycle() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1], ["append", "y", 2]])),
        ok(1, C, json!([["append", "x", 2], ["append", "y", 1]])),
        ok(
            2,
            (200, 300),
            json!([["r", "x", [1, 2]], ["r", "y", [1, 2]]]),
        ),
    ]);
    assert_eq!(names(&s), ["G0"]);
    assert_eq!(s.ruled_out.len(), 6, "{s}");
    assert_eq!(
        v[0].explanation,
        "T1 -ww-> T2: T1 appended 1 to x and T2 appended 2 after it;\n   T2 -ww-> T1: T2 appended 1 to y and T1 appended 2 after it"
    );
    assert!(
        v[0].summary
            .starts_with("G0 (write cycle) among T1, T2 below, in order: T1 -ww-> T2 -ww-> T1"),
        "{}",
        v[0].summary
    );
}

#[test]
fn g1a_aborted_read() {
    let (v, s) = append(&[
        t(0, OpType::Fail, C, json!([["append", "x", 1]])),
        ok(1, C, json!([["r", "x", [1]]])),
    ]);
    assert_eq!(names(&s), ["G1a"]);
    assert_eq!(
        v[0].explanation,
        "T1 read x = [1], which holds 1, appended by T2, which failed"
    );
    assert_eq!(v[0].ops[1].outcome, OpType::Fail);
    assert!(!s.ruled_out.contains(&Consistency::ReadUncommitted));
    assert!(s.ruled_out.contains(&Consistency::ReadCommitted));
}

#[test]
fn g1b_intermediate_read() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1], ["append", "x", 2]])),
        ok(1, C, json!([["r", "x", [1]]])),
    ]);
    // Reading the intermediate state also puts the reader both before and after the writer.
    assert_eq!(names(&s), ["G1b", "G-single"]);
    assert_eq!(
        v[0].explanation,
        "T1 read x = [1], ending in 1, which T2 appended before appending 2 to x: a state T2 never committed"
    );
}

#[test]
fn g1c_circular_information_flow() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1], ["r", "y", [1]]])),
        ok(1, C, json!([["append", "y", 1], ["r", "x", [1]]])),
    ]);
    assert_eq!(names(&s), ["G1c"]);
    assert_eq!(
        v[0].explanation,
        "T1 -wr-> T2: T2 read x = [1], whose last element 1 T1 appended;\n   T2 -wr-> T1: T1 read y = [1], whose last element 1 T2 appended"
    );
}

#[test]
fn g_single_read_skew() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1], ["append", "y", 1]])),
        ok(1, C, json!([["r", "x", []], ["r", "y", [1]]])),
    ]);
    assert_eq!(names(&s), ["G-single"]);
    assert_eq!(
        v[0].explanation,
        "T1 -rw-> T2: T1 read x = [] and did not see T2's append of 1 (never read, so after every element read there);\n   T2 -wr-> T1: T1 read y = [1], whose last element 1 T2 appended"
    );
    assert!(s.ruled_out.contains(&Consistency::SnapshotIsolation));
    assert!(!s.ruled_out.contains(&Consistency::ReadCommitted));
}

#[test]
fn g2_item_write_skew() {
    let (v, s) = append(&[
        ok(0, C, json!([["r", "x", []], ["append", "y", 1]])),
        ok(1, C, json!([["r", "y", []], ["append", "x", 1]])),
        ok(2, (200, 300), json!([["r", "x", [1]], ["r", "y", [1]]])),
    ]);
    assert_eq!(names(&s), ["G2-item"]);
    assert_eq!(
        v[0].explanation,
        "T1 -rw-> T2: T1 read x = [] and did not see T2's append of 1, the next element;\n   T2 -rw-> T1: T2 read y = [] and did not see T1's append of 1, the next element"
    );
    // Snapshot isolation allows write skew.
    assert_eq!(
        s.ruled_out,
        [
            Consistency::StrictSerializable,
            Consistency::Serializable,
            Consistency::RepeatableRead
        ]
    );
}

#[test]
fn g_nonadjacent_anti_dependencies() {
    let (_, s) = append(&[
        ok(0, C, json!([["r", "x", []], ["r", "w", [1]]])),
        ok(1, C, json!([["append", "x", 1], ["append", "y", 1]])),
        ok(2, C, json!([["r", "y", [1]], ["r", "z", []]])),
        ok(3, C, json!([["append", "z", 1], ["append", "w", 1]])),
    ]);
    assert_eq!(names(&s), ["G-nonadjacent"]);
    assert!(s.ruled_out.contains(&Consistency::SnapshotIsolation));
    assert_eq!(s.cycles[0].txns.len(), 4);
}

#[test]
fn lost_update() {
    let (v, s) = append(&[
        ok(0, (0, 10), json!([["append", "x", 1]])),
        ok(1, (20, 30), json!([["r", "x", [1]], ["append", "x", 2]])),
        ok(2, (20, 30), json!([["r", "x", [1]], ["append", "x", 3]])),
        ok(3, (40, 50), json!([["r", "x", [1, 2, 3]]])),
    ]);
    assert_eq!(names(&s), ["G-single", "lost-update"]);
    let lost = v
        .iter()
        .find(|v| v.summary.starts_with("lost-update"))
        .unwrap();
    assert_eq!(
        lost.explanation,
        "T1 and T2 both read x = a list ending in 1 and then appended to x: each append was made without the others'"
    );
}

#[test]
fn internal_and_future_reads() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1], ["r", "x", []]])),
        ok(1, C, json!([["r", "y", [5]], ["append", "y", 5]])),
    ]);
    assert_eq!(names(&s), ["internal", "future-read"]);
    assert_eq!(
        v[0].explanation,
        "T1 read x = [], but its own earlier reads and appends say it is [... 1]"
    );
    assert_eq!(
        v[1].explanation,
        "T1 read y = [5], which holds 5, though T1 appends 5 to y only later"
    );
}

#[test]
fn duplicate_incompatible_and_garbage_reads() {
    let (v, s) = append(&[
        ok(0, C, json!([["append", "x", 1]])),
        ok(1, C, json!([["append", "x", 2]])),
        ok(2, C, json!([["r", "x", [1, 2]]])),
        ok(3, C, json!([["r", "x", [2, 1, 9]]])),
        ok(4, C, json!([["append", "y", 1]])),
        ok(5, C, json!([["r", "y", [1, 1]]])),
    ]);
    assert_eq!(
        names(&s),
        ["duplicate-elements", "incompatible-order", "garbage-read"]
    );
    let all = text(&v);
    assert!(
        all.contains("T1 read x = [1 2] and T2 read x = [2 1 9]: neither is a prefix of the other"),
        "{all}"
    );
    assert!(
        all.contains("T1 read y = [1 1]: 1 is in it twice, but was appended once"),
        "{all}"
    );
    assert!(
        all.contains("T1 read x = [2 1 9]: no transaction appended 9 to x"),
        "{all}"
    );
    assert_eq!(s.ruled_out.len(), 6);
}

#[test]
fn a_stale_read_is_only_a_real_time_anomaly() {
    let ms = 1_000_000;
    let (v, s) = append(&[
        ok(0, (0, 10 * ms), json!([["append", "x", 1]])),
        ok(1, (20 * ms, 30 * ms), json!([["r", "x", []]])),
    ]);
    assert_eq!(names(&s), ["G-single-realtime"]);
    assert_eq!(s.ruled_out, [Consistency::StrictSerializable]);
    assert_eq!(
        v[0].explanation,
        "T1 -rw-> T2: T1 read x = [] and did not see T2's append of 1 (never read, so after every element read there);\n   T2 -rt-> T1: T2 completed at 0.010s, before T1 began at 0.020s"
    );
}

#[test]
fn a_value_appended_twice_cannot_be_judged() {
    let e = Txns::from_completed(
        &[
            ok(0, C, json!([["append", "x", 1]])),
            ok(1, C, json!([["append", "x", 1]])),
        ],
        Flavor::ListAppend,
    )
    .and_then(|t| analyse(&t, None).map(|_| ()))
    .unwrap_err();
    assert_eq!(e.message, "1 is appended to x again (process 0's txn at 0.000s appended it too): list-append needs each value appended to a key at most once");
}

#[test]
fn serializable_register_histories_pass() {
    let (v, _) = register(&[
        ok(0, (0, 10), json!([["w", "x", 1]])),
        ok(
            1,
            (20, 30),
            json!([["r", "x", 1], ["w", "y", 2], ["r", "y", 2]]),
        ),
        ok(2, (40, 50), json!([["r", "y", 2], ["r", "z", null]])),
        // Concurrent with the first: may read the initial state.
        ok(3, (5, 15), json!([["r", "x", null]])),
        t(4, OpType::Fail, (60, 70), json!([["w", "z", 3]])),
    ]);
    assert!(v.is_empty(), "{}", text(&v));
}

#[test]
fn register_cycles() {
    let (v, s) = register(&[
        ok(0, C, json!([["w", "x", 1], ["r", "y", 2]])),
        ok(1, C, json!([["w", "y", 2], ["r", "x", 1]])),
    ]);
    assert_eq!(names(&s), ["G1c"]);
    assert_eq!(
        v[0].explanation,
        "T1 -wr-> T2: T2 read x = 1, which T1 wrote;\n   T2 -wr-> T1: T1 read y = 2, which T2 wrote"
    );
    let (v, s) = register(&[
        ok(0, C, json!([["w", "x", 1], ["w", "y", 1]])),
        ok(1, C, json!([["r", "x", null], ["r", "y", 1]])),
    ]);
    assert_eq!(names(&s), ["G-single"]);
    assert_eq!(
        v[0].explanation,
        "T1 -rw-> T2: T1 read x = nil, its initial state, and did not see T2's write of 1 to x;\n   T2 -wr-> T1: T1 read y = 1, which T2 wrote"
    );
    let (_, s) = register(&[
        ok(
            0,
            C,
            json!([["r", "x", null], ["r", "y", null], ["w", "x", 1]]),
        ),
        ok(
            1,
            C,
            json!([["r", "x", null], ["r", "y", null], ["w", "y", 2]]),
        ),
    ]);
    assert_eq!(names(&s), ["G2-item"]);
}

#[test]
fn register_anomalies_without_cycles() {
    let (v, s) = register(&[
        ok(0, C, json!([["r", "x", 5], ["w", "x", 6]])),
        ok(1, C, json!([["r", "x", 5], ["w", "x", 7]])),
        ok(2, C, json!([["w", "x", 5]])),
    ]);
    assert_eq!(names(&s), ["lost-update"]);
    assert_eq!(
        v[0].explanation,
        "T1 and T2 both read x = 5 and then wrote x: each write was made without the others'"
    );
    let (v, s) = register(&[
        t(0, OpType::Fail, C, json!([["w", "x", 1]])),
        ok(1, C, json!([["w", "y", 1], ["w", "y", 2]])),
        ok(2, C, json!([["r", "x", 1], ["r", "y", 1], ["r", "z", 9]])),
        ok(3, C, json!([["w", "z", 3], ["r", "z", 4]])),
        ok(4, C, json!([["w", "z", 4]])),
    ]);
    assert_eq!(names(&s), ["G1a", "G1b", "internal", "garbage-read"]);
    let all = text(&v);
    assert!(
        all.contains("T1 read x = 1, written by T2, which failed"),
        "{all}"
    );
    assert!(
        all.contains("T1 read y = 1, which T2 wrote and then overwrote in the same transaction"),
        "{all}"
    );
    assert!(
        all.contains("T1 read z = 4, but its own earlier read or write says it is 3"),
        "{all}"
    );
    assert!(
        all.contains("T1 read z = 9, a value no transaction wrote"),
        "{all}"
    );
}

#[test]
fn realtime_edges_are_reduced_but_order_everything() {
    use super::graph::{realtime_edges, Edges};
    let ops = [
        ok(0, (0, 10), json!([])),
        ok(1, (0, 12), json!([])),
        ok(0, (20, 30), json!([])),
        ok(1, (25, 40), json!([])),
        t(2, OpType::Info, (35, 0), json!([])),
    ];
    let txns = Txns::from_completed(&ops, Flavor::ListAppend).unwrap();
    let mut e = Edges::default();
    realtime_edges(&txns, &mut e);
    let mut edges: Vec<(u32, u32)> = e.0.iter().map(|&(a, b, _)| (a, b)).collect();
    edges.sort_unstable();
    // 0 and 1 precede 2 and 3; 2 precedes the info op at 35, 3 does not (it ends at 40).
    assert_eq!(edges, [(0, 2), (0, 3), (1, 2), (1, 3), (2, 4)]);
}
