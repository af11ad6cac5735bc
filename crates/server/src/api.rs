//! The JSON API: each route is a CLI command over HTTP. Parameters are the command's flags in
//! snake_case, the answer is what the command prints (`--format json` unless `format` says
//! otherwise), and a refusal is the command's refusal as a problem.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::values::{Date, Slug};
use domain::KnownAt;
use engine::{Engine, EventFile, ExpectedHead, Head, Options, Parsed, Query, WhatIf};
use present::Format;
use projector::Scope;

use crate::app::{App, Ledger};
use crate::auth::{Denied, Role};
use crate::problem::Problem;

pub type Shared = State<Arc<App>>;
type Answer = Result<Response, Problem>;

/// The query parameters of one request, checked against the ones its route takes.
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses the query string; an unknown or repeated parameter is a bad request.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, Problem> {
        let mut map = BTreeMap::new();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| Problem::bad_request(format!("the query string does not parse: {e}")))?;
        for (k, v) in pairs {
            if !allowed.contains(&k.as_str()) {
                let takes = if allowed.is_empty() {
                    "no parameter".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(Problem::bad_request(format!(
                    "unknown parameter `{}` (this request takes {takes})",
                    present::render::visible(&k)
                )));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(Problem::bad_request(format!("`{k}` is given twice")));
            }
        }
        Ok(Params(map))
    }

    /// The question as the answer cache knows it: the route, then every parameter in name
    /// order with `as_of` resolved (its default is today, which changes).
    pub fn question(&self, route: &str, as_of: Option<Date>) -> String {
        let mut q = format!("{route}?");
        if let Some(d) = as_of {
            q.push_str(&format!("as_of={d}"));
        }
        for (k, v) in &self.0 {
            if k != "as_of" {
                q.push_str(&format!("&{k}={v}"));
            }
        }
        q
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A switch: `true` or `false` (absent: off).
    pub fn flag(&self, name: &str) -> Result<bool, Problem> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(Problem::bad_request(format!(
                "invalid value {:?} for {name}: use true or false",
                present::render::visible(v)
            ))),
        }
    }

    pub fn as_of(&self) -> Result<Date, Problem> {
        match self.get("as_of") {
            None => Ok(Date(Utc::now().date_naive())),
            Some(s) => Date::parse(s)
                .map_err(|m| Problem::bad_request(format!("invalid value for as_of: {m}"))),
        }
    }

    pub fn known_at_named(&self, name: &str) -> Result<Option<KnownAt>, Problem> {
        self.get(name)
            .map(|s| {
                engine::parse_known_at(s)
                    // A `+` of a time zone sent unescaped arrives as a space.
                    .or_else(|m| engine::parse_known_at(&s.replace(' ', "+")).map_err(|_| m))
                    .map_err(|m| Problem::bad_request(format!("invalid value for {name}: {m}")))
            })
            .transpose()
    }

    pub fn query(&self) -> Result<Query, Problem> {
        Ok(Query {
            as_of: self.as_of()?,
            known_at: self
                .known_at_named("known_at")?
                .unwrap_or(KnownAt::Everything),
        })
    }

    pub fn slug(&self, name: &str) -> Result<Option<Slug>, Problem> {
        self.get(name)
            .map(|s| Slug::parse(s).map_err(|e| Problem::bad_request(format!("{name}: {e}"))))
            .transpose()
    }

    pub fn expect_head(&self) -> Result<Option<ExpectedHead>, Problem> {
        self.get("expect_head")
            .map(|s| {
                ExpectedHead::parse(s).map_err(|e| {
                    // The engine speaks of the CLI's flag; here it is a parameter.
                    Problem::bad_request(e.to_string().replace("--expect-head", "expect_head"))
                })
            })
            .transpose()
    }

    /// `format`: one of `allowed`, the first being the default.
    pub fn format(&self, allowed: &[&'static str]) -> Result<&'static str, Problem> {
        match self.get("format") {
            None => Ok(allowed[0]),
            Some(f) => allowed.iter().copied().find(|a| *a == f).ok_or_else(|| {
                Problem::bad_request(format!(
                    "invalid value {:?} for format: use {}",
                    present::render::visible(f),
                    allowed.join(", ")
                ))
            }),
        }
    }
}

/// Checks the request's token for `role` on `ledger`, and finds the ledger.
pub fn authorize(
    app: &App,
    headers: &HeaderMap,
    role: Role,
    ledger: Option<&str>,
) -> Result<Option<Arc<Ledger>>, Problem> {
    if let Some(tokens) = &app.tokens {
        let grant = tokens
            .check(
                headers
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            )
            .map_err(|d| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    match d {
                        Denied::Missing => {
                            "this request needs a token: send `Authorization: Bearer TOKEN`"
                        }
                        Denied::Unknown => "the token is not known to this server",
                    },
                )
            })?;
        if !grant.allows(role, ledger) {
            let detail = match ledger {
                Some(l) if !grant.reads(l) => format!(
                    "the token is not for ledger {}: ask for a token that names it",
                    shown(l)
                ),
                _ => format!(
                    "the token's role ({}) cannot do this: it needs the {} role",
                    grant.role.as_str(),
                    role.as_str()
                ),
            };
            return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", detail));
        }
    }
    match ledger {
        None => Ok(None),
        Some(name) => app.ledger(name).cloned().map(Some).ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_ledger",
                format!(
                    "no ledger named {} on this server (GET /v1/ledgers lists them)",
                    shown(name)
                ),
            )
        }),
    }
}

