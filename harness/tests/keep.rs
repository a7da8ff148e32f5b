//! Self-tests of the developer's inner loop on the real engine: a failed test's cluster kept
//! running (`CLUSTER_SIM_KEEP_CLUSTER`), named in its JUnit failure and reachable with the CLI
//! until `cluster-sim down --kept`; and tests run on a live cluster (`CLUSTER_SIM_CLUSTER`)
//! without creating a container.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{
    assert_valid, containers, example, leftovers, run_cli, spawn_binary, spawn_suite,
    suite_command, tests_d,
};

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The tests of this file take turns: `cluster-sim down --kept` in one must not meet another's
/// kept or `up` cluster.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a kept or `up` cluster when dropped, so a failed assertion leaves nothing behind
/// (a second removal of one already gone is harmless).
struct DownOnDrop(String);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = run_cli(&["down", &self.0]);
    }
}

/// Waits (with a deadline) until the watchdog of run `run` (a process with
/// `CLUSTER_SIM_WATCHDOG=<run>`) has done its passes and exited; false if it is still there.
fn watchdog_gone(run: &str, limit: std::time::Duration) -> bool {
    let needle = format!("CLUSTER_SIM_WATCHDOG={run}");
    let deadline = std::time::Instant::now() + limit;
    loop {
        let running = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .any(|e| {
                std::fs::read(e.path().join("environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
            });
        if !running || std::time::Instant::now() > deadline {
            return !running;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A Docker label of a container.
fn label_of(container: &str, label: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            container,
        ])
        .output()
        .expect("docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Names of the containers the engine created between `since` and now whose name holds
/// `needle` (a run's pid: `<spec>-<fn>-<pid>-<seq>`), removed since or not.
fn created_since(since: u64, needle: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(unix_now() + 1).to_string(),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .output()
        .expect("docker CLI");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_failed_tests_cluster_is_kept_until_down_kept_and_not_by_default() {
    let _turn = serial();
    const TEST: &str = "selftest::outcomes::fails_command";
    // The default keeps nothing.
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(dir.path(), &[TEST, "--exact"], &[]);
    assert_eq!(out.status.code(), Some(101), "{}", text(&out));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(!junit.contains("was kept running"), "{junit}");
    assert_eq!(leftovers(pid), Vec::<String>::new());

    // on-failure: the cluster stays, named with the commands in the JUnit failure.
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(
        dir.path(),
        &[TEST, "--exact"],
        &[("CLUSTER_SIM_KEEP_CLUSTER", "on-failure")],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out));
    let report = dir.path().join("junit.xml");
    assert_valid(&report);
    let junit = std::fs::read_to_string(&report).unwrap();
    let kept = regex::Regex::new(r"cluster ([a-z0-9-]+) was kept running")
        .unwrap()
        .captures(&junit)
        .unwrap_or_else(|| panic!("no kept cluster in the JUnit report:\n{junit}"))[1]
        .to_string();
    let _cleanup = DownOnDrop(kept.clone());
    assert!(kept.contains(&format!("-{pid}-")), "{kept}");
    for command in [
        format!("cluster-sim exec {kept} n1 -- sh"),
        format!("cluster-sim logs {kept}"),
        format!("cluster-sim down {kept}"),
    ] {
        assert!(junit.contains(&command), "no `{command}` in:\n{junit}");
    }
    // The run's watchdog has done its passes and left the kept cluster alone.
    let run = label_of(&format!("{kept}.kept"), "cluster-sim.run");
    assert!(!run.is_empty());
    assert!(
        watchdog_gone(&run, std::time::Duration::from_secs(60)),
        "the run's watchdog is still there after 60s"
    );
    let cluster_label = format!("label=cluster-sim.cluster={kept}");
    assert_eq!(
        containers(&[&cluster_label, "label=cluster-sim.node", "status=running"]).len(),
        1,
        "the kept node runs"
    );
    // The kept marker names the test.
    assert_eq!(
        containers(&[&cluster_label, &format!("label=cluster-sim.kept-by={TEST}")]).len(),
        1
    );

    // The CLI reaches it, and `ls` says which test kept it.
    let exec = run_cli(&["exec", &kept, "n1", "--", "sh", "-c", "echo inside"]);
    assert!(exec.status.success(), "{}", text(&exec));
    assert_eq!(String::from_utf8_lossy(&exec.stdout).trim(), "inside");
    let ls = run_cli(&["ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    let ls_text = String::from_utf8_lossy(&ls.stdout);
    let line = ls_text
        .lines()
        .find(|l| l.starts_with(&kept))
        .unwrap_or_else(|| panic!("{kept} not in:\n{ls_text}"));
    assert!(line.ends_with(TEST), "{line}");

    // `down --kept` removes every kept cluster on the engine: on an engine others share, only
    // when ours is the only one, else by name (never someone else's cluster).
    let others: Vec<&str> = ls_text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(&kept))
        .filter(|l| l.split_whitespace().nth(4) == Some("yes"))
        .collect();
    let down = if others.is_empty() {
        run_cli(&["down", "--kept"])
    } else {
        eprintln!("other kept clusters on this engine; removing ours by name:\n{others:?}");
        run_cli(&["down", &kept])
    };
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        String::from_utf8_lossy(&down.stdout).contains(&format!("removed {kept}")),
        "{}",
        text(&down)
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn tests_run_on_a_live_cluster_without_creating_a_container() {
    let _turn = serial();
    let name = format!("keep-attach-{}", std::process::id());
    let _cleanup = DownOnDrop(name.clone());
    let up = run_cli(&["up", "fixtures/clusters/etcd3.toml", "--name", &name]);
    assert!(up.status.success(), "{}", text(&up));
    let label = format!("label=cluster-sim.cluster={name}");
    let before = containers(&[&label]);
    assert_eq!(
        containers(&[&label, "label=cluster-sim.node", "status=running"]).len(),
        3
    );

    let since = unix_now();
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_binary(
        &tests_d(),
        dir.path(),
        &["etcd::members::", "snapshot::basic", "--test-threads", "2"],
        &[("CLUSTER_SIM_CLUSTER", &name)],
    );
    let after = containers(&[&label]);
    let made = created_since(since, &format!("-{pid}-"));
    let running = containers(&[&label, "label=cluster-sim.node", "status=running"]).len();
    let tables = run_cli(&[
        "exec",
        &name,
        "n1",
        "--",
        "sh",
        "-c",
        "nft list tables 2>&1; true",
    ]);
    // Leave nothing behind before asserting anything.
    let down = run_cli(&["down", &name]);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for test in [
        "etcd::members::member_list",
        "snapshot::basic::save_and_restore",
    ] {
        let line = regex::Regex::new(&format!(r"(?m)^test {test} +\.\.\. ok$")).unwrap();
        assert!(line.is_match(&stdout), "{test} did not pass:\n{stdout}");
    }
    assert_eq!(made, Vec::<String>::new(), "the run created containers");
    assert_eq!(before, after, "the cluster's containers changed");
    assert_eq!(running, 3, "the cluster is left running");
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("cluster_sim"),
        "fault rules left: {}",
        text(&tables)
    );
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    for test in [
        "etcd::members::member_list",
        "snapshot::basic::save_and_restore",
    ] {
        let attached = format!(r#"<property name="{test}.attached" value="true"/>"#);
        assert!(junit.contains(&attached), "no {attached} in:\n{junit}");
    }
    assert!(down.status.success(), "{}", text(&down));
    assert!(containers(&[&label]).is_empty());
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn a_shared_groups_failed_cluster_is_kept_and_the_group_goes_on() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    // One thread: the group's tests take their turns in name order.
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::shared::", "--test-threads", "1"],
        &[("CLUSTER_SIM_KEEP_CLUSTER", "on-failure")],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out));
    // share_4 checks that it got a new cluster after the failure.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, result) in [
        ("share_3_fails", "FAILED"),
        ("share_4_gets_a_new_cluster", "ok"),
    ] {
        let line = regex::Regex::new(&format!(
            r"(?m)^test selftest::shared::{name} +\.\.\. {result}$"
        ))
        .unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{stdout}"
        );
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let kept: std::collections::BTreeSet<String> =
        regex::Regex::new(r"cluster ([a-z0-9-]+) was kept running")
            .unwrap()
            .captures_iter(&junit)
            .map(|c| c[1].to_string())
            .collect();
    let _cleanup: Vec<DownOnDrop> = kept.iter().cloned().map(DownOnDrop).collect();
    // Only the failed test's cluster; the replacement went with the group's last test.
    assert_eq!(kept.len(), 1, "{junit}");
    let name = kept.first().unwrap();
    let label = format!("label=cluster-sim.cluster={name}");
    assert_eq!(
        containers(&[
            &label,
            "label=cluster-sim.kept-by=selftest::shared::share_3_fails"
        ])
        .len(),
        1
    );
    let down = run_cli(&["down", name]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn a_walk_definitions_cluster_is_kept_once_its_walks_end_when_one_failed() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::walks::outcomes::"],
        &[("CLUSTER_SIM_KEEP_CLUSTER", "on-failure")],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let kept: std::collections::BTreeSet<String> =
        regex::Regex::new(r"cluster ([a-z0-9-]+) is kept running once every walk")
            .unwrap()
            .captures_iter(&junit)
            .map(|c| c[1].to_string())
            .collect();
    let _cleanup: Vec<DownOnDrop> = kept.iter().cloned().map(DownOnDrop).collect();
    // One cluster for the definition, named by each failed walk.
    assert_eq!(kept.len(), 1, "{junit}");
    let label = format!("label=cluster-sim.cluster={}", kept.first().unwrap());
    assert_eq!(
        containers(&[&label, "label=cluster-sim.node", "status=running"]).len(),
        1
    );
    let by = containers(&[&label, "label=cluster-sim.kept-by"]);
    assert_eq!(by.len(), 1, "no kept marker naming the walks: {by:?}");
    let down = run_cli(&["down", kept.first().unwrap()]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// `cluster-sim up` of the 2-node cluster the attach fixture suite's tests ask for (its inline
/// `nodes = 2`), named `<prefix>-<pid>`, removed when the guard drops.
fn up_attach_cluster(dir: &std::path::Path, prefix: &str) -> (String, DownOnDrop) {
    let spec = dir.join("inline.toml");
    std::fs::write(
        &spec,
        "name = \"inline\"\nnodes = 2\nimage = \"cluster-sim/node\"\n",
    )
    .unwrap();
    let name = format!("{prefix}-{}", std::process::id());
    let cleanup = DownOnDrop(name.clone());
    let up = run_cli(&["up", spec.to_str().unwrap(), "--name", &name]);
    assert!(up.status.success(), "{}", text(&up));
    (name, cleanup)
}

/// The attached cluster is as `up` left it after a test that partitioned it and stopped n2:
/// no partition listed, both nodes running. `when` names the moment in a failure.
fn assert_restored(name: &str, when: &str) {
    let faults = run_cli(&["faults", name]);
    assert!(faults.status.success(), "{}", text(&faults));
    assert!(
        !String::from_utf8_lossy(&faults.stdout).contains("partition"),
        "{when}: the partition outlived the test: {}",
        text(&faults)
    );
    let label = format!("label=cluster-sim.cluster={name}");
    assert_eq!(
        containers(&[&label, "label=cluster-sim.node", "status=running"]).len(),
        2,
        "{when}: the stopped node was not started again"
    );
}

#[test]
fn an_attached_tests_faults_are_undone_after_it() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (name, _cleanup) = up_attach_cluster(dir.path(), "keep-faults");
    // Twice: the second run finds the cluster as `up` left it.
    for round in 0..2 {
        let (pid, out) = spawn_binary(
            &example("attach_suite"),
            dir.path(),
            &["attach::faults::leaves_faults_behind", "--exact"],
            &[("CLUSTER_SIM_CLUSTER", &name)],
        );
        assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out));
        assert_eq!(leftovers(pid), Vec::<String>::new());
        assert_restored(&name, &format!("round {round}"));
    }
}

#[test]
fn an_interrupted_attached_tests_faults_are_undone_and_the_cluster_stays() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (name, _cleanup) = up_attach_cluster(dir.path(), "keep-int");
    for signal in ["INT", "TERM"] {
        let child = suite_command(&example("attach_suite"), dir.path())
            .args([
                "attach::faults::interrupted_with_faults_in_place",
                "--exact",
                "--ignored",
            ])
            .env("CLUSTER_SIM_CLUSTER", &name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the test's partition is in force (then it waits to be interrupted).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let faults = run_cli(&["faults", &name]);
            if String::from_utf8_lossy(&faults.stdout).contains("partition") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{signal}: the test never partitioned the cluster"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let kill = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("undoing what the test did to"),
            "{signal}: {}",
            text(&out)
        );
        assert_restored(&name, signal);
    }
}
