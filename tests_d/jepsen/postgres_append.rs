//! PostgreSQL under the list-append checker: a system no one here wrote, installed on the node
//! by the spec's `packages = ["postgresql"]` (fixtures/clusters/postgres.toml).
//!
//! Eight clients in the test process, each with its own connection (tokio-postgres), run short
//! transactions of appends and reads over a few keys of a table `(k int, v bigint[])`: append
//! is an upsert `v = v || x`, read a `SELECT`. Each transaction is recorded as one `txn`
//! operation (fixtures/histories/README.md); a serialization failure or deadlock is `fail`
//! (PostgreSQL rolled it back), a lost connection `info`.
//!
//! At SERIALIZABLE the checker must find nothing. At READ COMMITTED, where every statement sees
//! a fresh snapshot, it must find the anomalies that level allows and serializability rules
//! out (read skew, write skew, lost update) and none that read committed itself forbids.
//! `history.jsonl` and `cycles.svg` stay in the test's artifacts on failure.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use harness::prelude::*;

use history::txn::{Anomaly, Consistency, ListAppend, TxnSummary};
use history::{CheckReport, OpType, Recorder};
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, NoTls};

/// Concurrent clients.
const CLIENTS: u64 = 8;
/// Keys the transactions touch: few, so that they collide.
const KEYS: i64 = 5;
/// How long the clients run.
const RUN_FOR: Duration = Duration::from_secs(10);
/// Fewest committed transactions a run must have (about 150 on a 2-core machine under load).
const MIN_COMMITTED: usize = 50;

#[cluster_test(cluster = "postgres", timeout = "4m")]
async fn serializable_shows_no_anomaly(cluster: &Cluster) -> TestResult {
    let (report, _, committed) =
        run_workload(cluster, IsolationLevel::Serializable, "sr").await?;
    ensure!(
        report.valid(),
        "PostgreSQL at SERIALIZABLE: the checker found anomalies:\n{report}"
    );
    // The run must have tested something (most conflicting transactions roll back here).
    ensure!(
        committed >= MIN_COMMITTED,
        "only {committed} transactions committed"
    );
    Ok(())
}

#[cluster_test(cluster = "postgres", timeout = "4m")]
async fn read_committed_shows_its_anomalies(cluster: &Cluster) -> TestResult {
    let (report, summary, committed) =
        run_workload(cluster, IsolationLevel::ReadCommitted, "rc").await?;
    ensure!(
        committed >= MIN_COMMITTED,
        "only {committed} transactions committed"
    );
    ensure!(
        !report.valid(),
        "PostgreSQL at READ COMMITTED: the checker found no anomaly in {} transactions",
        summary.transactions
    );
    // What read committed allows and serializability forbids: read skew, write skew, lost
    // updates (with or without real-time order).
    let wanted = [
        Anomaly::GSingle,
        Anomaly::GSingleRealtime,
        Anomaly::G2Item,
        Anomaly::G2ItemRealtime,
        Anomaly::LostUpdate,
    ];
    let found: Vec<Anomaly> = summary.anomalies.keys().copied().collect();
    ensure!(
        found.iter().any(|a| wanted.contains(a)),
        "no G-single, G2-item or lost update among {found:?}:\n{report}"
    );
    // What read committed itself forbids: dirty writes, aborted and intermediate reads,
    // circular information flow (Adya's G0 and G1). A second read of a key seeing a later
    // commit (`internal`, a non-repeatable read) is allowed.
    let forbidden = [
        Anomaly::G0,
        Anomaly::G0Realtime,
        Anomaly::G1a,
        Anomaly::G1b,
        Anomaly::G1c,
        Anomaly::G1cRealtime,
    ];
    let bad: Vec<&Anomaly> = found.iter().filter(|a| forbidden.contains(a)).collect();
    ensure!(
        bad.is_empty(),
        "anomalies read committed forbids: {bad:?}\n{report}"
    );
    ensure!(
        summary.ruled_out.contains(&Consistency::Serializable),
        "serializable not ruled out:\n{report}"
    );
    ensure!(
        summary.not_ruled_out.contains(&Consistency::ReadCommitted),
        "read committed ruled out:\n{report}"
    );
    Ok(())
}

