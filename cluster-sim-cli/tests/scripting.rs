//! The CLI for scripts: `--json` listings on a live cluster (`ls`, `faults`, `image ls`), the
//! global `--backend` flag and its variable, one-line usage errors, completions, and plain
//! progress lines when stderr is not a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xfffff)
}

/// Runs the CLI with stdin closed and stdout and stderr captured (so neither is a terminal),
/// without the backend variables of the caller's environment.
fn cli(args: &[&str]) -> Output {
    cli_with(args, &[])
}

fn cli_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(CLI);
    cmd.args(args)
        .env_remove("CLUSTER_SIM_BACKEND")
        .env_remove("CLUSTER_SIM_INVENTORY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cluster-sim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout as JSON of the documented envelope: `{"version": 1, key: [...]}`; the list.
fn listing(o: &Output, key: &str) -> Vec<Value> {
    assert!(o.status.success(), "{}", stderr(o));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)));
    assert_eq!(v["version"], 1, "{v}");
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list: {v}"))
        .clone()
}

fn spec_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

/// Removes the cluster however the test ends.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let o = cli(&["down", &self.0]);
        if !o.status.success() && !std::thread::panicking() {
            panic!("down {}: {}", self.0, stderr(&o));
        }
    }
}

/// Replaces what differs between runs, so the shape can be a snapshot.
fn normalise(v: &mut Value, name: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), &*x) {
                    ("address", Value::String(_)) => *x = "<address>".into(),
                    ("place", Value::String(_)) => *x = "<image>".into(),
                    ("since_ms", Value::Number(_)) => *x = 0.into(),
                    _ => normalise(x, name),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, name)),
        Value::String(s) if s.contains(name) => *s = s.replace(name, "<cluster>"),
        _ => {}
    }
}

#[test]
fn ls_faults_and_image_ls_as_json_on_a_live_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("cli-json");
    let spec = spec_file(
        dir.path(),
        "name = \"json\"\nnodes = 2\n[ready]\ncommand = \"true\"\n",
    );
    let up = cli(&["up", spec.to_str().expect("utf-8 path"), "--name", &name]);
    let _down = Down(name.clone());
    assert!(up.status.success(), "up: {}", stderr(&up));
    assert_eq!(stdout(&up).trim(), name);
    // Not a terminal, two nodes: a plain line per step and per node, no escape codes.
    let progress = stderr(&up);
    assert!(
        progress.contains("cluster-sim: n2: ready after"),
        "{progress}"
    );
    assert!(!progress.contains('\x1b'), "{progress}");

    // Every cluster, and this one among them with its nodes.
    let all = listing(&cli(&["ls", "--json"]), "clusters");
    let ours = all
        .iter()
        .find(|c| c["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {all:?}"));
    let nodes = ours["nodes"].as_array().expect("nodes");
    let names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["n1", "n2"]);
    for n in nodes {
        assert_eq!(n["state"], "running", "{n}");
        assert!(n["address"].as_str().is_some_and(|a| !a.is_empty()), "{n}");
    }
    assert_eq!(ours["backend"], "docker");
    assert_eq!(ours["kept"], true);

    // Just this one, as a snapshot of the shape.
    let mut one = serde_json::from_slice::<Value>(&cli(&["ls", &name, "--json"]).stdout)
        .expect("ls NAME --json");
    let place = one["clusters"][0]["nodes"][0]["place"]
        .as_str()
        .expect("place")
        .to_string();
    normalise(&mut one, &name);
    insta::assert_snapshot!("ls_json", serde_json::to_string_pretty(&one).expect("json"));

    // The image the nodes run is listed.
    let images = listing(&cli(&["image", "ls", "--json"]), "images");
    let image = images
        .iter()
        .find(|i| {
            i["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| *t == place.as_str()))
        })
        .unwrap_or_else(|| panic!("{place} not in {images:?}"));
    assert!(image["size"].as_u64().is_some_and(|s| s > 0), "{image}");
    assert!(
        image["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:")),
        "{image}"
    );
    assert!(
        image["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{image}"
    );

    // No faults, then a partition.
    assert!(listing(&cli(&["faults", &name, "--json"]), "faults").is_empty());
    let cut = cli(&["partition", &name, "n1", "n2"]);
    assert!(cut.status.success(), "partition: {}", stderr(&cut));
    let o = cli(&["faults", &name, "--json"]);
    let faults = listing(&o, "faults");
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["kind"], "partition");
    assert_eq!(faults[0]["shape"], "n1 | n2");
    let mut shape: Value = serde_json::from_slice(&o.stdout).expect("faults --json");
    normalise(&mut shape, &name);
    insta::assert_snapshot!(
        "faults_json",
        serde_json::to_string_pretty(&shape).expect("json")
    );
    let heal = cli(&["heal", &name]);
    assert!(heal.status.success(), "heal: {}", stderr(&heal));
}

#[test]
fn a_cluster_that_does_not_exist_is_one_line_and_no_json() {
    let o = cli(&["ls", &unique("cli-none"), "--json"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no cluster named"), "{}", stderr(&o));
}

#[test]
fn the_global_backend_flag_and_its_variable_choose_the_backend() {
    // An unknown name: one line naming the known ones, before anything is contacted.
    for o in [
        cli(&["ls", "--backend", "nosuch"]),
        cli(&["--backend", "nosuch", "faults", "x"]),
        cli_with(&["ls"], &[("CLUSTER_SIM_BACKEND", "nosuch")]),
    ] {
        assert_eq!(o.status.code(), Some(2));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("docker, ssh, memory or swarm"), "{err}");
    }
    // ssh is chosen: it asks for its inventory, then reads the one given.
    let o = cli(&["ls", "--backend", "ssh"]);
    assert!(
        stderr(&o).contains("the ssh backend") && stderr(&o).contains("inventory"),
        "{}",
        stderr(&o)
    );
    let o = cli(&[
        "ls",
        "--backend",
        "ssh",
        "--inventory",
        "/nonexistent/inventory.toml",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/inventory.toml"),
        "{}",
        stderr(&o)
    );
    // The flag wins over the variable.
    let o = cli_with(
        &["ls", "--json", "--backend", "memory"],
        &[("CLUSTER_SIM_BACKEND", "ssh")],
    );
    assert!(listing(&o, "clusters").is_empty());
}

#[test]
fn a_bad_flag_is_one_line() {
    let o = cli(&["ls", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
}

#[test]
fn completions_for_each_shell() {
    let bash = cli(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = stdout(&bash);
    assert!(
        script.contains("cluster-sim") && script.contains(" up"),
        "{script}"
    );
    for shell in ["zsh", "fish"] {
        let o = cli(&["completions", shell]);
        assert!(
            o.status.success() && stdout(&o).contains("partition"),
            "{shell}"
        );
    }
    assert_eq!(cli(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn help_lists_the_global_flags() {
    let o = cli(&["--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!("help", stdout(&o));
}

/// Above ten nodes and not on a terminal: summaries, not a line per node (the memory backend:
/// nodes in this process, nothing left behind when it exits).
#[test]
fn many_nodes_in_a_log_get_summaries_not_a_line_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = spec_file(
        dir.path(),
        "name = \"many\"\nnodes = 12\n[ready]\ncommand = \"true\"\n",
    );
    let o = cli(&[
        "--backend",
        "memory",
        "up",
        spec.to_str().expect("utf-8 path"),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("ready after"), "{err}");
    assert!(
        err.lines().any(|l| l == "cluster-sim: 12/12 nodes ready"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err}");
}