/// A name from the request, escaped, and said to be empty when it is.
pub fn shown(name: &str) -> String {
    if name.is_empty() {
        "(empty)".to_string()
    } else {
        present::render::visible(name)
    }
}

fn ledger_of(
    app: &App,
    headers: &HeaderMap,
    role: Role,
    name: &str,
) -> Result<Arc<Ledger>, Problem> {
    authorize(app, headers, role, Some(name))?.ok_or_else(|| Problem::not_found("no ledger"))
}

/// Runs an engine call off the async threads.
async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let _turn = app
        .compute
        .acquire()
        .await
        .map_err(|_| Problem::unavailable("the server is stopping"))?;
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Problem::for_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed: {e}"),
        ))
    })
}

/// Answers `f` at one head and says which: `f` is asked as known now, and if an append
/// moved the head meanwhile, asked again as known at the head read before (`pin`), which is
/// the same question at a head that no longer moves.
pub fn at_head<T>(
    engine: &Engine,
    f: impl Fn(Option<u64>) -> Result<T, engine::Error>,
) -> Result<(T, Option<Head>), Problem> {
    let before = engine.head()?;
    let answer = f(None)?;
    let after = engine.head()?;
    if before == after {
        return Ok((answer, after));
    }
    let answer = f(Some(before.as_ref().map_or(0, |h| h.seq)))?;
    Ok((answer, before))
}

/// `known_at`, or the pinned seq when the question was as known now.
fn pinned(known_at: KnownAt, pin: Option<u64>) -> KnownAt {
    match (known_at, pin) {
        (KnownAt::Everything, Some(seq)) => KnownAt::Seq(seq),
        (k, _) => k,
    }
}

/// A rendered answer with its media type and the head it was computed at.
pub fn rendered(body: Vec<u8>, media: &'static str, head: Option<&Head>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if media == "image/svg+xml" {
        // An SVG opened on its own runs nothing.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
    }
    if let Some(h) = head {
        if let Ok(v) = HeaderValue::from_str(&format!("{}:{}", h.seq, h.hash_hex())) {
            headers.insert("accord-head", v);
        }
    }
    response
}

