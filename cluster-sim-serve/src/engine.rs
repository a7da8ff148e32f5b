//! Running checks: on their interval (unless the maintenance lock is held) or when asked, on
//! each of their nodes through the backend, into one status, the history, and actions when the
//! status changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::check::{CheckDef, Target};
use super::fleet::Fleet;
use super::status::Status;
use super::store::{now_ms, CheckResult, Maintenance, NodeResult, Store};
use super::ServeError;
use cluster_sim_core::exec::ExecRequest;

/// How much of a node's output a result keeps (its tail).
const OUTPUT_KEEP: usize = 2048;

/// How long past a check's own deadline the server waits for the backend to report it: the
/// backend kills a command at the deadline, so this only covers a backend that hangs.
const EXEC_GRACE: Duration = Duration::from_secs(10);

/// What `GET /v1/checks` shows of a check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckView {
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Component.
    pub component: String,
    /// Cluster.
    pub cluster: String,
    /// `node n1`, `roles a,b` or `all nodes`.
    pub target: String,
    /// Interval (`10s`), absent for on-demand checks.
    pub interval: Option<String>,
    /// Deadline.
    pub timeout: String,
    /// The newest status (absent until the first run).
    pub status: Option<Status>,
    /// Since when the status holds (Unix ms).
    pub since_ms: Option<i64>,
    /// The newest result.
    pub last: Option<CheckResult>,
}

#[derive(Default)]
struct Latest {
    last: Option<CheckResult>,
    since_ms: Option<i64>,
}

/// Why a check did not run.
#[derive(Debug)]
pub enum RunError {
    /// No check of that name.
    Unknown,
    /// The maintenance lock is held.
    Maintenance(Maintenance),
    /// The history could not be written.
    Store(ServeError),
}

/// The checks, their latest results and the maintenance lock.
pub struct Engine {
    defs: BTreeMap<String, Arc<CheckDef>>,
    latest: Mutex<HashMap<String, Latest>>,
    /// One run of a check at a time (a forced run waits for a scheduled one, and vice versa).
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    maintenance: Mutex<Option<Maintenance>>,
    store: Arc<Store>,
    fleet: Arc<Fleet>,
    http: reqwest::Client,
}

impl Engine {
    /// Loads each check's newest result and the maintenance lock from the store.
    pub fn new(
        defs: Vec<CheckDef>,
        store: Arc<Store>,
        fleet: Arc<Fleet>,
    ) -> Result<Engine, ServeError> {
        let mut latest = HashMap::new();
        for d in &defs {
            let l = match store.latest(&d.name)? {
                Some((last, since)) => Latest {
                    last: Some(last),
                    since_ms: Some(since),
                },
                None => Latest::default(),
            };
            latest.insert(d.name.clone(), l);
        }
        let maintenance = store.maintenance()?;
        Ok(Engine {
            locks: defs
                .iter()
                .map(|d| (d.name.clone(), Arc::default()))
                .collect(),
            defs: defs
                .into_iter()
                .map(|d| (d.name.clone(), Arc::new(d)))
                .collect(),
            latest: Mutex::new(latest),
            maintenance: Mutex::new(maintenance),
            store,
            fleet,
            http: reqwest::Client::new(),
        })
    }

    /// The store behind the history.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether a check of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Every check with its newest result, by name.
    pub fn views(&self) -> Vec<CheckView> {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        self.defs
            .values()
            .map(|d| {
                let l = latest.get(&d.name);
                let last = l.and_then(|l| l.last.clone());
                CheckView {
                    name: d.name.clone(),
                    category: d.category.clone(),
                    component: d.component.clone(),
                    cluster: d.cluster.clone(),
                    target: match &d.target {
                        Target::Node(n) => format!("node {n}"),
                        Target::Roles(r) => format!("roles {}", r.join(",")),
                        Target::All => "all nodes".into(),
                    },
                    interval: d
                        .interval
                        .map(|i| humantime::format_duration(i).to_string()),
                    timeout: humantime::format_duration(d.timeout).to_string(),
                    status: last.as_ref().map(|r| r.status),
                    since_ms: l.and_then(|l| l.since_ms),
                    last,
                }
            })
            .collect()
    }

