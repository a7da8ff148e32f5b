//! `cluster-sim shell` and `cluster-sim logs --follow` on the real engine: a shell fed from a
//! pipe runs its commands in the node's working directory and exits with their code; a shell
//! under a pseudo-terminal (util-linux `script`) gets a TTY of the terminal's size; `logs
//! --follow` prints the lines the service logs after it started, prefixed by its node, once
//! each and in order, also across a restart of the node, and ends at SIGINT. Nothing of the cluster is left.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// A service that logs "service up", then every line appended to /tmp/say.
const SPEC: &str = r#"
name = "shell"
nodes = 2
image = "cluster-sim/node"

[service]
command = "touch /tmp/say; echo 'service up'; exec tail -F -n +1 /tmp/say"

[ready]
log = "^service up$"
timeout = "30s"
"#;

/// A cluster made by `cluster-sim up`, removed by `cluster-sim down` when dropped.
struct Up {
    name: String,
}

impl Up {
    async fn new(dir: &tempfile::TempDir) -> Result<Self> {
        let spec = dir.path().join("shell.toml");
        std::fs::write(&spec, SPEC)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("shell-{}-{:x}", std::process::id(), nanos & 0xfffff);
        let out = tokio::process::Command::new(CLI)
            .args(["up", spec.to_str().unwrap(), "--name", &name])
            .stdin(Stdio::null())
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Up { name })
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = std::process::Command::new(CLI)
            .args(["down", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

fn left(name: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=cluster-sim.cluster={name}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Appends ten numbered lines to what the service logs.
const SAY_TEN: &str = "for i in 0 1 2 3 4 5 6 7 8 9; do echo live-$i >> /tmp/say; done";

/// Runs `cluster-sim ARGS` on cluster `name`, which must succeed.
async fn cli(name: &str, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{name}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The lines read before `want` (which ends them), within 30 seconds.
async fn until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: &str,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .with_context(|| format!("no {want:?} within 30s; saw {seen:?}"))??
            .with_context(|| format!("follow ended; saw {seen:?}"))?;
        if line == want {
            return Ok(seen);
        }
        seen.push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_and_follow_on_the_real_engine() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let up = Up::new(&dir).await?;
    let name = up.name.clone();

    // Standard input from a pipe: the commands run in the node's working directory, and the
    // shell's exit code is the command's.
    let mut child = tokio::process::Command::new(CLI)
        .args(["shell", &name, "n1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"pwd; echo hi; test -t 0 || echo no-tty; exit 3\n")
        .await?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(3),
        "exit {:?}: {stdout} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(stdout == "/var/lib/cluster-sim\nhi\nno-tty\n", "{stdout:?}");

    // Under a pseudo-terminal of 123 columns and 45 rows: the node's shell has a TTY of
    // that size.
    let inner = format!("stty cols 123 rows 45; exec {CLI} shell {name} n2");
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"test -t 0 && echo has-a-tty; stty size; exit 5\n")
        .await?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(stdout.contains("has-a-tty"), "{stdout:?}");
    ensure!(stdout.contains("45 123"), "{stdout:?}");
    ensure!(
        out.status.code() == Some(5),
        "exit {:?}: {stdout:?}",
        out.status.code()
    );

    // logs --follow: a line logged after it started comes through, prefixed by its node.
    let mut follow = tokio::process::Command::new(CLI)
        .args(["logs", &name, "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(follow.stdout.take().context("stdout")?).lines();
    let say = tokio::process::Command::new(CLI)
        .args([
            "exec",
            &name,
            "n2",
            "--",
            "sh",
            "-c",
            "echo 'a live line' >> /tmp/say",
        ])
        .stdin(Stdio::null())
        .output()
        .await?;
    ensure!(
        say.status.success(),
        "{}",
        String::from_utf8_lossy(&say.stderr)
    );
    let seen = until(&mut lines, "n2 | a live line").await?;
    ensure!(seen.contains(&"n1 | service up".to_string()), "{seen:?}");

    // Lines written after follow started come once each, in order (live-9 ends them).
    cli(&name, &["exec", &name, "n2", "--", "sh", "-c", SAY_TEN]).await?;
    let ten = until(&mut lines, "n2 | live-9").await?;
    let live: Vec<_> = ten.iter().filter(|l| l.contains("live-")).collect();
    let want: Vec<_> = (0..9).map(|i| format!("n2 | live-{i}")).collect();
    ensure!(live == want.iter().collect::<Vec<_>>(), "{ten:?}");

    // A restarted node keeps its log: what was printed is not printed again, what the
    // service logs after the restart comes through.
    cli(
        &name,
        &["exec", &name, "n2", "--", "sh", "-c", ": > /tmp/say"],
    )
    .await?;
    cli(&name, &["restart", &name, "n2"]).await?;
    cli(
        &name,
        &[
            "exec",
            &name,
            "n2",
            "--",
            "sh",
            "-c",
            "echo after-restart >> /tmp/say",
        ],
    )
    .await?;
    let after = until(&mut lines, "n2 | after-restart").await?;
    ensure!(
        !after
            .iter()
            .any(|l| l.contains("live") || l.starts_with("n1 ")),
        "printed again: {after:?}"
    );
    let pid = follow.id().context("pid")?.to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(10), follow.wait()).await??;
    ensure!(status.code() == Some(130), "{status:?}");

    drop(up);
    ensure!(left(&name).is_empty(), "left: {}", left(&name));
    Ok(())
}