/// A cached answer to this question at the ledger's head, unless the client asked for a
/// fresh one (`Cache-Control: no-cache`).
fn cached(
    app: &App,
    ledger: &Ledger,
    headers: &HeaderMap,
    question: &str,
) -> Result<Option<Response>, Problem> {
    let fresh = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache") || v.contains("no-store"));
    if fresh {
        return Ok(None);
    }
    // The head is read off the async threads' duty: a database store asks its server.
    let Some(head) = ledger.head_from_async()? else {
        return Ok(None);
    };
    let key = (ledger.name.clone(), head.seq, question.to_string());
    Ok(app
        .answers
        .get(&key)
        .map(|c| rendered(c.body.to_vec(), c.media, c.head.as_ref())))
}

/// Keeps an answer for the next time this question is asked at this head.
fn keep(
    app: &App,
    ledger: &Ledger,
    question: String,
    body: &[u8],
    media: &'static str,
    head: Option<&Head>,
) {
    if let Some(h) = head {
        app.answers.put(
            (ledger.name.clone(), h.seq, question),
            crate::cache::Cached {
                body: Bytes::copy_from_slice(body),
                media,
                head: Some(h.clone()),
            },
        );
    }
}

fn media(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Table => "text/plain; charset=utf-8",
    }
}

fn report_format(p: &Params) -> Result<Format, Problem> {
    Ok(match p.format(&["json", "csv", "table"])? {
        "csv" => Format::Csv,
        "table" => Format::Table,
        _ => Format::Json,
    })
}

fn write_out(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::new();
    f(&mut out).map_err(|e| Problem::unavailable(format!("cannot render the answer: {e}")))?;
    Ok(out)
}

// ---- the server's own routes ----

/// The ledgers the request's token may read (all of them without a token file).
fn readable(app: &App, headers: &HeaderMap) -> Vec<Arc<Ledger>> {
    let grant = app.tokens.as_ref().and_then(|t| {
        t.check(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )
        .ok()
    });
    app.ledgers
        .iter()
        .filter(|l| grant.is_none_or(|g| g.reads(&l.name)))
        .cloned()
        .collect()
}

pub async fn ledgers(State(app): Shared, RawQuery(q): RawQuery, headers: HeaderMap) -> Answer {
    authorize(&app, &headers, Role::Read, None)?;
    Params::parse(q.as_deref(), &[])?;
    let visible = readable(&app, &headers);
    let list = blocking(&app, move || {
        let mut list = Vec::new();
        for l in visible {
            let head = l.head()?;
            list.push(serde_json::json!({
                "ledger": l.name,
                "head": head.map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash_hex(), "recorded": h.recorded})),
            }));
        }
        Ok(list)
    })
    .await?;
    let mut body =
        serde_json::to_vec_pretty(&serde_json::json!({ "ledgers": list })).unwrap_or_default();
    body.push(b'\n');
    Ok(rendered(body, "application/json", None))
}

pub async fn metrics(State(app): Shared, RawQuery(q): RawQuery, headers: HeaderMap) -> Answer {
    authorize(&app, &headers, Role::Read, None)?;
    Params::parse(q.as_deref(), &[])?;
    // A token sees the figures of its own ledgers only.
    let visible: Vec<crate::metrics::LedgerFigures> = readable(&app, &headers)
        .iter()
        .map(|l| crate::metrics::LedgerFigures {
            name: l.name.clone(),
            appended: l.appended.load(std::sync::atomic::Ordering::Relaxed),
            head_seq: *l.head_seq.borrow(),
        })
        .collect();
    let text = app.metrics.render(&visible);
    Ok(rendered(
        text.into_bytes(),
        "text/plain; version=0.0.4; charset=utf-8",
        None,
    ))
}

// ---- reading ----

pub async fn head(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Read, &name)?;
    let p = Params::parse(q.as_deref(), &["format"])?;
    let format = match p.format(&["json", "table"])? {
        "table" => Format::Table,
        _ => Format::Json,
    };
    let engine = ledger.reader()?;
    let head = blocking(&app, move || Ok(engine.head()?)).await?;
    let body = write_out(|out| present::writes::head(out, format, head.as_ref()))?;
    Ok(rendered(body, media(format), head.as_ref()))
}

