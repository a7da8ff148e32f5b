//! `cluster-sim serve` as a real process on loopback, driven with a real HTTP client: the
//! registry against a live docker cluster, a check of each status (a timeout is UNKNOWN),
//! parsers, actions (a command and a loopback webhook), history across a restart, the token
//! gate, 404s, the maintenance lock, suite runs and their cancellation, and a malformed check
//! file refused at start. Every wait polls a condition with a deadline.

#[path = "../../cluster-sim/tests/conformance/mod.rs"]
mod conformance;

use conformance::wait_for;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use cluster_sim::{Cluster, ClusterSpec};
use futures::FutureExt;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cluster-sim");
const TOKEN: &str = "s3cret-token-for-tests";

/// A server process; SIGTERM and wait on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `cluster-sim serve` on a free loopback port and waits for it to say where.
    fn start(dir: &Path, token: bool, extra: &[&str]) -> Result<Server> {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--checks"])
            .arg(dir.join("checks"))
            .arg("--db")
            .arg(dir.join("history.db"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if token {
            cmd.arg("--token-file").arg(dir.join("token"));
        }
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        // The first line says where it listens (or why it won't).
        let first = lines.next().transpose()?.unwrap_or_default();
        let Some(addr) = first.strip_prefix("cluster-sim: serving on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("server did not start: {first}");
        };
        let base = addr.trim().to_string();
        // Keep draining, so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Server { child, base })
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A request; returns the status code and the JSON body.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut r = client().request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await?;
    let code = resp.status().as_u16();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((code, v))
}

async fn get(url: &str) -> Result<Value> {
    let (code, v) = fetch(url).await?;
    ensure!(code == 200, "GET {url}: {code} {v}");
    Ok(v)
}

/// A GET with the token, whatever its status.
async fn fetch(url: &str) -> Result<(u16, Value)> {
    call(reqwest::Method::GET, url, Some(TOKEN), None).await
}

async fn delete(url: &str) -> Result<(u16, Value)> {
    call(reqwest::Method::DELETE, url, Some(TOKEN), None).await
}

async fn post(url: &str, body: Option<Value>) -> Result<(u16, Value)> {
    call(reqwest::Method::POST, url, Some(TOKEN), body).await
}

fn setup(checks: &[(&str, String)]) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("checks"))?;
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n"))?;
    for (name, text) in checks {
        std::fs::write(dir.path().join("checks").join(format!("{name}.toml")), text)?;
    }
    Ok(dir)
}

fn check(name: &str, cluster: &str, rest: &str) -> (&'static str, String) {
    let file: &'static str = Box::leak(name.to_string().into_boxed_str());
    (
        file,
        format!(
            "name = \"{name}\"\ncategory = \"smoke\"\ncomponent = \"node\"\ncluster = \"{cluster}\"\n{rest}\n"
        ),
    )
}

