//! I/O errors, delays and corruption under a node's `faulty_dirs`, through the fault
//! filesystem: an error rule makes the shell's write fail with EIO while reads go on, `heal`
//! ends it; a delay slows writes under its path and nowhere else; a read rule flips bits; a torn
//! write keeps half of the next write and says it all went.

use std::time::Duration;

use harness::prelude::*;

use fault::{Corruption, FaultKind, IoOp};

/// The file's bytes as the filesystem returns them (direct I/O: not the kernel's page cache).
async fn read_direct(node: &Node, path: &str) -> anyhow::Result<Vec<u8>> {
    let out = node
        .exec(format!("dd if={path} iflag=direct bs=65536 2>/dev/null"))
        .await?
        .check()?;
    Ok(out.stdout.to_vec())
}

#[cluster_test(cluster = "faulty1", requires = ["fuse"])]
async fn io_errors_fail_writes_until_heal(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec("echo before > data/kept").await?.check()?;
    let fault = cluster.io_error("n1", "data", IoOp::Write, "EIO", 1.0).await?;
    ensure!(
        matches!(fault.kind, FaultKind::Storage { .. }),
        "recorded as {fault}"
    );
    ensure!(cluster.faults().await?.len() == 1, "the fault is not listed");

    let failed = n1.exec("echo x > data/f").await?;
    ensure!(!failed.success(), "the write succeeded under an EIO rule");
    ensure!(
        failed.stderr_lossy().contains("Input/output error"),
        "not an I/O error: {}",
        failed.tail()
    );
    // Reads are not covered by a write rule.
    let kept = n1.exec("cat data/kept").await?.check()?;
    ensure!(kept.out() == "before", "read {:?}", kept.out());

    let ended = cluster.heal().await?;
    ensure!(ended.len() == 1, "heal ended {ended:?}");
    n1.exec("echo x > data/f && grep -qx x data/f").await?.check()?;
    Ok(())
}

#[cluster_test(cluster = "faulty1", requires = ["fuse"])]
async fn corruption_flips_reads_and_tears_the_next_write(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec("printf 0123456789abcdef > data/f && sync data/f")
        .await?
        .check()?;
    ensure!(read_direct(&n1, "data/f").await? == b"0123456789abcdef", "bad start");

    cluster.corrupt("n1", "data/f", Corruption::FlipRead).await?;
    let got = read_direct(&n1, "data/f").await?;
    let flipped: u32 = got
        .iter()
        .zip(b"0123456789abcdef")
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    ensure!(got.len() == 16 && flipped == 1, "expected one flipped bit, read {got:?}");
    cluster.heal().await?;
    ensure!(read_direct(&n1, "data/f").await? == b"0123456789abcdef", "heal did not end it");

    cluster.corrupt("n1", "data/t*", Corruption::TornWrite).await?;
    // The write reports success; only its first half reached the file.
    n1.exec("printf 0123456789 > data/t1 && printf 0123456789 > data/t2")
        .await?
        .check()?;
    let t1 = read_direct(&n1, "data/t1").await?;
    ensure!(t1.starts_with(b"01234") && !t1.ends_with(b"56789"), "t1 is {t1:?}");
    // Once: the next write is whole.
    ensure!(read_direct(&n1, "data/t2").await? == b"0123456789", "t2 was torn too");
    cluster.heal().await?;
    Ok(())
}

/// How long writing a small file takes on the node, in milliseconds (timed on the node, so the
/// exec's own round trip is not counted).
async fn write_ms(node: &Node, path: &str) -> anyhow::Result<u64> {
    let out = node
        .exec(format!(
            "s=$(date +%s%N); echo x > {path}; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))"
        ))
        .await?
        .check()?;
    Ok(out.out().trim().parse()?)
}

#[cluster_test(cluster = "faulty1", requires = ["fuse"])]
async fn io_delay_slows_writes_under_its_path_until_heal(cluster: &Cluster) -> TestResult {
    const DELAY: Duration = Duration::from_millis(400);
    let n1 = cluster.node("n1")?;
    n1.exec("mkdir -p data/slow data/fast").await?.check()?;
    let fault = cluster.io_delay("n1", "data/slow", DELAY).await?;
    ensure!(
        matches!(fault.kind, FaultKind::Storage { .. }),
        "recorded as {fault}"
    );
    let slow = write_ms(&n1, "data/slow/f").await?;
    let fast = write_ms(&n1, "data/fast/f").await?;
    println!("a write under the delay took {slow} ms; outside it {fast} ms");
    let delay = DELAY.as_millis() as u64;
    // A functional bound, not a speed target: the delayed write waited at least once.
    ensure!(slow >= delay, "a write under a {delay} ms delay took {slow} ms");
    // The other path does not carry the delay: well short of the delayed write.
    ensure!(
        fast + delay / 2 < slow,
        "a write outside the delayed path took {fast} ms (the delayed one {slow} ms)"
    );
    let ended = cluster.heal().await?;
    ensure!(ended.len() == 1, "heal ended {ended:?}");
    let healed = write_ms(&n1, "data/slow/g").await?;
    println!("after heal: {healed} ms");
    ensure!(
        healed + delay / 2 < slow,
        "a write after heal took {healed} ms (the delayed one {slow} ms)"
    );
    let content = n1.exec("cat data/slow/f data/slow/g").await?.check()?;
    ensure!(content.out() == "x\nx", "wrote {:?}", content.out());
    Ok(())
}