pub async fn log(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Read, &name)?;
    let p = Params::parse(q.as_deref(), &["since", "limit", "format"])?;
    let since = seq_param(&p, "since")?.unwrap_or(0);
    let limit = match seq_param(&p, "limit")? {
        None => 1000,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(_) => return Err(Problem::bad_request("limit must be between 1 and 10000")),
    };
    let format = report_format(&p)?;
    let engine = ledger.reader()?;
    let (entries, head) = blocking(&app, move || Ok(engine.log_page(since, limit)?)).await?;
    let body = write_out(|out| {
        let rows: Vec<present::log::Entry<'_>> = entries.iter().map(Into::into).collect();
        present::log::entries(out, format, &rows, present::Style::default())
    })?;
    let media = match format {
        Format::Json => "application/x-ndjson",
        f => media(f),
    };
    Ok(rendered(body, media, head.as_ref()))
}

/// A non-negative whole number parameter.
pub fn seq_param(p: &Params, name: &str) -> Result<Option<u64>, Problem> {
    p.get(name)
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                Problem::bad_request(format!(
                    "invalid value {:?} for {name}: use a whole number",
                    present::render::visible(s)
                ))
            })
        })
        .transpose()
}

/// Which report a projection route answers.
#[derive(Clone, Copy)]
enum Report {
    Ownership,
    Obligations,
    Rights,
    Position,
}

async fn report(
    app: Arc<App>,
    name: String,
    party_path: Option<String>,
    q: Option<String>,
    headers: HeaderMap,
    which: Report,
    body: Option<(
        HeaderMap,
        Result<Bytes, axum::extract::rejection::BytesRejection>,
    )>,
) -> Answer {
    let role = if body.is_some() {
        Role::Write
    } else {
        Role::Read
    };
    let ledger = ledger_of(&app, &headers, role, &name)?;
    let allowed: &[&str] = match which {
        Report::Ownership => &["as_of", "known_at", "entity", "format"],
        Report::Obligations | Report::Rights => &["as_of", "known_at", "party", "all", "format"],
        Report::Position => &["as_of", "known_at", "all", "format"],
    };
    let p = Params::parse(q.as_deref(), allowed)?;
    let query = p.query()?;
    let format = report_format(&p)?;
    let all = p.flag("all")?;
    let scope = if all { Scope::All } else { Scope::Current };
    let party = match (which, party_path) {
        (Report::Position, Some(party)) => {
            Some(Slug::parse(&party).map_err(|e| Problem::bad_request(format!("PARTY: {e}")))?)
        }
        (Report::Ownership, _) => p.slug("entity")?,
        _ => p.slug("party")?,
    };
    let with = match body {
        None => None,
        Some((body_headers, bytes)) => {
            if p.get("known_at").is_some() {
                return Err(Problem::bad_request(
                    "known_at cannot be used with a what-if body: its events would be recorded now",
                ));
            }
            let file = event_body(&app, &body_headers, bytes)?;
            Some(WhatIf::parse(&file)?)
        }
    };
    let route = match which {
        Report::Ownership => "ownership".to_string(),
        Report::Obligations => "obligations".to_string(),
        Report::Rights => "rights".to_string(),
        Report::Position => format!("positions/{}", party.as_ref().map_or("", |p| p.as_str())),
    };
    let question = p.question(&route, Some(query.as_of));
    if with.is_none() {
        if let Some(r) = cached(&app, &ledger, &headers, &question)? {
            return Ok(r);
        }
    }
    let what_if = with.is_some();
    let engine = ledger.reader()?;
    let (body, head) = blocking(&app, move || {
        let (projection, head) = at_head(&engine, |pin| {
            let q = Query {
                as_of: query.as_of,
                known_at: pinned(query.known_at, pin),
            };
            engine.projection(&q, party.as_ref(), with.as_ref())
        })?;
        let style = present::Style::default();
        let body = write_out(|out| match which {
            Report::Ownership => present::reports::ownership(
                out,
                format,
                &projection.ownership(party.as_ref()),
                style,
            ),
            Report::Obligations => present::reports::obligations(
                out,
                format,
                &projection.obligations(party.as_ref(), scope),
                style,
            ),
            Report::Rights => present::reports::rights(
                out,
                format,
                &projection.rights(party.as_ref(), scope),
                style,
            ),
            Report::Position => {
                let party = party.as_ref().expect("a position names its party");
                let report = projection.position(party, scope);
                let from = match (&report.name, format) {
                    (None, Format::Table) => engine.registered_from(party).ok().flatten(),
                    _ => None,
                };
                present::reports::position(out, format, &report, from, style)
            }
        })?;
        Ok((body, head))
    })
    .await?;
    if !what_if {
        keep(&app, &ledger, question, &body, media(format), head.as_ref());
    }
    Ok(rendered(body, media(format), head.as_ref()))
}

