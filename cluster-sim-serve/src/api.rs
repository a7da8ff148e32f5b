//! The REST API (axum): routes, the bearer-token gate, and JSON errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::engine::{Engine, RunError};
use super::fleet::Fleet;
use super::registry::Registry;
use super::runs::{CancelError, RunState, Runs, StartError};

/// What every handler shares.
pub struct App {
    /// Checks.
    pub engine: Arc<Engine>,
    /// Nodes.
    pub fleet: Arc<Fleet>,
    /// Capabilities cache.
    pub registry: Registry,
    /// Suite runs.
    pub runs: Arc<Runs>,
    /// The bearer token, when the server was given one.
    pub token: Option<String>,
}

type St = State<Arc<App>>;

/// An error as the API returns it: a status and `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn new(code: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(code, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }
    fn bad(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }
    fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }
    fn internal(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/clusters", get(clusters))
        .route("/v1/clusters/{name}/nodes", get(nodes))
        .route("/v1/checks", get(checks))
        .route("/v1/checks/{name}", get(check))
        .route("/v1/checks/{name}/history", get(history))
        .route("/v1/checks/{name}/run", post(run_check))
        .route(
            "/v1/maintenance",
            get(maintenance)
                .post(take_maintenance)
                .delete(release_maintenance),
        )
        .route("/v1/runs", get(list_runs).post(start_run))
        .route("/v1/runs/{id}", get(show_run).delete(cancel_run))
        .route("/v1/runs/{id}/files", get(run_root))
        .route("/v1/runs/{id}/files/{*path}", get(run_file))
        .fallback(|| async { ApiError::not_found("no such endpoint (see GET /v1/health)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// With a token: every request carries it. Without one: reads only, since anyone on the
/// machine could otherwise run commands on the clusters through this server.
async fn gate(State(app): St, req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    match &app.token {
        Some(token) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match given {
                Some(g) if same(g.as_bytes(), token.as_bytes()) => next.run(req).await,
                Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong bearer token")
                    .into_response(),
                None => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this server needs a bearer token (Authorization: Bearer TOKEN; cluster-sim reads it from --token-file or CLUSTER_SIM_TOKEN)",
                )
                .into_response(),
            }
        }
        None if reads => next.run(req).await,
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server was started without --token-file, so it refuses every request that changes state; restart it with --token-file FILE and send that token",
        )
        .into_response(),
    }
}

async fn health(State(app): St) -> ApiResult {
    ok(json!({
        "ok": true,
        "checks": app.engine.views().len(),
        "maintenance": app.engine.maintenance(),
        "backend": app.fleet.backend.kind(),
    }))
}

async fn clusters(State(app): St) -> ApiResult {
    let list = app
        .registry
        .clusters(&app.fleet)
        .await
        .map_err(ApiError::internal)?;
    ok(list)
}

fn flag(q: &HashMap<String, String>, key: &str, default: bool) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None => Ok(default),
        Some("" | "1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(v) => Err(ApiError::bad(format!(
            "query parameter {key}={v:?}: expected true or false"
        ))),
    }
}

async fn nodes(
    State(app): St,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let probe = flag(&q, "probe", true)?;
    match app
        .registry
        .nodes(&app.fleet, &name, probe)
        .await
        .map_err(ApiError::internal)?
    {
        Some(nodes) => ok(nodes),
        None => Err(ApiError::not_found(format!("no cluster named {name:?}"))),
    }
}

async fn checks(State(app): St, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let errors = flag(&q, "errors", false)?;
    let views: Vec<_> = app
        .engine
        .views()
        .into_iter()
        .filter(|v| q.get("category").is_none_or(|c| &v.category == c))
        .filter(|v| q.get("component").is_none_or(|c| &v.component == c))
        .filter(|v| !errors || v.status.is_some_and(|s| s != super::Status::Ok))
        .collect();
    ok(views)
}

fn unknown_check(name: &str) -> ApiError {
    ApiError::not_found(format!("no check named {name:?}"))
}

async fn check(State(app): St, Path(name): Path<String>) -> ApiResult {
    match app.engine.views().into_iter().find(|v| v.name == name) {
        Some(v) => ok(v),
        None => Err(unknown_check(&name)),
    }
}