/// Creates a table of its own, runs the clients at `level`, and checks the history: the report,
/// its summary and how many transactions committed.
async fn run_workload(
    cluster: &Cluster,
    level: IsolationLevel,
    table_suffix: &str,
) -> anyhow::Result<(CheckReport, TxnSummary, usize)> {
    let dir = test_dir().context("the test has no artifact directory")?;
    let address = cluster.node("n1")?.address().to_owned();
    let table = format!("lists_{table_suffix}");
    let setup = connect(&address).await?;
    setup
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (k int PRIMARY KEY, v bigint[] NOT NULL)"
        ))
        .await
        .context("creating the table")?;

    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let values = Arc::new(AtomicI64::new(1));
    let deadline = tokio::time::Instant::now() + RUN_FOR;
    let mut clients = Vec::new();
    for process in 0..CLIENTS {
        let client = connect(&address).await?;
        let (rec, values, table) = (rec.clone(), values.clone(), table.clone());
        clients.push(tokio::spawn(async move {
            let mut client = client;
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (process + 1).wrapping_mul(0x2545_f491));
            while tokio::time::Instant::now() < deadline {
                let mops = generate(&mut rng, &values);
                let pending = rec.invoke(process, "txn", None, invocation(&mops));
                match transact(&mut client, level, &table, &mops).await {
                    Ok(done) => pending.ok(done),
                    Err(Outcome::Aborted(why)) => pending.fail(why),
                    Err(Outcome::Unknown(why)) => {
                        // The transaction may have committed; this client stops here.
                        pending.info(why);
                        return;
                    }
                }
            }
        }));
    }
    for c in clients {
        c.await.context("a client task panicked")?;
    }

    let ops = rec.ops();
    let acked = ops.iter().filter(|o| o.kind == OpType::Ok).count();
    let failed = ops.iter().filter(|o| o.kind == OpType::Fail).count();
    let report = history::check(&ops, &ListAppend)?;
    let summary = report
        .details::<TxnSummary>()
        .context("the list-append checker left no summary")?
        .clone();
    println!("{acked} transactions committed, {failed} rolled back\n{report}");
    if !summary.cycles.is_empty() {
        std::fs::write(dir.join("cycles.svg"), summary.svg())?;
    }
    Ok((report, summary, acked))
}

/// A connection as the superuser the spec's trust authentication lets in.
async fn connect(address: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(
        &format!("host={address} port=5432 user=postgres dbname=postgres connect_timeout=10"),
        NoTls,
    )
    .await
    .with_context(|| format!("connecting to PostgreSQL at {address}:5432"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection: {e}");
        }
    });
    Ok(client)
}

/// One micro-operation.
#[derive(Debug, Clone, Copy)]
enum Mop {
    Append(i64, i64),
    Read(i64),
}

/// How a transaction that did not commit ended.
enum Outcome {
    /// PostgreSQL rolled it back (a serialization failure, a deadlock, any error it reported
    /// before the commit was acknowledged, the commit refused).
    Aborted(String),
    /// The connection failed: it may or may not have committed.
    Unknown(String),
}

fn outcome(e: tokio_postgres::Error) -> Outcome {
    match e.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            Outcome::Aborted("serialization failure".into())
        }
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => {
            Outcome::Aborted("deadlock".into())
        }
        Some(_) => Outcome::Aborted(e.to_string()),
        None => Outcome::Unknown(e.to_string()),
    }
}

/// Runs the micro-operations in one transaction; the completed value (reads filled in).
async fn transact(
    client: &mut Client,
    level: IsolationLevel,
    table: &str,
    mops: &[Mop],
) -> Result<Value, Outcome> {
    let txn = client
        .build_transaction()
        .isolation_level(level)
        .start()
        .await
        .map_err(outcome)?;
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        match *mop {
            Mop::Append(k, v) => {
                txn.execute(
                    &format!(
                        "INSERT INTO {table} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                         ON CONFLICT (k) DO UPDATE SET v = t.v || $2::bigint"
                    ),
                    &[&(k as i32), &v],
                )
                .await
                .map_err(outcome)?;
                done.push(json!(["append", k, v]));
            }
            Mop::Read(k) => {
                let row = txn
                    .query_opt(&format!("SELECT v FROM {table} WHERE k = $1"), &[&(k as i32)])
                    .await
                    .map_err(outcome)?;
                let list: Vec<i64> = row.map(|r| r.get(0)).unwrap_or_default();
                done.push(json!(["r", k, list]));
            }
        }
    }
    txn.commit().await.map_err(outcome)?;
    Ok(Value::Array(done))
}

/// The invocation's value: reads unknown.
fn invocation(mops: &[Mop]) -> Value {
    Value::Array(
        mops.iter()
            .map(|m| match *m {
                Mop::Append(k, v) => json!(["append", k, v]),
                Mop::Read(k) => json!(["r", k, null]),
            })
            .collect(),
    )
}

/// Two to four micro-operations, half appends (each value appended once, ever), half reads.
fn generate(rng: &mut Rng, values: &AtomicI64) -> Vec<Mop> {
    let n = 2 + rng.below(3);
    (0..n)
        .map(|_| {
            let k = rng.below(KEYS as u64) as i64;
            if rng.below(2) == 0 {
                Mop::Append(k, values.fetch_add(1, Ordering::Relaxed))
            } else {
                Mop::Read(k)
            }
        })
        .collect()
}

/// xorshift64*: a client's own reproducible choices, no dependency for it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}
