//! `cluster-sim check` as a user runs it: exit 0 for a valid history, 1 with the counterexample,
//! 2 with the line number for a malformed file; it needs no engine.

mod common;

use common::{check, fixture};

#[test]
fn valid_invalid_and_malformed_histories() {
    let valid = fixture("valid-register.jsonl");
    let (code, out, err) = check(&["--model", "register", &valid]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("valid: 4 operations over 1 key(s) are linearizable"),
        "{out}"
    );

    let stale = fixture("stale-read.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("h.svg");
    let (code, out, _) = check(&[
        "--model",
        "register",
        &stale,
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("key k1: 3 operation(s)"), "{out}");
    assert!(out.contains("process 2 read k1 -> 1"), "{out}");
    assert!(
        out.contains("it returned 1 but the register held 2"),
        "{out}"
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("process 2"),
        "{drawn}"
    );

    let lost = fixture("lost-adds.jsonl");
    let (code, out, _) = check(&["--model", "set", &lost]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 acknowledged add(s) missing from the final read"),
        "{out}"
    );
    assert!(out.contains("process 1 add 2 (ok"), "{out}");
    assert!(out.contains("1 unknown but present"), "{out}");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"time\":1}\n{\"process\":0,\"type\":\"ok\",\"time\":2}\n",
    )
    .unwrap();
    let (code, out, err) = check(&["--model", "register", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim(),
        format!(
            "cluster-sim: error: {}:2: not a history record: missing field `f` (column 34)",
            bad.display()
        )
    );
    let (code, _, err) = check(&["--model", "register", "/nonexistent/h.jsonl"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/h.jsonl: cannot read"), "{err}");
    // A set history judged as a register: one line naming the operation.
    let (code, _, err) = check(&["--model", "register", &lost]);
    assert_eq!(code, 2);
    assert!(
        err.contains("a register has read, write and cas, not \"add\""),
        "{err}"
    );
}
