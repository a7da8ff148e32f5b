//! `cluster-sim report RUN_DIR`: renders a run's page again from its records, without an
//! engine, and says clearly when a directory holds no run.

use std::process::Command;

use cluster_sim::report::{Attempt, EventRecord, RunDir, RunInfo, Status, TestRecord};

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cluster-sim"))
}

#[test]
fn report_renders_a_run_dir_again() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("runs/R1");
    let rd = RunDir::new(&run);
    rd.write_info(&RunInfo {
        run_id: "R1".into(),
        backend: "docker".into(),
        started_ms: 1_795_642_200_000,
        finished_ms: Some(1_795_642_201_000),
        state: "finished".into(),
        seed: None,
        junit: None,
    })
    .unwrap();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_642_200_100);
    rd.append(&TestRecord {
        name: "c::f::broken".into(),
        status: Status::Failed,
        duration_ms: 900,
        location: "tests_d/c/f.rs:9".into(),
        rerun: None,
        skip_reason: None,
        properties: vec![],
        attempts: vec![Attempt {
            number: 1,
            status: Status::Failed,
            kind: Some("assertion".into()),
            message: Some("keys differ".into()),
            detail: None,
            started_ms: 1_795_642_200_000,
            duration_ms: 900,
            dir: None,
            events: vec![EventRecord::note(
                at,
                "exec",
                Some("n1"),
                "`true` -> exit 0",
            )],
            dropped_events: 0,
        }],
    })
    .unwrap();

    let out = cli().arg("report").arg(&run).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = run.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string()
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("data-name=\"c::f::broken\""));
    assert!(html.contains("keys differ"));

    let other = dir.path().join("elsewhere.html");
    let out = cli()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(other.is_file());

    // Without a directory: the newest run under $CARGO_TARGET_DIR/cluster-sim/runs.
    std::fs::create_dir_all(dir.path().join("t/cluster-sim/runs")).unwrap();
    std::fs::rename(
        dir.path().join("runs/R1"),
        dir.path().join("t/cluster-sim/runs/R1"),
    )
    .unwrap();
    let out = cli()
        .arg("report")
        .env("CARGO_TARGET_DIR", dir.path().join("t"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir
        .path()
        .join("t/cluster-sim/runs/R1/report.html")
        .is_file());
}

#[test]
fn a_directory_without_a_run_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a run directory (no run.json)"), "{err}");
}
