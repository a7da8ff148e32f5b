//! Tests of the renderer: what a page holds, links, and the size of a big run's page.

use super::*;
use crate::model::{RunInfo, RUN_FILE};

fn ev(at: u64, node: Option<&str>, kind: &str, message: &str) -> EventRecord {
    let mut e = EventRecord::note(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
        kind,
        node,
        message,
    );
    e.at_ms = at;
    e
}

fn exec(at: u64, node: &str, cmd: &str, code: i64, tail: &str) -> EventRecord {
    let mut e = ev(
        at,
        Some(node),
        "exec",
        &format!("`{cmd}` -> exit {code} in 5ms"),
    );
    e.command = Some(cmd.into());
    e.code = Some(code);
    e.duration_ms = Some(5);
    e.tail = Some(tail.into());
    e
}

/// A test of `nodes` nodes with `execs` commands; the last command fails when `fail`.
fn test_record(
    name: &str,
    nodes: usize,
    execs: usize,
    fail: bool,
    dir: Option<&str>,
) -> TestRecord {
    let t0 = 1_795_642_201_000;
    let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let mut events = vec![
        ev(t0, None, "start", &format!("{name} (f.rs:1)")),
        ev(
            t0 + 1,
            None,
            "provision",
            "provisioning x on docker from inline (3 nodes)",
        ),
        ev(
            t0 + 50,
            None,
            "provision",
            &format!(
                "allocated {}",
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n}=10.0.0.{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        ev(t0 + 400, None, "provision", "nodes started"),
    ];
    for n in &names {
        events.push(ev(t0 + 900, Some(n), "ready", "ready after 1 check(s)"));
    }
    events.push(ev(
        t0 + 1000,
        None,
        "fault",
        "start #1 partition n1 | n2 (nodes n1,n2) in 3ms",
    ));
    for i in 0..execs {
        let node = &names[i % nodes];
        let last = i + 1 == execs;
        let code = if fail && last { 3 } else { 0 };
        events.push(exec(
            t0 + 1100 + i as u64 * 10,
            node,
            &format!("cmd {i}"),
            code,
            "out\n[stderr]\nboom",
        ));
    }
    events.push(ev(t0 + 1500, Some("n2"), "lifecycle", "kill"));
    events.push(ev(
        t0 + 1600,
        None,
        "fault",
        "end #1 partition n1 | n2 (nodes n1,n2) in 3ms",
    ));
    let message = fail.then(|| {
        format!(
            "`cmd {}` on n{} exited 3",
            execs - 1,
            (execs - 1) % nodes + 1
        )
    });
    events.push(ev(
        t0 + 1700,
        None,
        "result",
        if fail { "FAILED: boom" } else { "passed" },
    ));
    TestRecord {
        name: name.into(),
        status: if fail { Status::Failed } else { Status::Passed },
        duration_ms: 1800,
        location: "tests_d/x.rs:3".into(),
        rerun: Some(format!("cargo test -- {name} --exact")),
        skip_reason: None,
        properties: vec![("spec".into(), "inline".into())],
        attempts: vec![Attempt {
            number: 1,
            status: if fail { Status::Failed } else { Status::Passed },
            kind: fail.then(|| "exec".into()),
            message,
            detail: None,
            started_ms: t0,
            duration_ms: 1800,
            dir: dir.map(str::to_string),
            events,
            dropped_events: 0,
        }],
    }
}

fn info() -> RunInfo {
    RunInfo {
        run_id: "20261125T213001Z-42".into(),
        backend: "docker".into(),
        started_ms: 1_795_642_200_000,
        finished_ms: Some(1_795_642_260_000),
        state: "finished".into(),
        seed: Some("7".into()),
        junit: None,
    }
}

#[test]
fn a_page_holds_summary_tests_data_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("runs/R");
    let tdir = run_dir.join("a::b::fails");
    std::fs::create_dir_all(tdir.join("nodes/n1")).unwrap();
    std::fs::write(tdir.join("test.log"), "x\n").unwrap();
    std::fs::write(
        tdir.join("nodes/n1/service.log"),
        "2026-11-25T21:30:02Z hello </script><b>\n",
    )
    .unwrap();
    std::fs::write(
        tdir.join("history.svg"),
        "<svg xmlns='http://www.w3.org/2000/svg'/>",
    )
    .unwrap();
    let mut flaky = test_record("a::b::flaky", 2, 2, false, None);
    flaky.status = Status::Flaky;
    let mut first = test_record("a::b::flaky", 2, 2, true, None)
        .attempts
        .remove(0);
    first.number = 1;
    flaky.attempts[0].number = 2;
    flaky.attempts.insert(0, first);
    let run = Run {
        dir: run_dir.clone(),
        info: info(),
        tests: vec![
            test_record("a::b::passes", 3, 4, false, None),
            test_record("a::b::fails", 3, 4, true, Some("a::b::fails")),
            flaky,
        ],
    };
    let out = dir.path().join("report.html");
    write_report(&run, &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("<b>1</b>failed"), "summary counts");
    assert!(html.contains("<b>1</b>flaky"));
    assert!(html.contains("<b>1</b>passed"));
    assert!(html.contains("CLUSTER_SIM_SEED=7"));
    // Failures come first and open; passing tests closed.
    let fails = html.find("data-name=\"a::b::fails\"").unwrap();
    let passes = html.find("data-name=\"a::b::passes\"").unwrap();
    assert!(fails < passes);
    assert!(html.contains("data-status=\"failed\" open>"));
    assert!(html.contains("2 attempts"));
    // Artifacts are linked relative to the page; the history is embedded.
    assert!(
        html.contains("href=\"./runs/R/a::b::fails/test.log\""),
        "{html}"
    );
    assert!(html.contains("data:image/svg+xml;base64,"));
    // The log's text can't close the data's script element.
    assert!(!html.contains("hello </script>"));
    assert!(html.contains("hello <\\/script>"));
    // Nothing is fetched from elsewhere.
    for needle in ["http://", "https://", "<link", "src=\"http", "@import"] {
        let hits: Vec<&str> = html.matches(needle).collect();
        let allowed =
            needle == "http://" && html.matches("http://www.w3.org/2000/svg").count() == hits.len();
        assert!(hits.is_empty() || allowed, "{needle} in the page");
    }
    // The data parses back and marks the failure on the failing command's node.
    let start = html
        .find("<script type=\"application/json\" class=\"data\">")
        .unwrap();
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(&body.replace("<\\/", "</")).unwrap();
    assert_eq!(data[0]["nodes"], serde_json::json!(["n1", "n2", "n3"]));
    assert_eq!(data[0]["failure"]["node"], "n1");
    assert_eq!(data[0]["logs"][0]["node"], "n1");
    assert_eq!(data[0]["logs"][0]["stamped"], true);
}

#[test]
fn a_thousand_tests_with_20_mb_of_logs_stay_under_10_mb() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("R");
    let rd = RunDir::new(&run_dir);
    rd.write_info(&info()).unwrap();
    let mut logged = 0usize;
    // 20 KiB of stamped log per test over 3 nodes, every tenth test failing.
    let line = "2026-11-25T21:30:02.123Z info raft: some message a service writes often\n";
    for i in 0..1000 {
        let name = format!("c{}::file::test_{i:04}", i % 7);
        let test_dir = run_dir.join(&name);
        for n in 1..=3 {
            let d = test_dir.join(format!("nodes/n{n}"));
            std::fs::create_dir_all(&d).unwrap();
            let text = line.repeat(20 * 1024 / 3 / line.len() + 1);
            logged += text.len();
            std::fs::write(d.join("service.log"), text).unwrap();
        }
        rd.append(&test_record(&name, 3, 40, i % 10 == 0, Some(&name)))
            .unwrap();
    }
    assert!(logged >= 20 * 1000 * 1000, "{logged}");
    let out = dir.path().join("report.html");
    render_run_dir(&run_dir, &out).unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    eprintln!("1,000 tests, {logged} bytes of logs: a {size}-byte report");
    assert!(size < 10_000_000, "the report is {size} bytes");
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("<details class=\"test ").count(), 1000);
    assert!(run_dir.join(RUN_FILE).is_file());
}