#[test]
fn malformed_check_file_is_refused_at_start_with_file_line_and_key() -> Result<()> {
    let (_, good) = check("good", "demo", "command = \"true\"");
    let dir = setup(&[
        ("good", good),
        (
            "bad",
            "name = \"bad\"\ncluster = \"demo\"\ncommand = \"true\"\ntimeout = \"soon\"\n".into(),
        ),
    ])?;
    let out = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--checks"])
        .arg(dir.path().join("checks"))
        .arg("--db")
        .arg(dir.path().join("h.db"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let bad = dir.path().join("checks/bad.toml");
    assert!(
        lines[0].starts_with(&format!("cluster-sim: error: {}:4:", bad.display())),
        "{stderr}"
    );
    assert!(
        lines[0].contains("key `timeout`: bad duration \"soon\""),
        "{stderr}"
    );
    // Nothing listened, so nothing was written either.
    assert!(!dir.path().join("h.db").exists());

    // A non-loopback address without a token is refused too.
    let out = Command::new(BIN)
        .args(["serve", "--bind", "0.0.0.0:0", "--checks"])
        .arg(dir.path().join("checks"))
        .arg("--db")
        .arg(dir.path().join("h.db"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn token_gate_404s_bad_requests_and_the_maintenance_lock() -> Result<()> {
    let dir = setup(&[check(
        "nowhere",
        "no-such-cluster-3f9a",
        "command = \"true\"",
    )])?;
    let s = Server::start(dir.path(), true, &[])?;
    let u = |p: &str| format!("{}{p}", s.base);

    // Every request needs the token, reads included.
    let (code, v) = call(reqwest::Method::GET, &u("/v1/checks"), None, None).await?;
    assert_eq!(code, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("bearer token"), "{v}");
    let (code, _) = call(reqwest::Method::GET, &u("/v1/checks"), Some("wrong"), None).await?;
    assert_eq!(code, 401);
    let list = get(&u("/v1/checks")).await?;
    assert_eq!(list[0]["name"], "nowhere");
    assert!(list[0]["status"].is_null());

    // Unknown things are 404 with a JSON message.
    let (code, v) = fetch(&u("/v1/checks/nope/history")).await?;
    assert_eq!(code, 404);
    assert_eq!(v["error"], "no check named \"nope\"");
    let (code, _) = post(&u("/v1/checks/nope/run"), None).await?;
    assert_eq!(code, 404);
    let (code, _) = fetch(&u("/v1/clusters/no-such-cluster-3f9a/nodes")).await?;
    assert_eq!(code, 404);
    let (code, _) = fetch(&u("/v1/runs/r-none")).await?;
    assert_eq!(code, 404);
    let (code, v) = fetch(&u("/v2/anything")).await?;
    assert_eq!(code, 404);
    assert!(v["error"].is_string());

    // A check on a cluster that does not exist is UNKNOWN, and says why.
    let (code, r) = post(&u("/v1/checks/nowhere/run"), None).await?;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "UNKNOWN");
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("no cluster named \"no-such-cluster-3f9a\""),
        "{r}"
    );

    // Bad bodies are 400.
    let (code, v) = post(&u("/v1/runs"), Some(json!({"filter": 3}))).await?;
    assert_eq!(code, 400, "{v}");
    let (code, v) = post(&u("/v1/runs"), Some(json!({"filter": "--list"}))).await?;
    assert_eq!(code, 400, "{v}");

    // The maintenance lock pauses checks; a second taker gets 409.
    let (code, v) = post(&u("/v1/maintenance"), Some(json!({"reason": "upgrade"}))).await?;
    assert_eq!(code, 200, "{v}");
    let (code, _) = post(&u("/v1/maintenance"), Some(json!({"reason": "again"}))).await?;
    assert_eq!(code, 409);
    let (code, v) = post(&u("/v1/checks/nowhere/run"), None).await?;
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("upgrade"), "{v}");
    let (code, _) = delete(&u("/v1/maintenance")).await?;
    assert_eq!(code, 200);
    let (code, _) = delete(&u("/v1/maintenance")).await?;
    assert_eq!(code, 409);
    drop(s);

    // Without a token file: reads work, anything that changes state is 401 and says why.
    let s = Server::start(dir.path(), false, &[])?;
    let u = |p: &str| format!("{}{p}", s.base);
    let (code, _) = call(reqwest::Method::GET, &u("/v1/checks"), None, None).await?;
    assert_eq!(code, 200);
    for (m, p) in [
        (reqwest::Method::POST, "/v1/checks/nowhere/run"),
        (reqwest::Method::POST, "/v1/maintenance"),
        (reqwest::Method::POST, "/v1/runs"),
        (reqwest::Method::DELETE, "/v1/runs/x"),
    ] {
        let (code, v) = call(m, &u(p), None, None).await?;
        assert_eq!(code, 401, "{p}: {v}");
        assert!(v["error"].as_str().unwrap().contains("--token-file"), "{v}");
    }
    Ok(())
}

/// A fake suite binary: writes a JUnit file with a pass and a failure; with the filter `slow`
/// it waits for SIGINT first, as the harness does, and exits 130.
const FAKE_SUITE: &str = r#"#!/bin/sh
echo "filter=$1"
cat > "$CLUSTER_SIM_JUNIT" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cluster-sim" tests="2" failures="1" errors="0">
<testsuite name="snapshot" tests="2" failures="1" errors="0">
<testcase name="basic::a" classname="snapshot"/>
<testcase name="basic::b" classname="snapshot"><failure message="boom">tail</failure></testcase>
</testsuite>
</testsuites>
EOF
mkdir -p "$CLUSTER_SIM_ARTIFACTS/snapshot::basic::b" && echo "node log" > "$CLUSTER_SIM_ARTIFACTS/snapshot::basic::b/test.log"
if [ "$1" = slow ]; then
  sleep 600 & p=$!
  trap 'kill $p; echo interrupted; exit 130' INT
  echo waiting > "$CLUSTER_SIM_ARTIFACTS/waiting"
  wait $p
fi
exit 1
"#;

#[tokio::test(flavor = "multi_thread")]
async fn runs_count_junit_serve_files_and_cancel_with_sigint() -> Result<()> {
    let dir = setup(&[])?;
    let suite = dir.path().join("suite.sh");
    std::fs::write(&suite, FAKE_SUITE)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&suite, std::fs::Permissions::from_mode(0o755))?;
    }
    let s = Server::start(dir.path(), true, &["--suite-bin", suite.to_str().unwrap()])?;
    let u = |p: &str| format!("{}{p}", s.base);

    let (code, v) = post(&u("/v1/runs"), Some(json!({"filter": "snapshot::basic"}))).await?;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let done = wait_for("the run to end", Duration::from_secs(30), || async {
        let v = get(&u(&format!("/v1/runs/{id}"))).await.ok()?;
        (v["finished"] == true).then_some(v)
    })
    .await?;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["exit_code"], 1);
    assert_eq!(
        done["counts"],
        json!({"tests": 2, "passed": 1, "failures": 1, "errors": 0, "skipped": 0})
    );
    let junit = client()
        .get(u(done["links"]["junit"].as_str().unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .text()
        .await?;
    assert!(junit.contains("<failure message=\"boom\">"), "{junit}");
    let log = client()
        .get(u(done["links"]["output"].as_str().unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .text()
        .await?;
    assert!(log.contains("filter=snapshot::basic"), "{log}");
    let listing = get(&u(done["links"]["artifacts"].as_str().unwrap())).await?;
    assert_eq!(listing[0]["name"], "snapshot::basic::b", "{listing}");
    // Nothing outside the run's folder.
    let (code, _) = fetch(&u(&format!("/v1/runs/{id}/files/..%2F..%2Fhistory.db"))).await?;
    assert_eq!(code, 404);
    // For scripts: the documented envelope, the run as the server gives it.
    for args in [
        &["runs", "show", &id, "--json"][..],
        &["runs", "list", "--json"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .args(["--server", &s.base, "--token-file"])
            .arg(dir.path().join("token"))
            .output()?;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(v["version"], 1, "{v}");
        let run = v["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["id"] == id.as_str()))
            .unwrap_or_else(|| panic!("{id} not in {v}"));
        assert_eq!(run["state"], "failed", "{run}");
    }

    // One at a time; DELETE sends SIGINT to the run's process group.
    let (code, v) = post(&u("/v1/runs"), Some(json!({"filter": "slow"}))).await?;
    assert_eq!(code, 201, "{v}");
    let slow = v["id"].as_str().unwrap().to_string();
    let art = dir
        .path()
        .join("runs")
        .join(&slow)
        .join("artifacts/waiting");
    wait_for("the slow run to wait", Duration::from_secs(30), || async {
        art.exists().then_some(())
    })
    .await?;
    let (code, v) = post(&u("/v1/runs"), Some(json!({"filter": "x"}))).await?;
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&slow), "{v}");
    let (code, v) = delete(&u(&format!("/v1/runs/{slow}"))).await?;
    assert_eq!(code, 202, "{v}");
    let done = wait_for(
        "the cancelled run to end",
        Duration::from_secs(30),
        || async {
            let v = get(&u(&format!("/v1/runs/{slow}"))).await.ok()?;
            (v["finished"] == true).then_some(v)
        },
    )
    .await?;
    assert_eq!(done["state"], "cancelled", "{done}");
    assert_eq!(done["exit_code"], 130, "{done}");
    let log = std::fs::read_to_string(dir.path().join("runs").join(&slow).join("output.log"))?;
    assert!(log.contains("interrupted"), "{log}");
    let (code, _) = delete(&u(&format!("/v1/runs/{slow}"))).await?;
    assert_eq!(code, 409);

    // The client.
    let out = Command::new(BIN)
        .args(["runs", "show", &id, "--server", &s.base, "--token-file"])
        .arg(dir.path().join("token"))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("state:   failed"), "{stdout}");
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    Ok(())
}

/// A loopback webhook receiver: answers 200 and hands each request body over.
async fn webhook() -> Result<(String, tokio::sync::mpsc::UnboundedReceiver<Value>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())
                                .flatten()
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let body = &buf[end + 4..end + 4 + len];
                        if let Ok(v) = serde_json::from_slice(body) {
                            let _ = tx.send(v);
                        }
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    Ok((url, rx))
}

const SPEC: &str = r#"
[limits]
memory = "256m"

[[node]]
name = "n1"
roles = ["front"]

[[node]]
name = "n2"
roles = ["back"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn registry_checks_of_each_status_actions_history_across_restart() -> Result<()> {
    let spec = ClusterSpec::parse(SPEC, "<serve test>", Path::new("."), "serve")?;
    let name = cluster_sim::cluster::unique_name("serve");
    let cluster = Cluster::builder(spec).name(&name).up().await?;
    let r = std::panic::AssertUnwindSafe(with_cluster(&cluster))
        .catch_unwind()
        .await;
    cluster.down().await?;
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

async fn with_cluster(cluster: &Cluster) -> Result<()> {
    let name = cluster.name();
    let (hook, mut hooks) = webhook().await?;
    let dir = tempfile::tempdir()?;
    let marks = dir.path().join("actions.log");
    let checks = vec![
        check("ok", name, "node = \"n1\"\ncommand = \"echo fine\""),
        check("warn", name, "node = \"n1\"\ncommand = \"echo meh; exit 1\""),
        check("error", name, "roles = [\"back\"]\ncommand = \"echo broken; exit 2\""),
        check("unknown", name, "node = \"n2\"\ncommand = \"exit 3\""),
        check("slow", name, "node = \"n1\"\ncommand = \"sleep 30\"\ntimeout = \"1s\""),
        check(
            "disk",
            name,
            "command = \"echo '{\\\"used\\\": 95}'\"\n[parse]\njson = \"/used\"\nwarn_above = 80\nerror_above = 90",
        ),
        check("tick", name, "node = \"n2\"\ncommand = \"echo tick\"\ninterval = \"1s\""),
        check(
            "flag",
            name,
            &format!(
                "node = \"n1\"\ncommand = \"test -f /tmp/flag && exit 2 || exit 0\"\n[[action]]\ncommand = \"echo $CHECK_NAME $CHECK_PREVIOUS $CHECK_STATUS >> {}\"\n[[action]]\non = [\"ERROR\"]\nwebhook = \"{hook}\"",
                marks.display()
            ),
        ),
    ];
    let setup_dir = setup(&checks)?;
    let d = setup_dir.path();
    let mut s = Server::start(d, true, &[])?;
    let u = |base: &str, p: &str| format!("{base}{p}");

    // The registry: our cluster, its nodes with roles, state and capabilities.
    let clusters = get(&u(&s.base, "/v1/clusters")).await?;
    let ours = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .with_context(|| format!("{name} not in {clusters}"))?;
    assert_eq!(ours["backend"], "docker");
    assert_eq!(ours["nodes"], 2);
    let nodes = get(&u(&s.base, &format!("/v1/clusters/{name}/nodes"))).await?;
    assert_eq!(nodes[0]["name"], "n1", "{nodes}");
    assert_eq!(nodes[0]["roles"], json!(["front"]));
    assert_eq!(nodes[1]["roles"], json!(["back"]));
    assert_eq!(nodes[0]["state"], "running");
    assert_eq!(nodes[0]["address"], cluster.node("n1")?.address());
    let caps = &nodes[0]["capabilities"];
    assert!(caps.is_object(), "{nodes}");
    assert!(caps["features"]["netem"].is_boolean(), "{caps}");
    assert!(caps["features"]["nft"].is_boolean(), "{caps}");
    assert_eq!(caps["limits"]["memory_bytes"], 256 * 1024 * 1024, "{caps}");
    assert!(
        caps["limits"]["host_cpus"].as_u64().unwrap_or(0) > 0,
        "{caps}"
    );
    let pkgs: Vec<&str> = caps["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(pkgs.contains(&"bash"), "{caps}");

    // Each status, forced.
    for (check, want) in [
        ("ok", "OK"),
        ("warn", "WARN"),
        ("error", "ERROR"),
        ("unknown", "UNKNOWN"),
        ("slow", "UNKNOWN"),
        ("disk", "ERROR"),
        ("flag", "OK"),
    ] {
        let (code, r) = post(&u(&s.base, &format!("/v1/checks/{check}/run")), None).await?;
        assert_eq!(code, 200, "{check}: {r}");
        assert_eq!(r["status"], want, "{check}: {r}");
        assert_eq!(r["forced"], true);
    }
    let r = get(&u(&s.base, "/v1/checks/slow/history?limit=1")).await?;
    assert_eq!(r[0]["nodes"][0]["timed_out"], true, "{r}");
    assert!(
        r[0]["summary"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{r}"
    );
    let r = get(&u(&s.base, "/v1/checks/error/history")).await?;
    assert_eq!(
        r[0]["nodes"].as_array().unwrap().len(),
        1,
        "roles = [\"back\"] is n2 only: {r}"
    );
    assert_eq!(r[0]["nodes"][0]["node"], "n2");
    let r = get(&u(&s.base, "/v1/checks/disk/history")).await?;
    assert_eq!(
        r[0]["nodes"].as_array().unwrap().len(),
        2,
        "every node: {r}"
    );
    assert_eq!(r[0]["nodes"][0]["value"], "95");
    assert_eq!(r[0]["nodes"][0]["code"], 0);

    // The interval check runs by itself.
    wait_for(
        "two scheduled runs of tick",
        Duration::from_secs(30),
        || async {
            let h = get(&u(&s.base, "/v1/checks/tick/history")).await.ok()?;
            let n = h
                .as_array()?
                .iter()
                .filter(|r| r["forced"] == false && r["status"] == "OK")
                .count();
            (n >= 2).then_some(())
        },
    )
    .await?;

    // A change of status fires the actions: the command always, the webhook on ERROR only.
    cluster.node("n1")?.exec("touch /tmp/flag").await?.check()?;
    let (_, r) = post(&u(&s.base, "/v1/checks/flag/run"), None).await?;
    assert_eq!(r["status"], "ERROR", "{r}");
    assert_eq!(r["changed"], true);
    let body = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
        .await?
        .context("webhook")?;
    assert_eq!(body["check"], "flag");
    assert_eq!(body["status"], "ERROR");
    assert_eq!(body["previous"], "OK");
    cluster.node("n1")?.exec("rm /tmp/flag").await?.check()?;
    let (_, r) = post(&u(&s.base, "/v1/checks/flag/run"), None).await?;
    assert_eq!(r["status"], "OK", "{r}");
    let lines = wait_for("both command actions", Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&marks).ok()?;
        (text.lines().count() >= 2).then_some(text)
    })
    .await?;
    assert_eq!(lines, "flag OK ERROR\nflag ERROR OK\n");
    assert!(hooks.try_recv().is_err(), "the webhook is for ERROR only");

    // The client: a table, exit 1 when a shown check is ERROR or UNKNOWN.
    let client = |args: &[&str]| -> Result<(i32, String)> {
        let out = Command::new(BIN)
            .arg("checks")
            .args(args)
            .env("CLUSTER_SIM_SERVER", &s.base)
            .env("CLUSTER_SIM_TOKEN", TOKEN)
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    };
    let (code, table) = client(&["--category", "smoke"])?;
    assert_eq!(code, 1, "{table}");
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("error ") && l.contains("ERROR")),
        "{table}"
    );
    let (code, table) = client(&["--errors"])?;
    assert_eq!(code, 1);
    assert!(!table.lines().any(|l| l.starts_with("ok ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("warn ")), "{table}");
    let (code, table) = client(&["--component", "nothing-here"])?;
    assert_eq!(code, 0, "{table}");
    let (code, table) = client(&["--component", "node", "--history", "2"])?;
    assert_eq!(code, 1);
    assert!(table.contains("(forced) "), "{table}");
    // For scripts: the same checks and exit code, as JSON, with each check's history.
    let (code, text) = client(&["--component", "node", "--history", "2", "--json"])?;
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&text)?;
    assert_eq!(v["version"], 1, "{v}");
    let shown = v["checks"].as_array().expect("checks");
    assert!(!shown.is_empty(), "{v}");
    assert!(
        shown
            .iter()
            .all(|c| c["component"] == "node" && c["history"].is_array()),
        "{v}"
    );

    // History and statuses survive a restart.
    let before = get(&u(&s.base, "/v1/checks/warn/history")).await?;
    s.stop();
    let s = Server::start(d, true, &[])?;
    let after = get(&u(&s.base, "/v1/checks/warn/history")).await?;
    assert_eq!(before, after);
    let views = get(&u(&s.base, "/v1/checks")).await?;
    let warn = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "warn")
        .unwrap();
    assert_eq!(warn["status"], "WARN", "{warn}");
    let (_, r) = post(&u(&s.base, "/v1/checks/warn/run"), None).await?;
    assert_eq!(
        r["changed"], false,
        "same status as before the restart: {r}"
    );
    let _keep: PathBuf = d.to_path_buf();
    Ok(())
}
