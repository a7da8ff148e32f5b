//! Service logs and hooks: readiness by a log line, `fail_on_log` failing a test whose body
//! passed (and `allow_log` exempting a line), and `[[hook]]`s at each point, one `after_up`
//! hook failing provisioning. Checked from outside by `harness/tests/logs_hooks.rs`.

use harness::prelude::*;

/// Makes the node's service log `line` and waits until it has.
async fn say(cluster: &Cluster, node: &str, line: &str) -> TestResult {
    let n = cluster.node(node)?;
    n.exec(format!("printf '%s\\n' '{line}' >> /tmp/say"))
        .await?
        .check()?;
    n.wait_for_log(&regex_escape(line), Duration::from_secs(10))
        .since_start()
        .await?;
    Ok(())
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cluster_test(cluster = "examples/logs_hooks_suite/logs.toml", timeout = "1m")]
async fn panic_in_service_log_fails(cluster: &Cluster) -> TestResult {
    say(cluster, "n2", "thread main panicked at src/main.rs:7:5").await
}

#[cluster_test(cluster = "examples/logs_hooks_suite/logs.toml", timeout = "1m")]
async fn allowed_line_passes(cluster: &Cluster) -> TestResult {
    say(
        cluster,
        "n1",
        "thread main panicked at src/main.rs:9:1, as expected",
    )
    .await
}

#[cluster_test(cluster = "examples/logs_hooks_suite/hooks.toml", timeout = "1m")]
async fn hooks_run(cluster: &Cluster) -> TestResult {
    for n in cluster.nodes() {
        let seen = n.exec("cat /tmp/after_up").await?.check()?;
        ensure!(!seen.out().is_empty(), "no after_up mark on {}", n.name());
    }
    let n2 = cluster.node("n2")?;
    n2.restart().await?;
    let restarts = n2.exec("cat /tmp/restarts").await?.check()?;
    ensure!(restarts.out() == "restarted", "{:?}", restarts.out());
    // The hook chose n2 only.
    let n1 = cluster.node("n1")?;
    n1.restart().await?;
    let none = n1.exec("test -e /tmp/restarts").await?;
    ensure!(!none.success(), "the n2 hook ran on n1");
    Ok(())
}

#[cluster_test(cluster = "examples/logs_hooks_suite/hook_fails.toml", timeout = "1m")]
async fn after_up_hook_fails(_cluster: &Cluster) -> TestResult {
    bail!("the body ran although the after_up hook failed")
}
