//! `accord serve`: ledgers on the network for a team. A JSON API that is the command line
//! over HTTP (every answer the CLI's JSON, every refusal its words), tokens with roles, the
//! log as a live stream, and a web page, all over the same engine as the CLI.
//!
//! The server is a face, like the CLI: it parses requests, calls the engine (on blocking
//! threads, off the async ones), and renders answers with `present`. Appends go through one
//! writer thread per ledger that group-commits: the appends waiting when it is free are
//! validated one after the other and made durable with one flush
//! (`engine::Engine::append_group`).
//!
//! ```no_run
//! let settings = server::Settings {
//!     listen: "127.0.0.1:0".into(),
//!     ledgers: vec![("main".into(), "accord.db".into())],
//!     tokens: None,
//!     max_body: 64 << 20,
//!     cors: None,
//!     config: engine::Config::new(chrono::Utc::now),
//!     header_timeout: server::HEADER_TIMEOUT,
//!     idle_timeout: server::IDLE_TIMEOUT,
//! };
//! let server = server::Server::bind(settings).unwrap();
//! server
//!     .run(
//!         |addr| println!("listening on http://{addr}"),
//!         Box::new(|line| eprintln!("{line}")),
//!     )
//!     .unwrap();
//! ```

mod api;
mod app;
pub mod auth;
mod cache;
mod metrics;
mod page;
mod problem;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::app::{App, Ledger};
use crate::problem::Problem;

/// Where request log lines go.
type Log = Arc<dyn Fn(String) + Send + Sync>;

pub use crate::auth::{new_token, Role, Tokens};

/// How to start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `HOST:PORT`; port 0 takes a free one.
    pub listen: String,
    /// (name, store) of each ledger served.
    pub ledgers: Vec<(String, PathBuf)>,
    /// The token file; `None`: every request is allowed, and only loopback is served.
    pub tokens: Option<PathBuf>,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// The one origin allowed to call the API from another site's pages (CORS); none by
    /// default.
    pub cors: Option<String>,
    /// The engine's configuration for every ledger (the holder is set per ledger).
    pub config: engine::Config,
    /// Headers must arrive within this time of a connection's first byte (default 10 s).
    pub header_timeout: Duration,
    /// A connection on which nothing moves for this long is closed (default 60 s).
    pub idle_timeout: Duration,
}

/// Why the server did not start, by the exit code the CLI gives it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// 2: a bad setting.
    #[error("{0}")]
    Usage(String),
    /// 4: a store, or the address, cannot be used.
    #[error("{0}")]
    Unavailable(String),
}

/// Every route of the API (method, path template), as `router` serves them and as
/// `/openapi.json` must describe them (a test holds the two equal). The page's own files
/// (`/`, `/app.js`, `/style.css`) are served besides.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/ledgers"),
    ("GET", "/v1/ledgers/{ledger}/head"),
    ("GET", "/v1/ledgers/{ledger}/log"),
    ("GET", "/v1/ledgers/{ledger}/log/stream"),
    ("GET", "/v1/ledgers/{ledger}/ownership"),
    ("POST", "/v1/ledgers/{ledger}/ownership"),
    ("GET", "/v1/ledgers/{ledger}/obligations"),
    ("POST", "/v1/ledgers/{ledger}/obligations"),
    ("GET", "/v1/ledgers/{ledger}/rights"),
    ("POST", "/v1/ledgers/{ledger}/rights"),
    ("GET", "/v1/ledgers/{ledger}/positions/{party}"),
    ("POST", "/v1/ledgers/{ledger}/positions/{party}"),
    ("GET", "/v1/ledgers/{ledger}/timeline"),
    ("GET", "/v1/ledgers/{ledger}/diff"),
    ("GET", "/v1/ledgers/{ledger}/export"),
    ("POST", "/v1/ledgers/{ledger}/events"),
    ("POST", "/v1/ledgers/{ledger}/verify"),
];

