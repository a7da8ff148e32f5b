//! Service mode: `cluster-sim serve` (the REST server in `cluster_sim::serve`) and its clients,
//! `cluster-sim checks` and `cluster-sim runs`.
//!
//! The client is reqwest without TLS: it rides on the hyper and tokio this crate already builds
//! (bollard uses them), adds little compile time, and the server only speaks plain HTTP
//! (loopback by default; behind a TLS proxy otherwise).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cluster_sim::serve::{CheckResult, CheckView, RunState, ServeConfig, Server, Status, Suite};
use serde_json::Value;

/// Default server address of the clients.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// Service subcommands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Serve the node registry, suite runs and smoke checks over REST.
    Serve {
        /// Address to listen on; a non-loopback one needs --token-file.
        #[arg(long, default_value = "127.0.0.1:7878")]
        bind: SocketAddr,
        /// Folder of check files (*.toml, one check each).
        #[arg(long, value_name = "DIR")]
        checks: PathBuf,
        /// SQLite database for check history and the maintenance lock.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// File holding the bearer token. With it every request must carry the token; without
        /// it the server only answers reads.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Folder for runs' JUnit files and artifacts (default: runs/ beside the database).
        #[arg(long, value_name = "DIR")]
        runs_dir: Option<PathBuf>,
        /// The built tests_d binary (default: found with `cargo test --no-run` in --workspace
        /// on the first run).
        #[arg(long, value_name = "PATH")]
        suite_bin: Option<PathBuf>,
        /// The workspace to build the suite in.
        #[arg(long, value_name = "DIR", default_value = ".")]
        workspace: PathBuf,
        /// How long check results are kept.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        retention: Duration,
        /// At most this many results are kept per check.
        #[arg(long, default_value_t = 10_000)]
        keep: u32,
    },
    /// Show the smoke checks of a server; exits 1 when a shown check is ERROR or UNKNOWN.
    Checks {
        #[command(flatten)]
        conn: Conn,
        /// Only this category.
        #[arg(long)]
        category: Option<String>,
        /// Only this component.
        #[arg(long)]
        component: Option<String>,
        /// Only checks that are not OK.
        #[arg(long)]
        errors: bool,
        /// Run the shown checks now first.
        #[arg(long)]
        force: bool,
        /// Also show each check's last N results.
        #[arg(long, value_name = "N")]
        history: Option<u32>,
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
    /// Runs of the tests_d suite on a server.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
}

/// Where the server is and how to prove who we are.
#[derive(clap::Args, Debug)]
pub struct Conn {
    /// Server URL.
    #[arg(long, env = "CLUSTER_SIM_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// File holding the bearer token (else CLUSTER_SIM_TOKEN, the token itself).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// `cluster-sim runs ...`.
#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Start a run of the tests matching FILTER; prints its id.
    Start {
        #[command(flatten)]
        conn: Conn,
        /// Test filter, e.g. snapshot::basic.
        filter: String,
        /// Wait for the run to end; exit 0 only when it passed.
        #[arg(long)]
        wait: bool,
    },
    /// Show a run: state, counts and links.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// Run id.
        id: String,
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run (the suite tears its clusters down).
    Cancel {
        #[command(flatten)]
        conn: Conn,
        /// Run id.
        id: String,
    },
    /// List the runs, newest first.
    List {
        #[command(flatten)]
        conn: Conn,
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
}

/// Runs a service subcommand in a runtime of its own.
pub fn main(cmd: ServiceCommand) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster-sim: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cmd))
}

