//! The listings: `ls` (clusters and their nodes) and `image ls` (node images), as a table
//! for people or `--json` for scripts.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Result};
use cluster_sim::{BackendError, ClusterSummary, Lookup};

use crate::json;

/// `cluster-sim ls [NAME] [--json]`.
pub async fn ls(
    lookup: &dyn Lookup,
    kind: &str,
    name: Option<String>,
    as_json: bool,
) -> Result<ExitCode> {
    let clusters = match name {
        None => lookup.clusters().await?,
        Some(name) => match lookup.nodes(&name).await {
            Err(BackendError::UnknownCluster(_)) => bail!("no cluster named {name:?}"),
            Err(e) => return Err(e.into()),
            Ok(nodes) => {
                // Whether it is kept only the full listing says.
                let kept = lookup
                    .clusters()
                    .await?
                    .into_iter()
                    .any(|c| c.name == name && c.kept);
                let mark = lookup
                    .clusters()
                    .await?
                    .into_iter()
                    .find(|c| c.name == name)
                    .map(|c| c.mark)
                    .unwrap_or_default();
                vec![ClusterSummary {
                    name,
                    kept,
                    mark,
                    nodes,
                }]
            }
        },
    };
    if as_json {
        json::print(
            "clusters",
            clusters.iter().map(|c| json::cluster(c, kind)).collect(),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:<10} {:<10} {:<15} {:<6} {:<24} KEPT BY",
        "CLUSTER", "NODE", "STATE", "ADDRESS", "KEPT", "WHERE"
    )?;
    for c in clusters {
        // Which test kept it (CLUSTER_SIM_KEEP_CLUSTER), or `up` for one `cluster-sim up` made.
        let by = match (&c.mark.by, c.kept) {
            (Some(test), true) => test.as_str(),
            (None, true) => "up",
            (_, false) => "-",
        };
        for n in &c.nodes {
            writeln!(
                out,
                "{:<28} {:<10} {:<10} {:<15} {:<6} {:<24} {}",
                c.name,
                n.name,
                n.state.to_string(),
                n.address,
                if c.kept { "yes" } else { "no" },
                n.place,
                by
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cluster-sim image ls [--json]`: the node images in the local engine, newest first.
pub async fn images(as_json: bool) -> Result<ExitCode> {
    let images = cluster_sim::image::list_local().await?;
    let created = |secs: i64| {
        let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or_default());
        humantime::format_rfc3339_seconds(t).to_string()
    };
    if as_json {
        let items = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "tag": i.tag,
                    "hash": i.hash,
                    "tags": i.tags,
                    "latest": i.latest(),
                    "id": i.id,
                    "size": i.size,
                    "created": created(i.created),
                })
            })
            .collect();
        json::print("images", items)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<30} {:<12} {:>9} {:<20} LATEST",
        "TAG", "ID", "SIZE", "CREATED"
    )?;
    for i in &images {
        let id = i.id.strip_prefix("sha256:").unwrap_or(&i.id);
        writeln!(
            out,
            "{:<30} {:<12} {:>7}MB {:<20} {}",
            i.tag,
            id.get(..12).unwrap_or(id),
            i.size.div_ceil(1_000_000),
            created(i.created),
            if i.latest() { "yes" } else { "" }
        )?;
    }
    if images.is_empty() {
        eprintln!("no node images (cluster-sim image build makes one)");
    }
    Ok(ExitCode::SUCCESS)
}