/// Headers must arrive within this time of a connection's first byte, by default.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which nothing moves for this long is closed, by default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Requests answered at once; more wait their turn.
const MAX_REQUESTS: usize = 512;
/// Threads for engine calls (queries, the parse of bodies).
const BLOCKING_THREADS: usize = 64;
/// Engine calls (queries, parses, verify) running at once: one per core (at least two),
/// since they are CPU-bound and each holds a ledger state in memory.
fn compute_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}
/// Bytes of answers kept for repeated questions.
const ANSWER_CACHE: usize = 64 << 20;
/// How long a stop waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// A bound server, not yet answering.
pub struct Server {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    app: Arc<App>,
    stop: tokio::sync::watch::Sender<bool>,
    cors: Option<HeaderValue>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Server {
    /// Checks the settings, binds the address and opens every ledger's store (held for the
    /// server's lifetime; a CLI on the same store waits and is told who holds it).
    pub fn bind(settings: Settings) -> Result<Server, StartError> {
        let tokens = match &settings.tokens {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    StartError::Usage(format!("--tokens {}: cannot read it: {e}", path.display()))
                })?;
                let tokens = Tokens::parse(&text)
                    .map_err(|m| StartError::Usage(format!("--tokens {}: {m}", path.display())))?;
                if tokens.is_empty() {
                    return Err(StartError::Usage(format!(
                        "--tokens {}: the file holds no token, so every request would be refused; add a line printed by `accord token new ROLE`",
                        path.display()
                    )));
                }
                Some(tokens)
            }
        };
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&settings.listen)
            .map_err(|e| {
                StartError::Usage(format!(
                    "--listen {:?}: use HOST:PORT, such as 127.0.0.1:8080 ({e})",
                    settings.listen
                ))
            })?
            .collect();
        if tokens.is_none() {
            if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(StartError::Usage(format!(
                    "--listen {}: without --tokens every request is allowed, so accord serve listens only on a loopback address (127.0.0.1, [::1]); pass --tokens FILE to listen on {}",
                    settings.listen,
                    open.ip()
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (name, _) in &settings.ledgers {
            if !auth::valid_ledger_name(name) {
                return Err(StartError::Usage(format!(
                    "--ledger {:?}: a ledger's name is 1 to 64 characters of a-z, 0-9 and -",
                    present::render::visible(name)
                )));
            }
            if !names.insert(name.clone()) {
                return Err(StartError::Usage(format!("--ledger {name} is given twice")));
            }
        }
        // One store under two names would wait for itself.
        let mut stores: Vec<(PathBuf, &str)> = Vec::new();
        for (name, path) in &settings.ledgers {
            let same = same_place(path);
            if let Some((_, other)) = stores.iter().find(|(p, _)| *p == same) {
                return Err(StartError::Usage(format!(
                    "--ledger {name}: {} is already served as ledger {other}",
                    engine::shown_location(path)
                )));
            }
            stores.push((same, name));
            // A store that does not exist yet is created by the first append: its directory
            // must be there, or that append could never succeed.
            let in_database = path.to_str().is_some_and(engine::is_database_url);
            if !path.exists() && !in_database {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                if !parent.is_dir() {
                    return Err(StartError::Unavailable(format!(
                        "ledger {name}: the directory {} of its store {} does not exist",
                        parent.display(),
                        path.display()
                    )));
                }
            }
        }
        let cors = settings
            .cors
            .as_deref()
            .map(|origin| {
                HeaderValue::from_str(origin)
                    .ok()
                    .filter(|_| origin.starts_with("http://") || origin.starts_with("https://"))
                    .ok_or_else(|| {
                        StartError::Usage(format!(
                            "--cors {origin:?}: use one origin, such as https://deals.example.com"
                        ))
                    })
            })
            .transpose()?;
        let listener = std::net::TcpListener::bind(&addrs[..]).map_err(|e| {
            StartError::Unavailable(format!("cannot listen on {}: {e}", settings.listen))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Unavailable(format!("cannot listen: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| StartError::Unavailable(format!("cannot listen: {e}")))?;
        let mut ledgers = Vec::new();
        for (name, path) in &settings.ledgers {
            let mut config = settings.config.clone();
            config.holder = Some(format!("accord serve on http://{addr}"));
            let ledger = Ledger::open(name.clone(), path.clone(), config).map_err(|e| {
                StartError::Unavailable(format!(
                    "ledger {name} ({}): {e}",
                    engine::shown_location(path)
                ))
            })?;
            ledgers.push(ledger);
        }
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let app = Arc::new(App {
            ledgers,
            tokens,
            metrics: metrics::Metrics::default(),
            max_body: settings.max_body,
            stopping,
            compute: tokio::sync::Semaphore::new(compute_slots()),
            answers: cache::Answers::new(ANSWER_CACHE),
        });
        Ok(Server {
            listener,
            addr,
            app,
            stop,
            cors,
            header_timeout: settings.header_timeout,
            idle_timeout: settings.idle_timeout,
        })
    }

    /// The address it listens on (with the real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers until SIGINT or SIGTERM, then stops accepting, lets requests in flight
    /// finish (streams end), and returns. `ready` is called once the signals are caught and
    /// connections are accepted (the CLI prints its `listening on` line there); `log` takes
    /// one line per request.
    pub fn run(
        self,
        ready: impl FnOnce(SocketAddr),
        log: Box<dyn Fn(String) + Send + Sync>,
    ) -> Result<(), StartError> {
        // Engine calls are already one per core here (`compute`).
        engine::split_reads(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(BLOCKING_THREADS)
            .enable_all()
            .build()
            .map_err(|e| StartError::Unavailable(format!("cannot start the runtime: {e}")))?;
        let log: Log = Arc::from(log);
        runtime.block_on(self.serve(ready, log))
    }

    async fn serve(self, ready: impl FnOnce(SocketAddr), log: Log) -> Result<(), StartError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(|e| StartError::Unavailable(format!("cannot listen: {e}")))?;
        let router = router(self.app.clone(), log.clone(), self.cors);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        // The handlers are in place before anyone is told the server is up, so a SIGTERM
        // right after the `listening on` line is a clean stop, not a kill.
        let mut signal = std::pin::pin!(stop_signal()?);
        ready(self.addr);
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => p,
                _ = &mut signal => break,
            };
            let Ok(permit) = permit else { break };
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, say: wait a little, never spin.
                        log(format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut signal => break,
            };
            let _ = socket.set_nodelay(true);
            let activity = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let io = TokioIo::new(Tracked {
                inner: socket,
                activity: activity.clone(),
                started,
            });
            let router = router.clone();
            let idle_timeout = self.idle_timeout;
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let router = router.clone();
                    async move {
                        let req = req.map(axum::body::Body::new);
                        tower::ServiceExt::oneshot(router, req).await
                    }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.header_timeout)
                .max_header_size(64 * 1024)
                .max_headers(100)
                .serve_connection(io, service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    _ = idle(activity, started, idle_timeout) => {}
                }
                drop(permit);
            });
        }
        drop(listener);
        // Stop: no new connections; appends queued are finished by their writers; streams
        // end; requests in flight get `DRAIN` to finish.
        let _ = self.stop.send(true);
        for l in &self.app.ledgers {
            l.close();
        }
        let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
        // Every append queued is committed (or refused) before the store is let go.
        let ledgers = self.app.ledgers.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for l in &ledgers {
                l.join_writer();
            }
        })
        .await;
        Ok(())
    }
}