/// Runs a service subcommand.
pub async fn run(cmd: ServiceCommand) -> ExitCode {
    let r = match cmd {
        ServiceCommand::Serve {
            bind,
            checks,
            db,
            token_file,
            runs_dir,
            suite_bin,
            workspace,
            retention,
            keep,
        } => {
            let cfg = ServeConfig {
                bind,
                checks,
                db,
                token_file,
                runs_dir,
                suite: match suite_bin {
                    Some(p) => Suite::Binary(p),
                    None => Suite::Cargo(workspace),
                },
                retention: cluster_sim::serve::Retention {
                    max_age: retention,
                    max_per_check: keep,
                },
            };
            return serve(cfg).await;
        }
        ServiceCommand::Checks {
            conn,
            category,
            component,
            errors,
            force,
            history,
            json,
        } => {
            let only = Only {
                category,
                component,
                errors,
            };
            checks(conn, only, force, history, json).await
        }
        ServiceCommand::Runs { command } => runs(command).await,
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cluster-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: ServeConfig) -> ExitCode {
    let server = match Server::prepare(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cluster-sim: error: {e}");
            // Configuration (check files, token, address) is 2; the rest (engine, port) 1.
            return match e {
                cluster_sim::serve::ServeError::CheckFile { .. }
                | cluster_sim::serve::ServeError::Read { .. }
                | cluster_sim::serve::ServeError::Token { .. }
                | cluster_sim::serve::ServeError::NotLoopback { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            };
        }
    };
    if let Some(a) = server.local_addr() {
        eprintln!("cluster-sim: serving on http://{a}");
    }
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    match server.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster-sim: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An HTTP client for one server.
struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(conn: &Conn) -> Result<Client> {
        let token = match &conn.token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("token file {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var("CLUSTER_SIM_TOKEN")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        let base = conn.server.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--server {base:?}: expected a URL like {DEFAULT_SERVER}");
        }
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
            base,
            token,
        })
    }

    /// Sends a request; a non-2xx answer becomes the server's own message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}: is `cluster-sim serve` running there?"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = v["error"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            bail!("{method} {path}: {msg} (HTTP {})", status.as_u16());
        }
        Ok(v)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// A URL query value (check names, categories and components are plain words, but a user may
/// type anything).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn when(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Which checks `checks` shows.
struct Only {
    category: Option<String>,
    component: Option<String>,
    errors: bool,
}

async fn checks(
    conn: Conn,
    only: Only,
    force: bool,
    history: Option<u32>,
    json: bool,
) -> Result<ExitCode> {
    let Only {
        category,
        component,
        errors,
    } = only;
    let client = Client::new(&conn)?;
    let mut query = Vec::new();
    if let Some(c) = &category {
        query.push(format!("category={}", enc(c)));
    }
    if let Some(c) = &component {
        query.push(format!("component={}", enc(c)));
    }
    let list_path = format!("/v1/checks?{}", query.join("&"));
    let mut views: Vec<CheckView> = serde_json::from_value(client.get(&list_path).await?)?;
    if force {
        // All at once: each waits for its own nodes, so the slowest sets the pace.
        let client = &client;
        let runs = views.iter().map(|v| {
            let path = format!("/v1/checks/{}/run", enc(&v.name));
            async move { client.call(reqwest::Method::POST, &path, None).await }
        });
        for r in futures::future::join_all(runs).await {
            r?;
        }
        views = serde_json::from_value(client.get(&list_path).await?)?;
    }
    if errors {
        views.retain(|v| v.status != Some(Status::Ok));
    }
    let bad = views.iter().any(|v| v.status.is_some_and(Status::is_bad));
    let code = if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if json {
        let mut items = Vec::new();
        for v in &views {
            let mut item = serde_json::to_value(v)?;
            if let Some(n) = history {
                item["history"] = client
                    .get(&format!(
                        "/v1/checks/{}/history?limit={}",
                        enc(&v.name),
                        n.max(1)
                    ))
                    .await?;
            }
            items.push(item);
        }
        crate::json::print("checks", items)?;
        return Ok(code);
    }
    let mut out = String::new();
    let w = views.iter().map(|v| v.name.len()).max().unwrap_or(4).max(4);
    let wc = views
        .iter()
        .map(|v| v.category.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let wo = views
        .iter()
        .map(|v| v.component.len())
        .max()
        .unwrap_or(9)
        .max(9);
    out.push_str(&format!(
        "{:<w$}  {:<wc$}  {:<wo$}  {:<7}  {:<20}  SUMMARY\n",
        "NAME", "CATEGORY", "COMPONENT", "STATUS", "SINCE"
    ));
    for v in &views {
        let status = v
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<w$}  {:<wc$}  {:<wo$}  {:<7}  {:<20}  {}\n",
            v.name,
            v.category,
            v.component,
            status,
            v.since_ms.map(when).unwrap_or_else(|| "-".into()),
            v.last
                .as_ref()
                .map(|l| l.summary.as_str())
                .unwrap_or("never run")
        ));
        if let Some(n) = history {
            let rows: Vec<CheckResult> = serde_json::from_value(
                client
                    .get(&format!(
                        "/v1/checks/{}/history?limit={}",
                        enc(&v.name),
                        n.max(1)
                    ))
                    .await?,
            )?;
            for r in rows {
                out.push_str(&format!(
                    "    {}  {:<7}  {}{}\n",
                    when(r.at_ms),
                    r.status.to_string(),
                    if r.forced { "(forced) " } else { "" },
                    r.summary
                ));
            }
        }
    }
    print!("{out}");
    Ok(code)
}

