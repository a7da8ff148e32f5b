//! Leader election: kill the etcd leader; the survivors elect a new one, writes go on, and the
//! old leader rejoins and catches up once started again.

use harness::prelude::*;

/// Leader and members as `etcdctl endpoint status -w json` reports them.
struct Status {
    /// Member id of the leader every answering endpoint agrees on (0 = none).
    leader: u64,
    /// (endpoint, member id) of each answering member.
    members: Vec<(String, u64)>,
}

async fn status(node: &Node, endpoints: &str) -> anyhow::Result<Status> {
    let out = node
        .exec(format!(
            "etcdctl --endpoints={endpoints} endpoint status -w json"
        ))
        .await?
        .check()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("endpoint status is not JSON: {}", out.out()))?;
    let mut members = Vec::new();
    let mut leaders = Vec::new();
    for e in v.as_array().context("endpoint status is not a list")? {
        let endpoint = e["Endpoint"].as_str().unwrap_or_default().to_string();
        let id = e["Status"]["header"]["member_id"].as_u64().unwrap_or(0);
        leaders.push(e["Status"]["leader"].as_u64().unwrap_or(0));
        members.push((endpoint, id));
    }
    leaders.dedup();
    let leader = match leaders.as_slice() {
        [one] => *one,
        _ => 0,
    };
    Ok(Status { leader, members })
}

fn client_url(node: &Node) -> String {
    format!("http://{}:2379", node.address())
}

#[cluster_test(cluster = "etcd3", timeout = "2m")]
async fn new_leader_after_leader_killed(cluster: &Cluster) -> TestResult {
    let nodes = cluster.nodes();
    let all = nodes.iter().map(client_url).collect::<Vec<_>>().join(",");
    let first = wait_until(Duration::from_secs(20), || async {
        let s = status(&nodes[0], &all).await?;
        anyhow::ensure!(
            s.leader != 0 && s.members.len() == nodes.len(),
            "no agreed leader yet"
        );
        anyhow::Ok(Some(s))
    })
    .await?;
    let leader_url = first
        .members
        .iter()
        .find(|(_, id)| *id == first.leader)
        .map(|(url, _)| url.clone())
        .context("the leader is not among the members")?;
    let leader = nodes
        .iter()
        .find(|n| client_url(n) == leader_url)
        .context("no node has the leader's address")?
        .clone();
    let survivors: Vec<&Node> = nodes.iter().filter(|n| n.name() != leader.name()).collect();
    let survivor_urls = survivors
        .iter()
        .map(|n| client_url(n))
        .collect::<Vec<_>>()
        .join(",");

    leader.kill().await?;

    let second = wait_until(Duration::from_secs(30), || async {
        let s = status(survivors[0], &survivor_urls).await?;
        anyhow::ensure!(
            s.leader != 0 && s.leader != first.leader,
            "still no new leader (leader id {:x})",
            s.leader
        );
        anyhow::Ok(Some(s))
    })
    .await
    .context("no new leader after the old one was killed")?;
    ensure!(second.members.iter().any(|(_, id)| *id == second.leader));

    survivors[0]
        .exec("etcdctl put election/after new-leader")
        .await?
        .check()?;
    let read = survivors[1]
        .exec("etcdctl get --print-value-only election/after")
        .await?
        .check()?;
    ensure!(read.out() == "new-leader", "survivor read {:?}", read.out());

    // The old leader comes back as a follower and catches up.
    leader.start().await?;
    // `Ok(false)` is "not yet": the check holds only once the old leader serves the new key.
    wait_until(Duration::from_secs(30), || async {
        let out = leader
            .exec("etcdctl get --print-value-only election/after")
            .await?
            .check()?;
        anyhow::Ok(out.out() == "new-leader")
    })
    .await
    .context("the restarted old leader did not catch up")?;
    Ok(())
}
