//! `collect`: files gathered from every node into `<dir>/nodes/<node>/files/`, through the
//! neutral exec and file API, so it works the same on every backend.
//!
//! On the node: the globs are expanded by its shell (relative ones in its working directory),
//! the matches sized, and the ones that fit the cap copied whole (the one that crosses it keeps
//! its last bytes, where a log's news is) into a staging folder that travels as one tar file.

use std::path::Path;
use std::time::Duration;

use super::{Cluster, EventKind, Node};
use crate::exec::ExecRequest;
use crate::shell::quote as q;

/// What `collect` gathered from one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The node.
    pub node: String,
    /// Files written under `nodes/<node>/files/`.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Files cut short or left out by the cap (also listed in `nodes/<node>/files-cut.txt`).
    pub cut: Vec<String>,
    /// Why gathering failed, if it did.
    pub error: Option<String>,
}

/// Name of the note written beside `files/` when the cap cut something.
pub const CUT_NOTE: &str = "files-cut.txt";

impl Cluster {
    /// Gathers the files each node's `collect` globs match into `dir/nodes/<node>/files/`
    /// (an absolute `/var/log/x.log` lands at `files/var/log/x.log`, a relative `data/a.meta`
    /// at `files/data/a.meta`), at most the spec's `collect_limit` bytes per node. Best effort:
    /// a node that can't be read gets an `error` in its report and the others go on.
    ///
    /// When the cap cuts something, `dir/nodes/<node>/files-cut.txt` lists what
    /// and how much was kept. Returns one [`Collected`] per node that has `collect` globs (the
    /// others are skipped): how many files and bytes were written, what was cut, and the error
    /// if gathering failed there.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) {
    /// let dir = std::path::Path::new("target/collected");
    /// for c in cluster.collect_files(dir).await {
    ///     match &c.error {
    ///         None => println!("{}: {} files, {} bytes, {} cut", c.node, c.files, c.bytes, c.cut.len()),
    ///         Some(e) => println!("{}: {e}", c.node),
    ///     }
    /// }
    /// // target/collected/nodes/n1/files/log/kvd.log, ...
    /// # }
    /// ```
    pub async fn collect_files(&self, dir: &Path) -> Vec<Collected> {
        let limit = self.inner.spec.collect_limit;
        let jobs = self
            .nodes()
            .into_iter()
            .filter(|n| !n.spec().collect.is_empty())
            .map(|n| {
                let workdir = self
                    .addrs()
                    .iter()
                    .find(|a| a.name == n.name)
                    .map(|a| a.workdir.clone())
                    .unwrap_or_else(|| "/".into());
                let out = dir.join("nodes").join(&n.name);
                async move {
                    let mut report = match collect_node(&n, &workdir, &out, limit).await {
                        Ok(r) => r,
                        Err(e) => Collected {
                            error: Some(e),
                            ..Default::default()
                        },
                    };
                    report.node = n.name.clone();
                    n.cluster.emit(
                        Some(&n.name),
                        EventKind::Transfer,
                        match &report.error {
                            None => format!(
                                "collected {} files ({} bytes){}",
                                report.files,
                                report.bytes,
                                if report.cut.is_empty() {
                                    String::new()
                                } else {
                                    format!("; {} cut by the {limit}-byte cap", report.cut.len())
                                }
                            ),
                            Some(e) => format!("collect failed: {e}"),
                        },
                    );
                    report
                }
            });
        futures::future::join_all(jobs).await
    }
}

/// Runs a script on the node as a plain shell command with a generous deadline.
async fn sh(node: &Node, script: String) -> Result<Vec<u8>, String> {
    let mut req = ExecRequest::shell(script);
    req.timeout = Duration::from_secs(60);
    let out = node.run(req).await.map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("exit {}{}", out.code, out.tail()));
    }
    Ok(out.stdout.to_vec())
}

async fn collect_node(
    node: &Node,
    workdir: &str,
    out: &Path,
    limit: u64,
) -> Result<Collected, String> {
    let globs = node.spec().collect.join(" ");
    let cd = format!("cd {} 2>/dev/null || cd /", q(workdir));
    // One line per match: size, a tab, the path as the glob produced it.
    let listing = sh(
        node,
        format!(
            "{cd}; for p in {globs}; do [ -f \"$p\" ] && printf '%s\\t%s\\n' \"$(wc -c < \"$p\")\" \"$p\"; done; true"
        ),
    )
    .await?;
    let mut seen = std::collections::HashSet::new();
    let mut matches = Vec::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let Some((size, path)) = line.split_once('\t') else {
            continue;
        };
        let Ok(size) = size.trim().parse::<u64>() else {
            continue;
        };
        if seen.insert(path.to_string()) {
            matches.push((size, path.to_string()));
        }
    }
    let mut report = Collected::default();
    if matches.is_empty() {
        return Ok(report);
    }
    // Whole files while they fit; the one that crosses the cap keeps its tail; the rest wait
    // in the note.
    let mut left = limit;
    let mut puts = Vec::new();
    for (size, path) in &matches {
        let keep = (*size).min(left);
        left -= keep;
        if keep < *size {
            report.cut.push(format!(
                "{path}: {size} bytes, kept {}",
                if keep == 0 {
                    "none".to_string()
                } else {
                    format!("the last {keep}")
                }
            ));
        }
        if keep == 0 && *size > 0 {
            continue;
        }
        let stage = path.trim_start_matches('/');
        let how = if keep == *size {
            "all".to_string()
        } else {
            keep.to_string()
        };
        puts.push(format!("put {} {} {how}", q(path), q(stage)));
        report.files += 1;
        report.bytes += keep;
    }
    let script = format!(
        "set -e; S=$(mktemp -d); {cd}; \
         put() {{ d=\"$S/$2\"; mkdir -p \"$(dirname \"$d\")\"; if [ \"$3\" = all ]; then cat -- \"$1\" > \"$d\"; else tail -c \"$3\" -- \"$1\" > \"$d\"; fi; }}; \
         {}; tar -C \"$S\" -cf \"$S.tar\" .; rm -rf \"$S\"; echo \"$S.tar\"",
        puts.join("; ")
    );
    let tar_path = String::from_utf8_lossy(&sh(node, script).await?)
        .trim()
        .to_string();
    let data = node.read_file(&tar_path).await.map_err(|e| e.to_string());
    let _ = sh(node, format!("rm -f {}", q(&tar_path))).await;
    let data = data?;
    let files = out.join("files");
    std::fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
    tar::Archive::new(data.as_slice())
        .unpack(&files)
        .map_err(|e| format!("unpacking into {}: {e}", files.display()))?;
    if !report.cut.is_empty() {
        let note = format!(
            "collect_limit is {limit} bytes per node; these files were cut:\n{}\n",
            report.cut.join("\n")
        );
        let _ = std::fs::write(out.join(CUT_NOTE), note);
    }
    Ok(report)
}