    /// The maintenance lock, if held.
    pub fn maintenance(&self) -> Option<Maintenance> {
        self.maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes the maintenance lock; `Ok(Err(held))` when someone holds it already.
    pub fn take_maintenance(
        &self,
        reason: String,
    ) -> Result<Result<Maintenance, Maintenance>, ServeError> {
        let mut m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = &*m {
            return Ok(Err(held.clone()));
        }
        let new = Maintenance {
            reason,
            since_ms: now_ms(),
        };
        self.store.take_maintenance(&new)?;
        *m = Some(new.clone());
        Ok(Ok(new))
    }

    /// Releases the lock; `None` when it was not held.
    pub fn release_maintenance(&self) -> Result<Option<Maintenance>, ServeError> {
        let mut m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        self.store.release_maintenance()?;
        Ok(m.take())
    }

    /// Runs a check now (waiting for a run already under way to finish first).
    pub async fn run_now(&self, name: &str) -> Result<CheckResult, RunError> {
        if let Some(m) = self.maintenance() {
            return Err(RunError::Maintenance(m));
        }
        let def = self.defs.get(name).ok_or(RunError::Unknown)?.clone();
        self.run(&def, true).await.map_err(RunError::Store)
    }

    /// Starts one task per check that has an interval. Each first runs at a point of its
    /// interval fixed by its name, so a hundred checks don't all start at once.
    pub fn schedule(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        self.defs
            .values()
            .filter_map(|d| Some((d.clone(), d.interval?)))
            .map(|(def, every)| {
                let engine = self.clone();
                tokio::spawn(async move {
                    let offset = spread(&def.name, every);
                    let mut next = tokio::time::Instant::now() + offset;
                    loop {
                        tokio::time::sleep_until(next).await;
                        if engine.maintenance().is_none() {
                            if let Err(e) = engine.run(&def, false).await {
                                tracing::warn!("check {}: {e}", def.name);
                            }
                        }
                        next += every;
                        let now = tokio::time::Instant::now();
                        if next < now {
                            // Fell behind (a run longer than the interval): skip, don't burst.
                            next = now + every;
                        }
                    }
                })
            })
            .collect()
    }

    async fn run(&self, def: &Arc<CheckDef>, forced: bool) -> Result<CheckResult, ServeError> {
        let lock = self.locks.get(&def.name).cloned().unwrap_or_default();
        let _one = lock.lock().await;
        let started = Instant::now();
        let nodes = match self.fleet.targets(def).await {
            Ok(targets) => {
                futures::future::join_all(targets.iter().map(|n| self.run_on(def, n))).await
            }
            Err(e) => vec![NodeResult {
                node: String::new(),
                status: Status::Unknown,
                code: None,
                timed_out: false,
                value: None,
                error: Some(e),
                output: String::new(),
                duration_ms: 0,
            }],
        };
        let status = nodes
            .iter()
            .map(|n| n.status)
            .fold(Status::Ok, Status::worst);
        let previous = {
            let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            latest
                .get(&def.name)
                .and_then(|l| l.last.as_ref().map(|r| r.status))
        };
        let result = CheckResult {
            id: 0,
            check: def.name.clone(),
            at_ms: now_ms(),
            status,
            changed: previous != Some(status),
            forced,
            summary: summary(&nodes, status),
            duration_ms: started.elapsed().as_millis() as u64,
            nodes,
        };
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut r = result;
            store.insert(&mut r).map(|()| r)
        })
        .await
        .map_err(|e| ServeError::Serve(std::io::Error::other(e.to_string())))??;
        {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            let l = latest.entry(def.name.clone()).or_default();
            if result.changed || l.since_ms.is_none() {
                l.since_ms = Some(result.at_ms);
            }
            l.last = Some(result.clone());
        }
        // A first result fires actions only when it is bad news: "started, all fine" is noise.
        if result.changed && !def.actions.is_empty() && (previous.is_some() || status != Status::Ok)
        {
            let (http, def, r) = (self.http.clone(), def.clone(), result.clone());
            tokio::spawn(async move { super::actions::fire(&http, &def, previous, &r).await });
        }
        Ok(result)
    }

    async fn run_on(&self, def: &CheckDef, node: &str) -> NodeResult {
        let mut req = ExecRequest::shell(def.command.clone());
        req.timeout = def.timeout;
        req.user = def.user.clone();
        req.capture.limit = Some(64 * 1024);
        let started = Instant::now();
        let r = tokio::time::timeout(
            def.timeout + EXEC_GRACE,
            self.fleet.backend.exec(&def.cluster, node, &req),
        )
        .await;
        let mut n = NodeResult {
            node: node.to_string(),
            status: Status::Unknown,
            code: None,
            timed_out: false,
            value: None,
            error: None,
            output: String::new(),
            duration_ms: 0,
        };
        match r {
            Err(_) => {
                n.timed_out = true;
                n.error = Some(format!(
                    "no answer from the backend within {}",
                    humantime::format_duration(def.timeout + EXEC_GRACE)
                ));
            }
            Ok(Err(e)) => n.error = Some(e.to_string()),
            Ok(Ok(out)) => {
                let stdout = out.stdout_lossy();
                n.output = tail(&format!("{stdout}{}", out.stderr_lossy()));
                if out.timed_out {
                    n.timed_out = true;
                    n.error = Some(format!(
                        "timed out after {}",
                        humantime::format_duration(def.timeout)
                    ));
                } else {
                    n.code = Some(out.code);
                    n.status = Status::from_exit(out.code);
                    if let Some(p) = &def.parser {
                        let parsed = p.judge(&stdout);
                        n.value = parsed.value;
                        n.status = n.status.worst(parsed.status);
                    }
                }
            }
        }
        n.duration_ms = started.elapsed().as_millis() as u64;
        n
    }
}

/// A point in `0..every` fixed by the name.
fn spread(name: &str, every: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = every.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The last [`OUTPUT_KEEP`] bytes, cut at a character boundary.
fn tail(s: &str) -> String {
    if s.len() <= OUTPUT_KEEP {
        return s.to_string();
    }
    let mut start = s.len() - OUTPUT_KEEP;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

/// One line: how many nodes are OK, and what the worst one said.
fn summary(nodes: &[NodeResult], status: Status) -> String {
    let Some(worst) = nodes.iter().find(|n| n.status == status) else {
        return status.to_string();
    };
    let what = worst
        .error
        .clone()
        .or_else(|| worst.value.as_ref().map(|v| format!("value {v}")))
        .or_else(|| {
            worst
                .output
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(String::from)
        })
        .unwrap_or_default();
    let code = worst
        .code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let who = if worst.node.is_empty() {
        String::new()
    } else {
        format!("{}: ", worst.node)
    };
    let ok = nodes.iter().filter(|n| n.status == Status::Ok).count();
    let count = if nodes.len() > 1 {
        format!("{ok}/{} nodes OK; ", nodes.len())
    } else {
        String::new()
    };
    let mut line = format!("{count}{who}{status}{code}: {what}");
    if line.len() > 300 {
        let mut end = 300;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}
