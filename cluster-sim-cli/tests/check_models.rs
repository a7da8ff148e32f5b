//! `cluster-sim check` on the models beyond register and set, as a user runs it: list-append
//! and rw-register (anomalies named, the models they rule out, the cycles drawn), counter,
//! unique-ids and queue, each on a valid and an invalid history from `fixtures/histories/`;
//! and Jepsen logs read with `--from jepsen-log`.

mod common;

use common::{check, fixture};

/// `model` passes its valid fixture and fails its invalid one; the invalid one's output.
fn valid_and_invalid(model: &str) -> String {
    let (code, out, err) = check(&["--model", model, &fixture(&format!("{model}-valid.jsonl"))]);
    assert_eq!(code, 0, "{model}: {out}{err}");
    assert!(out.starts_with("valid: "), "{out}");
    let (code, out, err) = check(&[
        "--model",
        model,
        &fixture(&format!("{model}-invalid.jsonl")),
    ]);
    assert_eq!(code, 1, "{model}: {out}{err}");
    assert!(out.starts_with("INVALID: "), "{out}");
    out
}

#[test]
fn list_append_names_each_anomaly_and_draws_the_cycles() {
    let out = valid_and_invalid("list-append");
    for named in [
        "G1c (circular information flow)",
        "G2-item (anti-dependency cycle)",
        "lost-update (lost update)",
        "G1a (aborted read)",
    ] {
        assert!(out.contains(named), "{named} missing from:\n{out}");
    }
    insta::assert_snapshot!(out);

    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("cycles.svg");
    let (code, _, _) = check(&[
        "--model",
        "list-append",
        &fixture("list-append-invalid.jsonl"),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.ends_with("</svg>"));
    for panel in [
        "G1c (circular",
        "G2-item (anti-dependency",
        "G-single (read skew",
    ] {
        assert!(drawn.contains(panel), "{panel} not drawn");
    }
}

#[test]
fn rw_register_names_each_anomaly() {
    let out = valid_and_invalid("rw-register");
    for named in [
        "G1c (circular information flow)",
        "G2-item (anti-dependency cycle)",
        "lost-update (lost update)",
        "G1a (aborted read)",
        "rules out: strict serializable, serializable, snapshot isolation, repeatable read, read committed\n",
    ] {
        assert!(out.contains(named), "{named} missing from:\n{out}");
    }
}

#[test]
fn counter_unique_ids_and_queue() {
    let out = valid_and_invalid("counter");
    assert!(
        out.contains("process 2 read 1 at 0.005s..0.006s, but the adds allow only 3"),
        "{out}"
    );
    let out = valid_and_invalid("unique-ids");
    assert!(
        out.contains("1 id(s) returned by more than one acknowledged generate: 1 (2 times)"),
        "{out}"
    );
    let out = valid_and_invalid("queue");
    assert!(
        out.contains("1 acknowledged enqueue(s) never dequeued: 1; 1 value(s) dequeued more often than enqueued: 2 (2 out, 1 in); 1 element(s) dequeued that no one enqueued: 7"),
        "{out}"
    );
}

#[test]
fn a_bad_transaction_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]],\"time\":1}\n",
            "\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",2]],\"time\":2}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]],\"time\":3}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",2]],\"time\":4}\n",
        ),
    )
    .unwrap();
    let (code, out, err) = check(&["--model", "list-append", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim(),
        format!(
            "cluster-sim: error: {}:3: micro-operation 1 ([\"w\",\"x\",2]): list-append has append and r, not \"w\"",
            bad.display()
        )
    );
    // A counter history with a bad add, read whole: the line is named too.
    let (code, _, err) = check(&["--model", "counter", &fixture("queue-valid.jsonl")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("queue-valid.jsonl:1: a counter has add and read, not \"enqueue\""),
        "{err}"
    );
}

#[test]
fn jepsen_logs_are_read_and_saved_as_histories() {
    let log = |n: &str| fixture(&format!("jepsen/etcd_{n}.log"));
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("etcd_003.jsonl");
    let (code, out, err) = check(&[
        "--model",
        "register",
        "--from",
        "jepsen-log",
        &log("003"),
        "--save-history",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("3 operation(s) that no order can explain"),
        "{out}"
    );
    assert!(
        out.contains("longest linearizable prefix: process 3 write 4, process 9 write 3; then process 6 read -> 4 could not follow: it returned 4 but the register held 3"),
        "{out}"
    );
    // The saved history says the same.
    let (code, again, _) = check(&["--model", "register", saved.to_str().unwrap()]);
    assert_eq!((code, again), (1, out));
    let (code, out, err) = check(&["--model", "register", "--from", "jepsen-log", &log("002")]);
    assert_eq!(code, 0, "{out}{err}");
}
