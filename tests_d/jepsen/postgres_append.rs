//! PostgreSQL under the list-append checker: a system no one here wrote, installed on the node
//! by the spec's `packages = ["postgresql"]` (fixtures/clusters/postgres.toml).
//!
//! Eight clients in the test process, each with its own connection (tokio-postgres), driven by
//! the worker loop (`workload::Workers`), run short transactions of appends and reads over a few keys of a table `(k int, v bigint[])`: append
//! is an upsert `v = v || x`, read a `SELECT`. Each transaction is recorded as one `txn`
//! operation (fixtures/histories/README.md); a serialization failure or deadlock is `fail`
//! (PostgreSQL rolled it back), a lost connection `info`.
//!
//! At SERIALIZABLE the checker must find nothing. At READ COMMITTED, where every statement sees
//! a fresh snapshot, it must find the anomalies that level allows and serializability rules
//! out (read skew, write skew, lost update) and none that read committed itself forbids.
//! `history.jsonl` and `cycles.svg` stay in the test's artifacts on failure.

use harness::prelude::*;

use history::txn::{Anomaly, Consistency, ListAppend, TxnSummary};
use history::{CheckReport, Recorder};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, NoTls};
use workload::{Done, Draw, Invocation, Workers};

/// Concurrent clients, each with its own connection.
const CLIENTS: usize = 8;
/// Keys the transactions touch: few, so that they collide.
const KEYS: u64 = 5;
/// The workers' seed: the same transactions are drawn every run.
const SEED: u64 = 22;
/// How long the clients run.
const RUN_FOR: Duration = Duration::from_secs(15);
/// Fewest committed transactions a run must have (at READ COMMITTED, where transactions wait
/// on each other's row locks, 80 to 180 in 10 s on a 2-core machine under load).
const MIN_COMMITTED: usize = 40;

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

/// Creates a table of its own, runs the clients at `level` through the worker loop
/// (`workload::Workers`, one connection per worker), and checks the history: the report, its
/// summary and how many transactions committed.
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
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Mutex::new(connect(&address).await?));
    }

    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let ran = Workers::new(CLIENTS)
        .duration(RUN_FOR)
        // A transaction may wait on another's row lock; a timeout would leave it `info`.
        .op_timeout(Duration::from_secs(30))
        .seed(SEED)
        .run(&rec, generate, |call| {
            perform(&clients[call.worker], level, &table, call.op.value)
        })
        .await;

    let ops = rec.ops();
    let report = history::check(&ops, &ListAppend)?;
    let summary = report
        .details::<TxnSummary>()
        .context("the list-append checker left no summary")?
        .clone();
    println!(
        "{} transactions committed, {} rolled back, {} unknown\n{report}",
        ran.ok, ran.failed, ran.unknown
    );
    if !summary.cycles.is_empty() {
        std::fs::write(dir.join("cycles.svg"), summary.svg())?;
    }
    Ok((report, summary, ran.ok))
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

/// How a transaction that did not commit ended, for the worker loop: rolled back (a
/// serialization failure, a deadlock, any error PostgreSQL reported before the commit was
/// acknowledged, the commit refused) is `fail`; a failed connection, `info` (it may or may not
/// have committed).
fn outcome(e: tokio_postgres::Error) -> Done {
    match e.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            Done::Fail("serialization failure".into())
        }
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => Done::Fail("deadlock".into()),
        Some(_) => Done::Fail(e.to_string()),
        None => Done::Info(e.to_string()),
    }
}

/// Runs one `txn` operation's micro-operations in one transaction at `level`; on commit, the
/// micro-operations with the reads filled in.
async fn perform(client: &Mutex<Client>, level: IsolationLevel, table: &str, mops: Value) -> Done {
    let mut client = client.lock().await;
    match transact(&mut client, level, table, &mops).await {
        Ok(done) => Done::Returned(done),
        Err(e) => outcome(e),
    }
}

async fn transact(
    client: &mut Client,
    level: IsolationLevel,
    table: &str,
    mops: &Value,
) -> Result<Value, tokio_postgres::Error> {
    let txn = client
        .build_transaction()
        .isolation_level(level)
        .start()
        .await?;
    let mut done = Vec::new();
    for mop in mops.as_array().into_iter().flatten() {
        let (f, k, v) = (mop[0].as_str(), mop[1].as_i64().unwrap_or(0), mop[2].as_i64());
        match (f, v) {
            (Some("append"), Some(v)) => {
                txn.execute(
                    &format!(
                        "INSERT INTO {table} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                         ON CONFLICT (k) DO UPDATE SET v = t.v || $2::bigint"
                    ),
                    &[&(k as i32), &v],
                )
                .await?;
                done.push(json!(["append", k, v]));
            }
            _ => {
                let row = txn
                    .query_opt(&format!("SELECT v FROM {table} WHERE k = $1"), &[&(k as i32)])
                    .await?;
                let list: Vec<i64> = row.map(|r| r.get(0)).unwrap_or_default();
                done.push(json!(["r", k, list]));
            }
        }
    }
    txn.commit().await?;
    Ok(Value::Array(done))
}

/// A transaction of two to four micro-operations on random keys, half appends (each value
/// appended once, ever: the draw's unique number and the position), half reads.
fn generate(draw: &mut Draw<'_>) -> Invocation {
    let n = 2 + draw.rng.below(3);
    let mops: Vec<Value> = (0..n)
        .map(|i| {
            let k = draw.rng.below_u64(KEYS);
            if draw.rng.below(2) == 0 {
                json!(["append", k, draw.unique * 8 + i as u64])
            } else {
                json!(["r", k, null])
            }
        })
        .collect();
    Invocation::new("txn", Value::Array(mops))
}
