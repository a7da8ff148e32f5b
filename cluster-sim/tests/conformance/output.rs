//! Conformance checks that exec output tells the truth: each command's output is its own, bytes
//! come back byte for byte, and a huge output costs bounded memory and is spooled whole.

use std::io::Read;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cluster_sim_core::{Cluster, ExecOutput, Node};

use super::{spec, wait_for, with_cluster, with_cluster_from, Target};

/// How many lines the background writer has written so far.
async fn ticks(n: &Node, path: &str) -> Option<u64> {
    let o = n
        .exec(format!("cat {path} 2>/dev/null | wc -l"))
        .await
        .ok()?;
    o.out().parse().ok()
}

/// A command's result shown with both streams, NULs and all, for failure messages.
fn shown(o: &ExecOutput) -> String {
    format!(
        "exit {}, stdout {:?}, stderr {:?}",
        o.code,
        o.stdout_lossy(),
        o.stderr_lossy()
    )
}

/// A background job left writing to both streams by one command never shows up in the output
/// of the commands after it (through the warm agent and through a fresh exec alike).
pub async fn background_writers_stay_out<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec("nodes = 1")?, |c| async move {
        let n = c.node("n1")?;
        let dir = format!("/tmp/{}-spam", c.name());
        let (tick, stop) = (format!("{dir}/ticks"), format!("{dir}/stop"));
        // The background job inherits the command's stdout and stderr, as in the report.
        let o = n
            .cmd(format!(
                "mkdir -p {dir}; while [ ! -e {stop} ]; do echo spam; echo spam >&2; echo x >> {tick}; sleep .1; done &"
            ))
            .timeout(Duration::from_secs(20))
            .run()
            .await?;
        ensure!(o.success(), "starting the background writer: {}", shown(&o));
        wait_for("the background writer to start", Duration::from_secs(20), || {
            let (n, tick) = (n.clone(), tick.clone());
            async move { ticks(&n, &tick).await.filter(|&k| k > 0) }
        })
        .await?;
        let result = async {
            for i in 0..10 {
                // The command lasts until the writer has gone round twice more, so it wrote on
                // both streams while this command ran.
                let cmd = format!(
                    "k=$(wc -l < {tick}); while [ $(wc -l < {tick}) -lt $((k + 2)) ]; do sleep .02; done; echo ok-{i}"
                );
                // Odd rounds take the engine's fresh exec on docker (a user switch).
                let o = if i % 2 == 0 {
                    n.exec(&cmd).await?
                } else {
                    n.cmd(&cmd).user("root").run().await?
                };
                ensure!(
                    o.code == 0
                        && o.stdout == format!("ok-{i}\n").as_bytes()
                        && o.stderr.is_empty(),
                    "round {i}: another command's output leaked in: {}",
                    shown(&o)
                );
            }
            Ok(())
        }
        .await;
        n.exec(format!("touch {stop}")).await?.check()?;
        result
    })
    .await
}

/// 100,000 bytes of every value, read back with `cat` on stdout and on stderr, come back
/// exactly; a strict text view names node and command.
pub async fn binary_output_is_exact<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec("nodes = 1")?, |c| async move {
        let n = c.node("n1")?;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let path = format!("/tmp/{}-binary.bin", c.name());
        n.write_file(&path, &data).await?;
        for (how, o) in [
            ("stdout", n.exec(format!("cat {path}")).await?),
            ("stdout (argv)", n.cmd_argv(["cat", &path]).run().await?),
            (
                "stdout (as root)",
                n.cmd(format!("cat {path}")).user("root").run().await?,
            ),
            ("stderr", n.exec(format!("cat {path} >&2")).await?),
        ] {
            let (got, other) = if how == "stderr" {
                (&o.stderr, &o.stdout)
            } else {
                (&o.stdout, &o.stderr)
            };
            ensure!(o.success(), "{how}: exit {} {:?}", o.code, o.stderr_lossy());
            ensure!(
                got.len() == data.len() && *got == data && other.is_empty(),
                "{how}: got {} bytes (other stream {} bytes) for {} sent",
                got.len(),
                other.len(),
                data.len()
            );
        }
        let o = n.exec(format!("cat {path}")).await?;
        let e = o.stdout_str().unwrap_err().to_string();
        ensure!(
            e.contains("n1") && e.contains("not UTF-8") && e.contains(&path),
            "{e}"
        );
        n.exec(format!("rm -f {path}")).await?.check()?;
        Ok(())
    })
    .await
}