/// Where a store is, as one path for every way of naming it (`d`, `./d/`, an absolute
/// path, through a symbolic link).
fn same_place(path: &std::path::Path) -> PathBuf {
    if path.to_str().is_some_and(engine::is_database_url) {
        return path.to_path_buf();
    }
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    // Not there yet: its parent's canonical path, and its own name.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => absolute,
    }
}

/// SIGINT or SIGTERM: the handlers are installed when this returns, the future resolves
/// at the first of the two.
#[cfg(unix)]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let failed = |e: std::io::Error| StartError::Unavailable(format!("cannot catch signals: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(failed)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(failed)?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, StartError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// A connection's socket, noting when bytes last moved either way.
struct Tracked {
    inner: tokio::net::TcpStream,
    /// Milliseconds after `started`.
    activity: Arc<AtomicU64>,
    started: Instant,
}

impl Tracked {
    fn touch(&self) {
        self.activity
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once nothing moved on the connection for `timeout`.
async fn idle(activity: Arc<AtomicU64>, started: Instant, timeout: Duration) {
    loop {
        let last = Duration::from_millis(activity.load(Ordering::Relaxed));
        let quiet = started.elapsed().saturating_sub(last);
        if quiet >= timeout {
            return;
        }
        tokio::time::sleep(timeout - quiet).await;
    }
}

fn router(app: Arc<App>, log: Log, cors: Option<HeaderValue>) -> Router {
    let ledger = "/v1/ledgers/{ledger}";
    let api = Router::new()
        .route("/v1/ledgers", get(api::ledgers))
        .route(&format!("{ledger}/head"), get(api::head))
        .route(&format!("{ledger}/log"), get(api::log))
        .route(&format!("{ledger}/log/stream"), get(stream::stream))
        .route(
            &format!("{ledger}/ownership"),
            get(api::ownership).post(api::ownership_what_if),
        )
        .route(
            &format!("{ledger}/obligations"),
            get(api::obligations).post(api::obligations_what_if),
        )
        .route(
            &format!("{ledger}/rights"),
            get(api::rights).post(api::rights_what_if),
        )
        .route(
            &format!("{ledger}/positions/{{party}}"),
            get(api::position).post(api::position_what_if),
        )
        .route(&format!("{ledger}/timeline"), get(api::timeline))
        .route(&format!("{ledger}/diff"), get(api::diff))
        .route(&format!("{ledger}/export"), get(api::export))
        .route(&format!("{ledger}/events"), post(api::append))
        .route(&format!("{ledger}/verify"), post(api::verify))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|RawQuery(q): RawQuery| async move {
                match api::Params::parse(q.as_deref(), &[]) {
                    Ok(_) => page::openapi(),
                    Err(p) => p.into_response(),
                }
            }),
        )
        .fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(app.max_body));
    let loopback_only = app.tokens.is_none();
    let max_body = app.max_body;
    let app_for_auth = app.clone();
    api.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let cors = cors.clone();
            let app_for_auth = app_for_auth.clone();
            async move {
                if loopback_only {
                    if let Err(p) = check_host(&req) {
                        return p.into_response();
                    }
                }
                if let Err(p) = check_length(&req, max_body) {
                    return p.into_response();
                }
                // No token, or an unknown one, is 401 before anything else is looked at.
                if let Err(p) = authenticate(&app_for_auth, &req) {
                    return p.into_response();
                }
                let preflight = req.method() == Method::OPTIONS;
                let mut response = if let (true, Some(_)) = (preflight, &cors) {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    next.run(req).await
                };
                let h = response.headers_mut();
                if let Some(origin) = cors {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("authorization, content-type, last-event-id"),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static("GET, POST, OPTIONS"),
                    );
                    h.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static("accord-head"),
                    );
                }
                response
            }
        },
    ))
    .layer(axum::middleware::from_fn_with_state(
        (app.clone(), log),
        observe,
    ))
    .layer(tower::limit::GlobalConcurrencyLimitLayer::new(MAX_REQUESTS))
    .with_state(app)
}

