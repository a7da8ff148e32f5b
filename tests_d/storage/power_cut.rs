//! What survives what on a node's `faulty_dirs`: killing the node (a process crash) keeps the
//! writes it never synced, as the kernel's page cache does; `lose_unsynced` (a power cut) puts
//! every file back to its size and bytes at its last sync, overwrites and truncations included.

use harness::prelude::*;

#[cluster_test(cluster = "faulty1", requires = ["fuse"])]
async fn a_kill_keeps_unsynced_writes_and_a_power_cut_takes_them_back(
    cluster: &Cluster,
) -> TestResult {
    let n1 = cluster.node("n1")?;
    // Synced: `f` holds 0..9, `g` holds "keep".
    n1.exec("printf 0123456789 > data/f && printf keep > data/g && sync data/f data/g")
        .await?
        .check()?;
    // Unsynced: an overwrite in the middle of f, an append to it, g cut short, a new file.
    n1.exec(
        "printf XY | dd of=data/f bs=1 seek=3 conv=notrunc 2>/dev/null \
         && printf tail >> data/f && truncate -s 1 data/g && printf new > data/h",
    )
    .await?
    .check()?;

    n1.kill().await?;
    n1.start().await?;
    let after_kill = n1
        .exec("cat data/f; echo; cat data/g; echo; cat data/h")
        .await?
        .check()?;
    ensure!(
        after_kill.out() == "012XY56789tail\nk\nnew",
        "a kill lost unsynced writes: {:?}",
        after_kill.out()
    );

    let said = cluster.lose_unsynced("n1").await?;
    ensure!(said.contains("dropped"), "lose_unsynced said {said:?}");
    let after_cut = n1
        .exec("cat data/f; echo; cat data/g; echo; wc -c < data/h")
        .await?
        .check()?;
    ensure!(
        after_cut.out() == "0123456789\nkeep\n0",
        "the power cut did not put the synced state back: {:?}",
        after_cut.out()
    );
    Ok(())
}