macro_rules! report_routes {
    ($get:ident, $post:ident, $which:expr) => {
        pub async fn $get(
            State(app): Shared,
            Path(name): Path<String>,
            RawQuery(q): RawQuery,
            headers: HeaderMap,
        ) -> Answer {
            report(app, name, None, q, headers, $which, None).await
        }
        pub async fn $post(
            State(app): Shared,
            Path(name): Path<String>,
            RawQuery(q): RawQuery,
            headers: HeaderMap,
            body: Result<Bytes, axum::extract::rejection::BytesRejection>,
        ) -> Answer {
            let h = headers.clone();
            report(app, name, None, q, headers, $which, Some((h, body))).await
        }
    };
}

report_routes!(ownership, ownership_what_if, Report::Ownership);
report_routes!(obligations, obligations_what_if, Report::Obligations);
report_routes!(rights, rights_what_if, Report::Rights);

pub async fn position(
    State(app): Shared,
    Path((name, party)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    report(app, name, Some(party), q, headers, Report::Position, None).await
}

pub async fn position_what_if(
    State(app): Shared,
    Path((name, party)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer {
    let h = headers.clone();
    report(
        app,
        name,
        Some(party),
        q,
        headers,
        Report::Position,
        Some((h, body)),
    )
    .await
}

pub async fn timeline(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Read, &name)?;
    let p = Params::parse(q.as_deref(), &["as_of", "known_at", "entity", "format"])?;
    let query = p.query()?;
    let entity = p.slug("entity")?;
    let format = p.format(&["json", "csv", "table", "svg"])?;
    let question = p.question("timeline", Some(query.as_of));
    if let Some(r) = cached(&app, &ledger, &headers, &question)? {
        return Ok(r);
    }
    let engine = ledger.reader()?;
    let (body, media, head) = blocking(&app, move || {
        let (report, head) = at_head(&engine, |pin| {
            let q = Query {
                as_of: query.as_of,
                known_at: pinned(query.known_at, pin),
            };
            engine.timeline(&q, entity.as_ref())
        })?;
        if format == "svg" {
            use present::timeline::{ChartError, Pick};
            let mut out = Vec::new();
            return match present::timeline::chart(
                &mut out,
                &report,
                entity.as_ref(),
                query.known_at,
            ) {
                Ok(Ok(())) => Ok((out, "image/svg+xml", head)),
                Ok(Err(Pick::Nothing(m))) => Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nothing_to_chart",
                    m,
                )),
                Ok(Err(Pick::Several(m))) => Err(Problem::bad_request(m)),
                Err(ChartError::Draw(m)) => Err(Problem::unavailable(m)),
                Err(ChartError::Output(e)) => Err(Problem::unavailable(e.to_string())),
            };
        }
        let format = match format {
            "csv" => Format::Csv,
            "table" => Format::Table,
            _ => Format::Json,
        };
        let body = write_out(|out| {
            present::timeline::timeline(out, format, &report, present::Style::default())
        })?;
        Ok((body, media(format), head))
    })
    .await?;
    keep(&app, &ledger, question, &body, media, head.as_ref());
    Ok(rendered(body, media, head.as_ref()))
}

