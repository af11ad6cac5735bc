//! `GET .../log/stream`: the log as Server-Sent Events. Every event after `since` (or after
//! `Last-Event-ID`, which a reconnecting client sends), then each new one as it commits:
//! `id:` is its seq and `data:` its log line, the same line `accord log --format json`
//! prints. A comment every 15 seconds keeps the connection open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use crate::api::{authorize, seq_param, Params, Shared};
use crate::app::Ledger;
use crate::auth::Role;
use crate::problem::Problem;

/// Events read from the store at a time.
const PAGE: usize = 1000;

struct Cursor {
    ledger: Arc<Ledger>,
    last: u64,
    pending: VecDeque<(u64, String)>,
    heads: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

pub async fn stream(
    State(app): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let ledger = authorize(&app, &headers, Role::Read, Some(&name))?
        .ok_or_else(|| Problem::not_found("no ledger"))?;
    let p = Params::parse(q.as_deref(), &["since"])?;
    let since = seq_param(&p, "since")?.unwrap_or(0);
    // A reconnecting client resumes after the last event it saw.
    let last = match headers.get("last-event-id") {
        None => since,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| Problem::bad_request("Last-Event-ID must be the seq of an event"))?,
    };
    let cursor = Cursor {
        heads: ledger.head_seq.subscribe(),
        ledger,
        last,
        pending: VecDeque::new(),
        stopping: app.stopping.clone(),
    };
    let head = cursor.ledger.head_from_async().ok().flatten();
    let events = futures_util::stream::unfold(cursor, next);
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        )
        .into_response();
    // The head when the stream opened.
    if let Some(h) = head {
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{}:{}", h.seq, h.hash_hex())) {
            response.headers_mut().insert("accord-head", v);
        }
    }
    Ok(response)
}

/// The next event of the stream, waiting for it as long as it takes; `None` ends the stream
/// (the server is stopping, or the store cannot be read).
async fn next(mut c: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    loop {
        if let Some((seq, line)) = c.pending.pop_front() {
            c.last = seq;
            let event = Event::default().id(seq.to_string()).data(line);
            return Some((Ok(event), c));
        }
        if *c.stopping.borrow() {
            return None;
        }
        // Marked seen before reading, so a commit during the read is not missed.
        c.heads.borrow_and_update();
        let page = match c.ledger.engine_if_open() {
            None => Vec::new(),
            Some(engine) => {
                let after = c.last;
                let read = tokio::task::spawn_blocking(move || engine.log_page(after, PAGE)).await;
                match read {
                    Ok(Ok((entries, _))) => entries
                        .iter()
                        .map(|e| (e.seq, present::log::json_line(&e.into())))
                        .collect(),
                    _ => return None,
                }
            }
        };
        if !page.is_empty() {
            c.pending.extend(page);
            continue;
        }
        // Woken by this server's commits; the one-second poll also sees appends that other
        // writers of a shared store make.
        tokio::select! {
            _ = c.heads.changed() => {}
            _ = c.stopping.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
