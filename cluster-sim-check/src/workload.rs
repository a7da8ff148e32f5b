//! Workloads: concurrent clients that drive a real store on the nodes and record every operation
//! in a [`Recorder`], for the checkers to judge. [`Workers`] is the loop for your own client (a
//! generator of operations and an async closure that performs them); beside it, ready-made
//! ones: an etcd register (get, put, cas through a txn, with `etcdctl` on the nodes) and a
//! redis set (SADD acknowledged with WAIT, SMEMBERS).
//!
//! A client is a tokio task bound to one node (client `i` talks to node `i mod n`). An operation
//! whose outcome is unknown (a timeout, a lost connection) is recorded `info`, and the client
//! continues as a new process, as Jepsen does, since the old operation may still take effect.
//! Clients stop invoking when their history is stopped (a `Watch` found an anomaly).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::{Pending, Recorder};
use cluster_sim_core::cluster::{Cluster, Node};
use cluster_sim_core::rng::SplitMix64 as Rng;
use cluster_sim_core::shell::quote;
use cluster_sim_core::{BackendError, ExecError};

mod workers;

pub use workers::{Call, Done, Draw, Invocation, Ran, Workers};

/// How many clients run, for how long, and the seed of their operation mix. Every field is
/// public; the default is 5 clients for 30 s, 3 s per operation, seed 1.
///
/// ```no_run
/// use cluster_sim_check::history::Recorder;
/// use cluster_sim_check::workload::{Clients, EtcdRegister};
/// use std::time::Duration;
///
/// # async fn demo(cluster: &cluster_sim_core::Cluster) {
/// let rec = Recorder::new();
/// let clients = Clients { clients: 3, duration: Duration::from_secs(10), ..Clients::default() };
/// EtcdRegister::default().run(cluster, &rec, &clients).await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Clients {
    /// Concurrent clients.
    pub clients: usize,
    /// How long they issue operations.
    pub duration: Duration,
    /// Deadline of one operation; past it the outcome is unknown (`info`).
    pub op_timeout: Duration,
    /// Seed for the operation mix.
    pub seed: u64,
}

impl Default for Clients {
    fn default() -> Self {
        Self {
            clients: 5,
            duration: Duration::from_secs(30),
            op_timeout: Duration::from_secs(3),
            seed: 1,
        }
    }
}

/// The worker loop with these clients' count, duration, operation deadline and seed.
impl From<&Clients> for Workers {
    fn from(c: &Clients) -> Self {
        Workers::new(c.clients)
            .duration(c.duration)
            .op_timeout(c.op_timeout)
            .seed(c.seed)
    }
}

/// How one command ended, for recording.
enum Outcome {
    Ok(String),
    /// Known not to have taken effect.
    Fail(String),
    /// Unknown.
    Info(String),
}

async fn run(node: &Node, cmd: String, timeout: Duration) -> Outcome {
    match node.cmd(cmd).timeout(timeout).run().await {
        Ok(o) if o.timed_out => Outcome::Info(format!("timed out after {timeout:?}")),
        Ok(o) if o.success() => Outcome::Ok(o.out().to_string()),
        // The client never reached the server: the operation did not happen.
        Ok(o) if refused(&o.tail()) => Outcome::Fail(format!("exit {}{}", o.code, o.tail())),
        Ok(o) => Outcome::Info(format!("exit {}{}", o.code, o.tail())),
        // The command never started (its node is down): it did not happen.
        Err(
            e @ ExecError::Backend {
                source: BackendError::NotRunning { .. },
                ..
            },
        ) => Outcome::Fail(e.to_string()),
        Err(e) => Outcome::Info(e.to_string()),
    }
}

/// Whether a client's error output says it never reached the server.
fn refused(output: &str) -> bool {
    output.contains("connection refused")
        || output.contains("Connection refused")
        || output.contains("Could not connect")
}