pub async fn diff(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Read, &name)?;
    let p = Params::parse(
        q.as_deref(),
        &["as_of", "known_at", "vs_known_at", "format"],
    )?;
    let as_of = p.as_of()?;
    let from_text = p
        .get("known_at")
        .ok_or_else(|| {
            Problem::bad_request(
                "diff needs known_at (the earlier view), as `accord diff` needs --known-at",
            )
        })?
        .to_string();
    let from = p.known_at_named("known_at")?.unwrap_or(KnownAt::Everything);
    let to_text = p.get("vs_known_at").map(str::to_string);
    let to = p
        .known_at_named("vs_known_at")?
        .unwrap_or(KnownAt::Everything);
    let format = report_format(&p)?;
    let question = p.question("diff", Some(as_of));
    if let Some(r) = cached(&app, &ledger, &headers, &question)? {
        return Ok(r);
    }
    let engine = ledger.reader()?;
    let (body, head) = blocking(&app, move || {
        let (report, head) = at_head(&engine, |pin| {
            engine.diff(as_of, pinned(from, pin), pinned(to, pin))
        })?;
        let body = write_out(|out| {
            present::diff::diff(
                out,
                format,
                &report,
                &from_text,
                to_text.as_deref(),
                present::Style::default(),
            )
        })?;
        Ok((body, head))
    })
    .await?;
    keep(&app, &ledger, question, &body, media(format), head.as_ref());
    Ok(rendered(body, media(format), head.as_ref()))
}

/// A writer that hands what it is given to the response body as it comes.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

pub async fn export(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Read, &name)?;
    let p = Params::parse(q.as_deref(), &["format", "as_of", "known_at"])?;
    let format = match p.get("format") {
        None => {
            return Err(Problem::bad_request(
                "export needs format=jsonl or format=ledger, as `accord export` needs --format",
            ))
        }
        Some(_) => p.format(&["jsonl", "ledger"])?,
    };
    let as_of = p.get("as_of").map(|_| p.as_of()).transpose()?;
    let known_at = p.known_at_named("known_at")?;
    let engine = ledger.reader()?;
    // The head now, and the export pinned to it when asked as known now, so the header is
    // the head of what is streamed.
    let head = blocking(&app, {
        let engine = engine.clone();
        move || Ok(engine.head()?)
    })
    .await?;
    let known_at = known_at.unwrap_or(match &head {
        Some(h) => KnownAt::Seq(h.seq),
        None => KnownAt::Everything,
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), Problem>>();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let mut first = Some(first_tx);
        let result = match format {
            "ledger" => engine.export_ledger(as_of, known_at, &mut out),
            _ => engine.export_jsonl(as_of, known_at, &mut out),
        };
        let result =
            result.and_then(|()| std::io::Write::flush(&mut out).map_err(engine::Error::Output));
        match result {
            Ok(()) => {
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
            }
            Err(e) => {
                // Before any byte was sent the client gets the problem; after, the body ends
                // in an error, so a client never takes a cut export for a whole one.
                if let Some(f) = first.take() {
                    let _ = f.send(Err(Problem::from(e)));
                } else {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        }
    });
    // The export is computed before anything is sent when it fits in the first chunks;
    // a refusal (a corrupt store) is a problem, not a cut body.
    let first_chunk = rx.recv().await;
    if first_chunk.is_none() {
        if let Ok(Err(problem)) = first_rx.await {
            return Err(problem);
        }
    }
    let stream = futures_util::stream::unfold((first_chunk, rx), |(pending, mut rx)| async move {
        match pending {
            Some(item) => Some((item, (None, rx))),
            None => rx.recv().await.map(|item| (item, (None, rx))),
        }
    });
    let media = if format == "ledger" {
        "text/plain; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Some(h) = &head {
        if let Ok(v) = HeaderValue::from_str(&format!("{}:{}", h.seq, h.hash_hex())) {
            response.headers_mut().insert("accord-head", v);
        }
    }
    Ok(response)
}