async fn healthz(RawQuery(q): RawQuery) -> Response {
    if let Err(p) = api::Params::parse(q.as_deref(), &[]) {
        return p.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

/// The page's files, or a problem for any other path.
async fn fallback(req: Request) -> Response {
    if let Some(r) = page::file(req.uri().path()) {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return r;
        }
        let mut r = Problem::for_status(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} takes GET and HEAD", req.uri().path()),
        )
        .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return r;
    }
    Problem::not_found(format!(
        "no such path: {} {}",
        req.method(),
        present::render::visible(req.uri().path())
    ))
    .into_response()
}

/// Every route but the public ones (`/healthz`, `/openapi.json`, the page's files, a CORS
/// preflight) needs a known token when the server has a token file.
fn authenticate(app: &App, req: &Request) -> Result<(), Problem> {
    let path = req.uri().path();
    let public = path == "/healthz"
        || path == "/openapi.json"
        || page::FILES.iter().any(|(p, _, _)| *p == path)
        || req.method() == Method::OPTIONS;
    if public || app.tokens.is_none() {
        return Ok(());
    }
    api::authorize(app, req.headers(), Role::Read, None).map(|_| ())
}

/// A body announced over the limit is refused before a byte of it is read (the body
/// extractor would wait for bytes a hostile client never sends).
fn check_length(req: &Request, max_body: usize) -> Result<(), Problem> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > max_body as u64 => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over the server's limit of {max_body} bytes (--max-body)"),
        )),
        _ => Ok(()),
    }
}

/// Without tokens, only requests to a loopback name or address are answered: a page of
/// another site that resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
fn check_host(req: &Request) -> Result<(), Problem> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return Err(Problem::bad_request(
            "the request has more than one Host header",
        ));
    }
    let ok = host.as_deref().is_some_and(is_loopback_host);
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "Host {} is not a loopback name or address: without --tokens, accord serve answers only requests to localhost, 127.0.0.1 or [::1]",
                host.as_deref().map_or("(none)".to_string(), api::shown)
            ),
        ))
    }
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every request: timed, counted in the metrics, logged in one line (never its query
/// string or headers, so no token reaches a log), and any error answered as a problem.
async fn observe(State((app, log)): State<(Arc<App>, Log)>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| {
            if page::FILES.iter().any(|(p, _, _)| *p == path) {
                path.clone()
            } else {
                "(other)".into()
            }
        });
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let response = next.run(req).await;
    let mut response = as_problem(response).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let took = started.elapsed();
    let status = response.status().as_u16();
    app.metrics.record(&route, method.as_str(), status, took);
    log(format!(
        "{remote} {method} {} {status} {:.1}ms",
        present::render::visible(&path),
        took.as_secs_f64() * 1000.0
    ));
    response
}

/// An error answered by something else than our handlers (axum's own rejections, a
/// method not allowed) becomes a problem with the same status.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let detail = match (&allow, text.is_empty()) {
        (Some(a), _) if status == StatusCode::METHOD_NOT_ALLOWED => format!(
            "this route takes {}",
            a.to_str().unwrap_or("other methods").replace(',', ", ")
        ),
        (_, true) => status.canonical_reason().unwrap_or("error").to_string(),
        (_, false) => text,
    };
    let mut r = Problem::for_status(status, detail).into_response();
    if let Some(allow) = allow {
        r.headers_mut().insert(header::ALLOW, allow);
    }
    r
}
