//! `etcdctl member list` as a snapshot, with the values that change from run to run (member
//! ids, addresses) redacted: catches changes in membership shape, names and URLs layout.

use harness::prelude::*;

#[cluster_test(cluster = "etcd3")]
async fn member_list(cluster: &Cluster) -> TestResult {
    let out = cluster
        .node("n1")?
        .exec("etcdctl member list")
        .await?
        .check()?;
    // Member ids are random: order the lines by member name.
    let mut lines: Vec<&str> = out.stdout_str()?.lines().collect();
    lines.sort_by_key(|l| l.split(", ").nth(2).unwrap_or_default().to_string());
    let text = lines.join("\n");
    insta::with_settings!({
        filters => vec![
            (r"(?m)^[0-9a-f]{1,16}\b", "[member-id]"),
            (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "[address]"),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("etcd_member_list", text);
    });
    Ok(())
}