// ---- writing ----

/// The event file of a request body: sent as `application/x-ndjson` (or
/// `application/jsonl`), within `--max-body`, and UTF-8.
fn event_body(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<EventFile, Problem> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let mut parts = value.as_deref().unwrap_or("").split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let charset = parts
        .filter_map(|p| p.strip_prefix("charset="))
        .map(|c| c.trim_matches('"'))
        .next();
    let unsupported = |detail: String| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
    };
    if !matches!(media, "application/x-ndjson" | "application/jsonl") {
        return Err(unsupported(match value.as_deref() {
            None => "events are sent as application/x-ndjson (or application/jsonl): this request has no Content-Type".to_string(),
            Some(m) => format!(
                "events are sent as application/x-ndjson (or application/jsonl), not {}",
                shown(m)
            ),
        }));
    }
    if let Some(c) = charset.filter(|c| *c != "utf-8" && *c != "utf8") {
        return Err(unsupported(format!(
            "events are UTF-8 text, not charset {}",
            shown(c)
        )));
    }
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the body is over the server's limit of {} bytes (--max-body)",
                    app.max_body
                ),
            )
        } else {
            Problem::for_status(e.status(), format!("the body cannot be read: {e}"))
        }
    })?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_input",
            format!(
                "<body>: not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(EventFile::new("<body>", text))
}

pub async fn append(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Write, &name)?;
    let p = Params::parse(q.as_deref(), &["dry_run", "expect_head", "format"])?;
    let dry_run = p.flag("dry_run")?;
    let expect_head = p.expect_head()?;
    let format = match p.format(&["json", "table"])? {
        "table" => Format::Table,
        _ => Format::Json,
    };
    let file = event_body(&app, &headers, body)?;
    let parsed = blocking(&app, move || Ok(Parsed::files(vec![file])?)).await?;
    let receipts = if dry_run {
        let engine = ledger.engine_if_open();
        let config = ledger.config().clone();
        blocking(&app, move || {
            let options = Options {
                dry_run: true,
                expect_head: expect_head.as_ref(),
                progress: None,
            };
            Ok(match engine {
                Some(engine) => engine.append(parsed, &options)?,
                None => engine::dry_run_on_empty(parsed, &config, &options)?,
            })
        })
        .await?
    } else {
        ledger.append(parsed, expect_head).await?
    };
    let receipt = &receipts[0].receipt;
    let body = write_out(|out| present::writes::receipt(out, format, receipt, dry_run, None))?;
    let head = match (&receipt.head, receipt.head_seq) {
        (Some(hash), Some(seq)) => Some((seq, hash.clone())),
        _ => None,
    };
    let mut response = rendered(body, media(format), None);
    if let Some((seq, hash)) = head {
        if let Ok(v) = HeaderValue::from_str(&format!("{seq}:{hash}")) {
            response.headers_mut().insert("accord-head", v);
        }
    }
    Ok(response)
}

pub async fn verify(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let ledger = ledger_of(&app, &headers, Role::Admin, &name)?;
    let p = Params::parse(q.as_deref(), &["expect_head", "format"])?;
    p.format(&["json"])?;
    let expected = p.expect_head()?;
    let engine = ledger.reader()?;
    let (body, head) = blocking(&app, move || match engine.verify(expected.as_ref()) {
        Ok(v) => {
            let body = write_out(|out| present::writes::verified(out, Format::Json, &v))?;
            Ok((body, v.head))
        }
        Err(engine::Error::Integrity { seq, message }) => {
            let mut body = serde_json::to_vec(&serde_json::json!({
                "ok": false,
                "seq": seq,
                "detail": present::render::visible(&message),
            }))
            .unwrap_or_default();
            body.push(b'\n');
            Ok((body, None))
        }
        Err(e) => Err(e.into()),
    })
    .await?;
    Ok(rendered(body, "application/json", head.as_ref()))
}
