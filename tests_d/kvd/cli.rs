//! No tests: the helpers the kvd suites share. They drive kvd through the `kvd cli` of the
//! node's own binary (`exec` on the node), so they work on every backend and speak whichever
//! kvd version the node runs.

use harness::prelude::*;

/// The port kvd listens on in `fixtures/clusters/kvd*.toml`.
pub const PORT: u16 = 7400;

/// `kvd cli <command>` against the node's own kvd: its answer, or an error if it failed.
pub async fn kv(node: &Node, command: &str) -> anyhow::Result<String> {
    let out = node
        .exec(format!("kvd cli 127.0.0.1:{PORT} {command}"))
        .await?
        .check()?;
    Ok(out.out().to_string())
}

/// Writes `key<from..=to>` = `value <i>` on the primary, each acknowledged with its offset `i`.
pub async fn write(primary: &Node, from: u64, to: u64) -> anyhow::Result<()> {
    for i in from..=to {
        let r = kv(primary, &format!("SET key{i} value {i}")).await?;
        ensure!(r == format!("OK {i}"), "SET key{i} -> {r:?}");
    }
    Ok(())
}

/// The follower holds `key = value` and as many writes as the primary.
pub async fn caught_up(node: &Node, key: &str, value: &str, offset: u64) -> anyhow::Result<()> {
    let got = kv(node, &format!("GET {key}")).await?;
    ensure!(got == format!("VALUE {value}"), "{}: GET {key} -> {got:?}", node.name());
    let info = kv(node, "INFO").await?;
    ensure!(
        info == format!("ROLE follower OFFSET {offset}"),
        "{}: INFO -> {info:?}",
        node.name()
    );
    Ok(())
}

/// The node's kvd log.
pub async fn kvd_log(node: &Node) -> anyhow::Result<String> {
    let out = node
        .exec("cat \"$CLUSTER_SIM_WORKDIR/log/kvd.log\"")
        .await?
        .check()?;
    Ok(out.out().to_string())
}