async fn history(
    State(app): St,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if !app.engine.has(&name) {
        return Err(unknown_check(&name));
    }
    let limit: u32 = match q.get("limit") {
        None => 20,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::bad(format!("limit={l:?}: expected 1 to 10000")))?,
    };
    let store = app.engine.store().clone();
    let rows = tokio::task::spawn_blocking(move || store.history(&name, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    ok(rows)
}

async fn run_check(State(app): St, Path(name): Path<String>) -> ApiResult {
    match app.engine.run_now(&name).await {
        Ok(r) => ok(r),
        Err(RunError::Unknown) => Err(unknown_check(&name)),
        Err(RunError::Maintenance(m)) => Err(ApiError::conflict(format!(
            "checks are paused for maintenance ({}); DELETE /v1/maintenance first",
            m.reason
        ))),
        Err(RunError::Store(e)) => Err(ApiError::internal(e)),
    }
}

async fn maintenance(State(app): St) -> ApiResult {
    ok(json!({ "maintenance": app.engine.maintenance() }))
}

/// A JSON body, or a 400 saying what is wrong with it; an empty body is `{}`.
fn body<T: for<'de> Deserialize<'de>>(b: &Bytes) -> Result<T, ApiError> {
    let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceBody {
    #[serde(default)]
    reason: String,
}

async fn take_maintenance(State(app): St, b: Bytes) -> ApiResult {
    let m: MaintenanceBody = body(&b)?;
    let reason = if m.reason.trim().is_empty() {
        "maintenance".to_string()
    } else {
        m.reason
    };
    match app
        .engine
        .take_maintenance(reason)
        .map_err(ApiError::internal)?
    {
        Ok(m) => ok(json!({ "maintenance": m })),
        Err(held) => Err(ApiError::conflict(format!(
            "the maintenance lock is already held ({})",
            held.reason
        ))),
    }
}

async fn release_maintenance(State(app): St) -> ApiResult {
    match app
        .engine
        .release_maintenance()
        .map_err(ApiError::internal)?
    {
        Some(m) => ok(json!({ "released": m })),
        None => Err(ApiError::conflict("no maintenance lock is held")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    filter: String,
}

async fn list_runs(State(app): St) -> ApiResult {
    ok(app.runs.list())
}

async fn start_run(State(app): St, b: Bytes) -> ApiResult {
    let r: RunBody = body(&b)?;
    match app.runs.start(r.filter) {
        Ok(info) => Ok((StatusCode::CREATED, Json(run_view(&app, info))).into_response()),
        Err(StartError::Busy(id)) => Err(ApiError::conflict(format!(
            "run {id} is under way; this server runs one at a time (DELETE /v1/runs/{id} to cancel it)"
        ))),
        Err(StartError::Bad(m)) => Err(ApiError::bad(m)),
        Err(StartError::Io(m)) => Err(ApiError::internal(m)),
    }
}

fn run_view(app: &App, info: super::runs::RunInfo) -> serde_json::Value {
    let base = format!("/v1/runs/{}/files", info.id);
    let counts = app.runs.counts(&info.id);
    json!({
        "id": info.id,
        "filter": info.filter,
        "state": info.state,
        "finished": !matches!(info.state, RunState::Building | RunState::Running),
        "created_ms": info.created_ms,
        "ended_ms": info.ended_ms,
        "exit_code": info.exit_code,
        "error": info.error,
        "counts": counts,
        "links": {
            "self": format!("/v1/runs/{}", info.id),
            "junit": format!("{base}/junit.xml"),
            "artifacts": format!("{base}/artifacts/"),
            "output": format!("{base}/output.log"),
        },
    })
}

async fn show_run(State(app): St, Path(id): Path<String>) -> ApiResult {
    match app.runs.get(&id) {
        Some(info) => ok(run_view(&app, info)),
        None => Err(ApiError::not_found(format!("no run {id:?}"))),
    }
}

async fn cancel_run(State(app): St, Path(id): Path<String>) -> ApiResult {
    match app.runs.cancel(&id) {
        Ok(info) => Ok((StatusCode::ACCEPTED, Json(run_view(&app, info))).into_response()),
        Err(CancelError::NotFound) => Err(ApiError::not_found(format!("no run {id:?}"))),
        Err(CancelError::Finished(info)) => Err(ApiError::conflict(format!(
            "run {id} has already ended ({})",
            serde_json::to_value(info.state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ))),
    }
}

async fn run_root(state: St, Path(id): Path<String>) -> ApiResult {
    run_file(state, Path((id, String::new()))).await
}

/// A run's file, or a folder's listing as JSON. Read-only, and never outside the run's folder.
async fn run_file(State(app): St, Path((id, path)): Path<(String, String)>) -> ApiResult {
    let Some(p) = app.runs.file(&id, path.trim_end_matches('/')) else {
        return Err(ApiError::not_found(format!(
            "run {id:?} has no file {path:?}"
        )));
    };
    if p.is_dir() {
        let mut entries = Vec::new();
        let mut rd = tokio::fs::read_dir(&p).await.map_err(ApiError::internal)?;
        while let Some(e) = rd.next_entry().await.map_err(ApiError::internal)? {
            let md = e.metadata().await.map_err(ApiError::internal)?;
            entries.push(json!({
                "name": e.file_name().to_string_lossy(),
                "dir": md.is_dir(),
                "size": md.len(),
            }));
        }
        entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        return ok(entries);
    }
    let file = tokio::fs::File::open(&p)
        .await
        .map_err(ApiError::internal)?;
    let kind = match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "xml" => "application/xml",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "log" | "txt" | "" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