/// The process's peak resident memory so far, in bytes.
fn peak_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kb * 1024)
}

/// The stream `yes LINE` prints, from byte `at`, `len` bytes long (`len` at most 64 lines).
fn yes_at(block: &[u8], line_len: usize, at: u64, len: usize) -> &[u8] {
    let r = (at % line_len as u64) as usize;
    &block[r..r + len]
}

/// 300 MB of output costs the test process far less than 300 MB, keeps the head and tail in
/// memory, and lands whole in the spool directory.
pub async fn big_output_is_bounded_and_spooled<T: Target>(t: &T) -> Result<()> {
    const TOTAL: usize = 300_000_000;
    const LINE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    let spool = tempfile::tempdir()?;
    let builder = Cluster::builder(spec("nodes = 1")?).spool_dir(spool.path());
    with_cluster_from(t, builder, |c| async move {
        let n = c.node("n1")?;
        let before = peak_rss()?;
        let o = n
            .exec(format!(
                "yes {} | head -c {TOTAL}",
                std::str::from_utf8(&LINE[..LINE.len() - 1])?
            ))
            .await?;
        let grew = peak_rss()?.saturating_sub(before);
        ensure!(o.success(), "exit {}: {}", o.code, o.tail());
        ensure!(
            grew < 200 << 20,
            "peak RSS grew by {} MB for {} MB of output",
            grew >> 20,
            TOTAL >> 20
        );
        let cut = o
            .stdout_truncated
            .as_ref()
            .context("300 MB of stdout was not marked truncated")?;
        ensure!(cut.total_bytes == TOTAL as u64, "{cut:?}");
        ensure!(o.stdout.len() == cut.head_len + cut.tail_len, "{cut:?}");
        ensure!(
            o.stdout.len() <= cluster_sim_core::exec::DEFAULT_OUTPUT_LIMIT,
            "{cut:?}"
        );
        // Compared in pieces against the stream `yes` prints (it repeats every line).
        let block: Vec<u8> = LINE.iter().copied().cycle().take(LINE.len() * 66).collect();
        let piece = LINE.len() * 64;
        let same = |got: &[u8], from: u64| {
            got.chunks(piece).enumerate().all(|(i, ch)| {
                ch == yes_at(&block, LINE.len(), from + (i * piece) as u64, ch.len())
            })
        };
        ensure!(same(&o.stdout[..cut.head_len], 0), "the kept head differs");
        ensure!(
            same(&o.stdout[cut.head_len..], (TOTAL - cut.tail_len) as u64),
            "the kept tail differs"
        );
        // The spooled file holds the whole stream, byte for byte.
        let path = cut
            .spool
            .as_ref()
            .with_context(|| format!("not spooled: {cut:?}"))?;
        ensure!(path.starts_with(spool.path()), "{}", path.display());
        let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut buf = vec![0u8; piece];
        let mut len = 0u64;
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            ensure!(
                len + k as u64 <= TOTAL as u64 && same(&buf[..k], len),
                "the spool file differs from the output near byte {len}"
            );
            len += k as u64;
        }
        ensure!(len == TOTAL as u64, "the spool file holds {len} bytes");
        let msg = o.tail();
        ensure!(
            msg.contains("300000000 bytes") && msg.contains(&path.display().to_string()),
            "{msg}"
        );
        Ok(())
    })
    .await
}