fn print_run(v: &Value) {
    println!("id:      {}", v["id"].as_str().unwrap_or(""));
    println!("filter:  {}", v["filter"].as_str().unwrap_or(""));
    println!("state:   {}", v["state"].as_str().unwrap_or(""));
    if let Some(c) = v["exit_code"].as_i64() {
        println!("exit:    {c}");
    }
    if let Some(e) = v["error"].as_str() {
        println!("error:   {e}");
    }
    let c = &v["counts"];
    if c.is_object() {
        println!(
            "tests:   {} ({} passed, {} failed, {} errors, {} skipped)",
            c["tests"], c["passed"], c["failures"], c["errors"], c["skipped"]
        );
    }
    println!("junit:   {}", v["links"]["junit"].as_str().unwrap_or(""));
    println!(
        "files:   {}",
        v["links"]["artifacts"].as_str().unwrap_or("")
    );
}

async fn runs(cmd: RunsCommand) -> Result<ExitCode> {
    match cmd {
        RunsCommand::Start { conn, filter, wait } => {
            let client = Client::new(&conn)?;
            let v = client
                .call(
                    reqwest::Method::POST,
                    "/v1/runs",
                    Some(serde_json::json!({ "filter": filter })),
                )
                .await?;
            let id = v["id"].as_str().unwrap_or("").to_string();
            println!("{id}");
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                let v = client.get(&format!("/v1/runs/{}", enc(&id))).await?;
                if v["finished"].as_bool() == Some(true) {
                    print_run(&v);
                    let passed = v["state"].as_str() == Some("passed");
                    return Ok(if passed {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    });
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        RunsCommand::Show { conn, id, json } => {
            let v = Client::new(&conn)?
                .get(&format!("/v1/runs/{}", enc(&id)))
                .await?;
            if json {
                // The same shape as `runs list --json`: a list, here of one.
                crate::json::print("runs", vec![v])?;
                return Ok(ExitCode::SUCCESS);
            }
            print_run(&v);
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Cancel { conn, id } => {
            let v = Client::new(&conn)?
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/runs/{}", enc(&id)),
                    None,
                )
                .await?;
            eprintln!(
                "cluster-sim: cancelling {}",
                v["id"].as_str().unwrap_or(&id)
            );
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::List { conn, json } => {
            let v = Client::new(&conn)?.get("/v1/runs").await?;
            if json {
                let runs = v.as_array().cloned().unwrap_or_default();
                crate::json::print("runs", runs)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<32}  {:<10}  FILTER", "ID", "STATE");
            for r in v.as_array().into_iter().flatten() {
                let state: Option<RunState> = serde_json::from_value(r["state"].clone()).ok();
                println!(
                    "{:<32}  {:<10}  {}",
                    r["id"].as_str().unwrap_or(""),
                    state
                        .and_then(|s| serde_json::to_value(s).ok())
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    r["filter"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