/// Runs `clients` tasks until `duration` passes, each calling `step(client, process, rng)` in a
/// loop; `step` returns whether the process must change (its last operation's outcome is unknown).
/// A step that took under 20 ms is followed by a short pause, so a client whose node is down
/// paces itself instead of spinning on instant errors.
async fn drive<F, Fut>(opts: &Clients, rec: &Recorder, step: F)
where
    F: Fn(usize, u64, Rng) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (bool, Rng)> + Send,
{
    let until = Instant::now() + opts.duration;
    let n = opts.clients.max(1);
    let tasks: Vec<_> = (0..n)
        .map(|client| {
            let rec = rec.clone();
            let step = step.clone();
            let mut rng = Rng::new(
                opts.seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(client as u64),
            );
            tokio::spawn(async move {
                let mut process = client as u64;
                // A stopped history (a `Watch` found an anomaly) ends the clients too.
                while Instant::now() < until && !rec.is_stopped() {
                    let began = Instant::now();
                    let (crashed, next) = step(client, process, rng).await;
                    if began.elapsed() < Duration::from_millis(20) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    rng = next;
                    if crashed {
                        process += n as u64;
                        // Pace a client whose node is unreachable instead of spinning on it.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// An etcd register per key: clients read, write and cas random small values with `etcdctl`
/// on their node. Reads are linearizable (etcd's default); a cas is a txn comparing the value
/// (or, from `null`, that the key doesn't exist).
#[derive(Debug, Clone)]
pub struct EtcdRegister {
    /// Keys the clients spread over.
    pub keys: Vec<String>,
}

impl Default for EtcdRegister {
    fn default() -> Self {
        Self {
            keys: (1..=3).map(|i| format!("k{i}")).collect(),
        }
    }
}

impl EtcdRegister {
    /// Runs the clients against `cluster`'s nodes, recording into `rec`.
    pub async fn run(&self, cluster: &Cluster, rec: &Recorder, opts: &Clients) {
        let nodes = cluster.nodes();
        let keys = self.keys.clone();
        let timeout = opts.op_timeout;
        let rec = rec.clone();
        drive(opts, &rec.clone(), move |client, process, mut rng| {
            let node = nodes[client % nodes.len()].clone();
            let key = keys[rng.below_u64(keys.len() as u64) as usize].clone();
            let rec = rec.clone();
            async move {
                let etcdctl = format!(
                    "etcdctl --dial-timeout=1s --command-timeout={}ms",
                    timeout.as_millis().saturating_sub(500).max(500)
                );
                let cmd_timeout = timeout + Duration::from_secs(1);
                let crashed = match rng.below_u64(3) {
                    0 => {
                        let p = rec.invoke(process, "read", Some(&key), Value::Null);
                        let out = run(
                            &node,
                            format!("{etcdctl} get --print-value-only {}", quote(&key)),
                            cmd_timeout,
                        )
                        .await;
                        // A read changes nothing: whatever went wrong, it did not happen.
                        match out {
                            Outcome::Ok(v) => {
                                p.ok(v
                                    .trim()
                                    .parse::<i64>()
                                    .map(Value::from)
                                    .unwrap_or(Value::Null));
                                false
                            }
                            Outcome::Fail(e) | Outcome::Info(e) => {
                                p.fail(e);
                                false
                            }
                        }
                    }
                    1 => {
                        let v = rng.below_u64(5) as i64;
                        let p = rec.invoke(process, "write", Some(&key), v);
                        let out = run(
                            &node,
                            format!("{etcdctl} put {} {v}", quote(&key)),
                            cmd_timeout,
                        )
                        .await;
                        record(p, out)
                    }
                    _ => {
                        let old = rng.below_u64(5) as i64;
                        let old = if old == 4 {
                            Value::Null
                        } else {
                            Value::from(old)
                        };
                        let new = rng.below_u64(5) as i64;
                        let p = rec.invoke(
                            process,
                            "cas",
                            Some(&key),
                            Value::Array(vec![old.clone(), Value::from(new)]),
                        );
                        let compare = match &old {
                            Value::Null => format!("version(\"{key}\") = \"0\""),
                            v => format!("value(\"{key}\") = \"{v}\""),
                        };
                        let script = format!(
                            "printf '%s\\n\\n%s\\n\\n\\n' {} {} | {etcdctl} txn",
                            quote(&compare),
                            quote(&format!("put {key} {new}"))
                        );
                        match run(&node, script, cmd_timeout).await {
                            Outcome::Ok(out) if out.starts_with("SUCCESS") => {
                                p.ok_same();
                                false
                            }
                            Outcome::Ok(out) if out.starts_with("FAILURE") => {
                                p.fail("compare failed");
                                false
                            }
                            Outcome::Ok(out) => {
                                p.info(format!("unexpected txn output {out:?}"));
                                true
                            }
                            other => record(p, other),
                        }
                    }
                };
                (crashed, rng)
            }
        })
        .await;
    }
}

/// Records an outcome; returns whether it was unknown (the process must change).
fn record(p: Pending, out: Outcome) -> bool {
    match out {
        Outcome::Ok(_) => {
            p.ok_same();
            false
        }
        Outcome::Fail(e) => {
            p.fail(e);
            false
        }
        Outcome::Info(e) => {
            p.info(e);
            true
        }
    }
}

/// A redis set: clients add unique elements with SADD on the primary and count an add
/// acknowledged only when WAIT confirms `replicas` replicas have it; `final_read` reads the set
/// from a node.
#[derive(Debug, Clone)]
pub struct RedisSet {
    /// The set's key.
    pub key: String,
    /// Replicas WAIT must confirm (0: acknowledged on the primary's reply alone).
    pub replicas: usize,
}

impl Default for RedisSet {
    fn default() -> Self {
        Self {
            key: "s".into(),
            replicas: 1,
        }
    }
}

impl RedisSet {
    /// Adds elements through `primary` until the clients' time is up.
    pub async fn add(&self, primary: &Node, rec: &Recorder, opts: &Clients) {
        let key = self.key.clone();
        let replicas = self.replicas;
        let timeout = opts.op_timeout;
        let primary = primary.clone();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rec = rec.clone();
        drive(opts, &rec.clone(), move |_client, process, rng| {
            let primary = primary.clone();
            let key = key.clone();
            let rec = rec.clone();
            let counter = counter.clone();
            async move {
                let e = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as i64;
                let p = rec.invoke(process, "add", None, e);
                let wait_ms = timeout.as_millis().saturating_sub(500).max(100);
                let cmd = format!(
                    "redis-cli --no-raw -e sadd {key} {e} >/dev/null && redis-cli WAIT {replicas} {wait_ms}"
                );
                let out = run(&primary, cmd, timeout + Duration::from_secs(1)).await;
                let crashed = match out {
                    Outcome::Ok(acks) => {
                        let acks: usize = acks
                            .trim()
                            .trim_start_matches("(integer)")
                            .trim()
                            .parse()
                            .unwrap_or(0);
                        if acks >= replicas {
                            p.ok_same();
                            false
                        } else {
                            // On the primary, not confirmed on replicas: unknown.
                            p.info(format!("WAIT confirmed {acks} of {replicas} replicas"));
                            true
                        }
                    }
                    other => record(p, other),
                };
                (crashed, rng)
            }
        })
        .await;
    }

    /// Reads the whole set from `node` as process `process` (the checker's final read).
    pub async fn final_read(&self, node: &Node, rec: &Recorder, process: u64) -> bool {
        let p = rec.invoke(process, "read", None, Value::Null);
        match run(
            node,
            format!("redis-cli smembers {}", self.key),
            Duration::from_secs(10),
        )
        .await
        {
            Outcome::Ok(out) => {
                let items: Vec<Value> = out
                    .lines()
                    .filter_map(|l| l.trim().parse::<i64>().ok())
                    .map(Value::from)
                    .collect();
                p.ok(Value::Array(items));
                true
            }
            Outcome::Fail(e) | Outcome::Info(e) => {
                p.fail(e);
                false
            }
        }
    }
}
