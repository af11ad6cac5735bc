//! The web page of `accord serve` in a real browser: the system's headless Chromium
//! (`/usr/bin/chromium`), driven over the DevTools protocol on one WebSocket.
//!
//! For the demo ledger, on two dates and at two known-at times, the page's cap tables and
//! obligations are the API's JSON formatted by the CLI's own rules (`present::render`), and
//! every report the page shows has the rows of the CLI's table (`format=table`). A shared
//! link opens on its view and inputs; the page's controls and the browser's back button move
//! the URL and the answer together; the log grows by itself when an event is appended;
//! refusals show the API's words; a token is asked for once, kept out of every URL; nothing
//! on the page breaks its content security policy or throws. The test takes a screenshot;
//! with `ACCORD_SCREENSHOT=1` it saves it as docs/screenshot.png (the README's picture).
//!
//! Without Chromium the test says so and passes, unless `CI=true` (`.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use domain::values::{parse_decimal, Currency, Dec, Money};
use present::render;
use serde_json::{json, Value};
use testkit::http::Served;
use tungstenite::{Message, WebSocket};

const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one thing may take to show on the page before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The answer on the page is the one its URL asks for (set by app.js when an answer, or its
/// refusal, is shown in full, charts included).
const READY: &str = "document.documentElement?.dataset.ready === location.search";

/// The rows of a table element `t` as text, each cell's id alone where it has one (a party's
/// name is shown under its id).
const CELLS: &str = "const cells = (t) => t ? [...t.tBodies[0].rows].filter((r) => !r.hidden)\
    .map((r) => [...r.cells].map((c) => (c.querySelector('.ident') || c).textContent)) : null;";

// ------------------------------------------------------------------ the browser

/// A headless Chromium with one page open, attached over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// The page's session on the browser's connection.
    session: String,
    /// What went wrong on the page: exceptions, console errors, security (CSP) messages.
    errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1366,768",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // Chromium names its DevTools endpoint on standard error; the rest of that output is
        // read (and kept for a failure's message) so that it never blocks on a full pipe.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let mut said = Vec::new();
        let endpoint = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => match line.split_once("DevTools listening on ") {
                    Some((_, url)) => break url.trim().to_string(),
                    None => said.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "chromium gave no DevTools endpoint within {PATIENCE:?}:\n{}",
                        said.join("\n")
                    );
                }
            }
        };
        let authority = endpoint
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("a DevTools endpoint: {endpoint}"))
            .to_string();
        let stream = TcpStream::connect(&authority).expect("connect to DevTools");
        // A browser that stops answering fails the test instead of hanging it.
        stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
        let (ws, _) =
            tungstenite::client(endpoint.as_str(), stream).expect("the WebSocket handshake");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
            false,
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({}), true);
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": false}),
            true,
        );
        b
    }

    /// Sends one command (to the page's session when `in_page`) and returns its result; the
    /// events that arrive meanwhile are noted.
    fn call(&mut self, method: &str, params: Value, in_page: bool) -> Value {
        self.try_call(method, params, in_page)
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"))
    }

    /// [`Browser::call`], the protocol's error returned.
    fn try_call(&mut self, method: &str, params: Value, in_page: bool) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if in_page {
            message["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        loop {
            let reply = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
            let Message::Text(text) = reply else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
            if v["id"] == json!(id) {
                return match v.get("error") {
                    Some(e) => Err(e.to_string()),
                    None => Ok(v["result"].clone()),
                };
            }
            self.note(&v);
        }
    }

    fn note(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("an exception");
                self.errors.push(format!("exception: {text}"));
            }
            Some("Runtime.consoleAPICalled")
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map_or_else(|| a["description"].to_string(), str::to_string)
                    })
                    .collect();
                self.errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            // Refused requests are logged by the browser as network errors: those the test
            // asks for on purpose are expected; a CSP violation is a "security" entry.
            Some("Log.entryAdded")
                if p["entry"]["level"] == "error" && p["entry"]["source"] != "network" =>
            {
                self.errors.push(format!(
                    "{}: {} {}",
                    p["entry"]["source"].as_str().unwrap_or("log"),
                    p["entry"]["text"].as_str().unwrap_or(""),
                    p["entry"]["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    fn eval(&mut self, expression: &str) -> Value {
        self.evaluate(expression)
            .unwrap_or_else(|e| panic!("the page threw on {expression}: {e}"))
    }

    /// [`Browser::eval`], an exception (or a page between two documents) returned.
    fn evaluate(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.try_call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            true,
        )?;
        match r.get("exceptionDetails") {
            Some(e) => Err(e.to_string()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Waits, at most `PATIENCE`, until `expression` is truthy in the page; returns its value.
    fn wait(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            // While a new document loads, the old one's context may be gone: not yet.
            let v = self.evaluate(expression).unwrap_or(Value::Null);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let url = self
                    .evaluate(
                        "JSON.stringify({url: location.href, left: window.__left, \
                         ready: document.documentElement?.dataset.ready, \
                         content: document.getElementById('content')?.textContent.slice(0, 300)})",
                    )
                    .unwrap_or_default();
                panic!(
                    "waited {PATIENCE:?} for {what} ({expression}): last {v}; at {url}; page errors: {:?}",
                    self.errors
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` as a colleague would open a link, and waits for its answer.
    fn open(&mut self, url: &str) {
        // The old page is marked, so that its own readiness is not taken for the new one's.
        self.eval("window.__left = true");
        self.call("Page.navigate", json!({"url": url}), true);
        self.wait(url, &format!("!window.__left && {READY}"));
    }

    /// Waits for the answer after a change made on the page.
    fn settle(&mut self, what: &str) {
        self.wait(what, READY);
    }

    /// Evaluates `body` (which may use `cells`) in the page.
    fn read(&mut self, body: &str) -> Value {
        self.eval(&format!("(() => {{ {CELLS} return {body}; }})()"))
    }

    /// Sets an input or select of the page as a person would, firing its change event.
    fn set(&mut self, id: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById({id}); e.value = {value}; \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            id = json!(id),
            value = json!(value)
        ));
    }

    fn click(&mut self, selector: &str) {
        self.eval(&format!(
            "document.querySelector({}).click()",
            json!(selector)
        ));
    }

    fn search(&mut self) -> String {
        self.eval("location.search")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The whole page at the window's width (1366 px): at that width the cap table's chart
    /// is under its table, below the first 768 px.
    fn screenshot(&mut self, to: &Path) {
        let height = self
            .eval("Math.max(768, Math.ceil(document.documentElement.scrollHeight))")
            .as_f64()
            .unwrap_or(768.0);
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": 1366, "height": height, "scale": 1}}),
            true,
        );
        let png = base64(shot["data"].as_str().expect("the screenshot's data"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(to, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(
            json!({"id": 0, "method": "Browser.close"}).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding) to bytes.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ------------------------------------------------------------------ what the page must show

fn get(server: &Served, path: &str) -> Value {
    let r = server.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn get_text(server: &Served, path: &str) -> String {
    let r = server.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.text()
}

/// `as_of=...` and `known_at=...` when given.
fn params(as_of: &str, known_at: Option<&str>) -> String {
    match known_at {
        Some(k) => format!("as_of={as_of}&known_at={k}"),
        None => format!("as_of={as_of}"),
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string: {v}"))
        .to_string()
}

fn dec(v: &Value) -> Dec {
    Dec(parse_decimal(&s(v)).expect("a decimal"))
}

/// Money as JSON, to the CLI's money (zero included, which an event could not hold).
fn money(v: &Value) -> Money {
    Money::new(
        parse_decimal(&s(&v["amount"])).expect("an amount"),
        Currency::parse(&s(&v["currency"])).expect("a currency"),
    )
}

fn opt_money(v: &Value) -> String {
    render::opt_money(&(!v.is_null()).then(|| money(v)))
}

fn opt(v: &Value) -> String {
    if v.is_null() {
        "-".into()
    } else {
        s(v)
    }
}

/// The ownership answer as the page must show it: per entity, its id, total units,
/// post-money and holder rows.
fn ownership_expected(r: &Value) -> Value {
    let entities: Vec<Value> = r["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| {
            let rows: Vec<Value> = e["holders"]
                .as_array()
                .expect("holders")
                .iter()
                .map(|h| {
                    json!([
                        s(&h["holder"]),
                        s(&h["class"]),
                        render::units(&dec(&h["units"])),
                        render::percent(&dec(&h["percent"])),
                        opt_money(&h["value"]),
                    ])
                })
                .collect();
            // No holders: a sentence, not an empty table.
            let rows = if rows.is_empty() {
                Value::Null
            } else {
                json!(rows)
            };
            json!([
                s(&e["entity"]),
                render::units(&dec(&e["total_units"])),
                opt_money(&e["post_money"]),
                rows
            ])
        })
        .collect();
    json!(entities)
}

const OWNERSHIP_ON_PAGE: &str = "[...document.querySelectorAll('section.entity')].map((s) => [\
    s.dataset.entity, s.querySelector('[data-fact=total_units]').textContent,\
    s.querySelector('[data-fact=post_money]').textContent, cells(s.querySelector('table.holders'))])";

fn obligation_rows(list: &Value) -> Vec<Value> {
    list.as_array()
        .expect("obligations")
        .iter()
        .map(|o| {
            let status = if o["overdue"] == json!(true) {
                format!("{}, overdue", s(&o["status"]))
            } else {
                s(&o["status"])
            };
            json!([
                s(&o["obligation"]),
                s(&o["kind"]),
                s(&o["obligor"]),
                opt(&o["obligee"]),
                render::money(&money(&o["amount"])),
                render::money(&money(&o["settled"])),
                render::money(&money(&o["outstanding"])),
                status,
                opt(&o["due"]),
            ])
        })
        .collect()
}

/// The obligations answer as the page must show it: the rows, and the totals by obligor.
fn obligations_expected(r: &Value) -> Value {
    if r["obligations"].as_array().is_none_or(Vec::is_empty) {
        return json!([null, null]);
    }
    let totals: Vec<Value> = r["totals"]
        .as_array()
        .expect("totals")
        .iter()
        .map(|t| {
            json!([
                s(&t["obligor"]),
                format!(
                    "{} {}",
                    present::human::group_thousands(&s(&t["outstanding"])),
                    s(&t["currency"])
                )
            ])
        })
        .collect();
    // Nothing outstanding: a sentence, not an empty table.
    let totals = if totals.is_empty() {
        Value::Null
    } else {
        json!(totals)
    };
    json!([obligation_rows(&r["obligations"]), totals])
}

const OBLIGATIONS_ON_PAGE: &str =
    "[cells(document.querySelector('table.obligations')), cells(document.querySelector('table.totals'))]";

/// The rows of every table in the CLI's table output, as cells: a table's lines are indented
/// by two spaces, its first one the header, and its cells stand two spaces or more apart.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut header = true;
    for line in text.lines() {
        let Some(row) = line.strip_prefix("  ") else {
            header = true;
            continue;
        };
        if std::mem::take(&mut header) || row.trim() == "none" {
            continue;
        }
        let cells = row
            .trim()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        rows.push(cells);
    }
    rows
}

/// Every row of every table on the page, its empty cells left out.
fn page_rows(b: &mut Browser, scope: &str) -> Vec<Vec<String>> {
    let v = b.read(&format!(
        "[...document.querySelectorAll({})].flatMap((t) => cells(t))",
        json!(format!("{scope} table.grid"))
    ));
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("cells")
                .iter()
                .map(s)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect()
}

/// The page shows the rows of the CLI's table for the same question.
fn same_as_cli(b: &mut Browser, server: &Served, path: &str) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let cli = get_text(server, &format!("{path}{sep}format=table"));
    let expected = table_rows(&cli);
    assert!(!expected.is_empty(), "{path}: no rows in\n{cli}");
    assert_eq!(
        page_rows(b, "#content"),
        expected,
        "{path}, the CLI's table:\n{cli}"
    );
}

fn check_ownership(b: &mut Browser, server: &Served, as_of: &str, known_at: Option<&str>) {
    let path = format!("/v1/ledgers/main/ownership?{}", params(as_of, known_at));
    let expected = ownership_expected(&get(server, &path));
    assert_eq!(b.read(OWNERSHIP_ON_PAGE), expected, "{path}");
    same_as_cli(b, server, &path);
    // Each entity's timeline chart, fetched with fetch() and shown from a blob: URL.
    let charts = b.read(
        "[...document.querySelectorAll('section.entity')].map((s) => { \
         const i = s.querySelector('img.timeline'); \
         return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; })",
    );
    let all = charts.as_array().expect("charts");
    assert!(
        !all.is_empty() && all.iter().all(|c| c == &json!(true)),
        "{path}: charts {charts}"
    );
}

fn check_obligations(
    b: &mut Browser,
    server: &Served,
    as_of: &str,
    known_at: Option<&str>,
    all: bool,
) {
    let mut path = format!("/v1/ledgers/main/obligations?{}", params(as_of, known_at));
    if all {
        path.push_str("&all=true");
    }
    let expected = obligations_expected(&get(server, &path));
    assert_eq!(b.read(OBLIGATIONS_ON_PAGE), expected, "{path}");
    same_as_cli(b, server, &path);
}

/// The inputs of the header bar, the active tab and the URL's query.
fn bar(b: &mut Browser) -> Value {
    b.eval(
        "[document.getElementById('ledger').value, document.querySelector('#tabs a.active').dataset.view, \
         document.getElementById('as-of').value, document.getElementById('known-at').value]",
    )
}

fn chromium_or_skip() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "{CHROMIUM} is missing, and CI=true: .ci/run installs it (apt-get install chromium)"
    );
    eprintln!(
        "skipped: {CHROMIUM} is missing (apt-get install chromium); the web page is not tested"
    );
    false
}

#[test]
fn the_page_shows_the_apis_answers_and_follows_the_log() {
    if !chromium_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("accord.db");
    testkit::ok(&store, &["demo"]);
    let server = Served::start(Some(&store), &[]);
    let mut b = Browser::launch();
    let page = |q: &str| server.url(&format!("/?ledger=main&{q}"));

    // A shared link shows its view, inputs and answer, and keeps its URL.
    let link = "view=obligations&as_of=2025-10-28&known_at=36";
    b.open(&page(link));
    assert_eq!(
        bar(&mut b),
        json!(["main", "obligations", "2025-10-28", "36"])
    );
    assert_eq!(b.search(), format!("?ledger=main&{link}"));
    check_obligations(&mut b, &server, "2025-10-28", Some("36"), false);
    assert_eq!(
        b.eval("document.getElementById('head-seq').textContent"),
        json!("seq 42"),
        "the head the answer was computed at"
    );

    // The four answers of the cap table, reached with the page's own inputs; each change is
    // a new URL.
    b.open(&page("view=ownership&as_of=2025-10-27&known_at=36"));
    check_ownership(&mut b, &server, "2025-10-27", Some("36"));
    b.set("known-at", "");
    b.settle("everything recorded");
    assert_eq!(b.search(), "?ledger=main&view=ownership&as_of=2025-10-27");
    check_ownership(&mut b, &server, "2025-10-27", None);
    b.set("as-of", "2025-10-28");
    b.settle("2025-10-28");
    assert_eq!(b.search(), "?ledger=main&view=ownership&as_of=2025-10-28");
    check_ownership(&mut b, &server, "2025-10-28", None);
    b.set("known-at", "36");
    b.settle("known at 36");
    assert_eq!(
        b.search(),
        "?ledger=main&view=ownership&as_of=2025-10-28&known_at=36"
    );
    check_ownership(&mut b, &server, "2025-10-28", Some("36"));

    // A tab keeps the date and known-at; the browser's back button comes back.
    b.click("#tabs a[data-view=obligations]");
    b.settle("the obligations tab");
    assert_eq!(
        bar(&mut b),
        json!(["main", "obligations", "2025-10-28", "36"])
    );
    check_obligations(&mut b, &server, "2025-10-28", Some("36"), false);
    b.eval("history.back()");
    b.wait(
        "back to ownership",
        &format!("location.search.includes('view=ownership') && {READY}"),
    );
    assert_eq!(
        bar(&mut b),
        json!(["main", "ownership", "2025-10-28", "36"])
    );
    check_ownership(&mut b, &server, "2025-10-28", Some("36"));

    // The obligations on the two dates at the two known-at times, and with the settled ones.
    for (as_of, known_at) in [
        ("2025-10-27", Some("36")),
        ("2025-10-27", None),
        ("2025-10-28", None),
    ] {
        b.open(&page(&format!(
            "view=obligations&{}",
            params(as_of, known_at)
        )));
        check_obligations(&mut b, &server, as_of, known_at, false);
    }
    b.click("#all");
    b.settle("all obligations");
    assert_eq!(
        b.search(),
        "?ledger=main&view=obligations&as_of=2025-10-28&all=true"
    );
    check_obligations(&mut b, &server, "2025-10-28", None, true);

    // The other reports hold the CLI's rows too.
    for (view, api) in [
        ("rights", "rights?as_of=2025-10-28&all=true"),
        ("rights", "rights?as_of=2026-04-28&known_at=36"),
        (
            "position&party=microsoft",
            "positions/microsoft?as_of=2025-10-28",
        ),
        (
            "position&party=openai-group&all=true",
            "positions/openai-group?as_of=2026-04-28&all=true",
        ),
        ("diff", "diff?as_of=2026-04-28&known_at=36"),
    ] {
        let q = api.split_once('?').map_or("", |(_, q)| q);
        b.open(&page(&format!("view={view}&{q}")));
        same_as_cli(&mut b, &server, &format!("/v1/ledgers/main/{api}"));
    }

    // A refusal shows the API's own words.
    for (q, api) in [
        (
            "view=position&party=nobody&as_of=2025-10-28",
            "positions/nobody?as_of=2025-10-28",
        ),
        (
            "view=ownership&as_of=2025-10-28&known_at=soon",
            "ownership?as_of=2025-10-28&known_at=soon",
        ),
    ] {
        b.open(&page(q));
        let r = server.get(&format!("/v1/ledgers/main/{api}"));
        assert!(r.status >= 400, "{api}: {}", r.status);
        let shown = b.eval("document.getElementById('problem-detail').textContent");
        assert_eq!(shown, r.json()["detail"], "{q}");
    }

    // The screenshot of the docs: the cap table and its chart on the day of the recapitalization.
    b.open(&page("view=ownership&as_of=2025-10-28"));
    b.eval("window.scrollTo(0, 0)");
    // The page's fade from the previous answer (0.15 s) is over before the picture.
    b.eval("new Promise((done) => setTimeout(done, 400))");
    // Into the test's own directory, or into docs/ when asked (`ACCORD_SCREENSHOT=1`), so
    // that a test run leaves the checkout as it was.
    let shot = if std::env::var_os("ACCORD_SCREENSHOT").is_some_and(|v| v == "1") {
        testkit::root().join("docs/screenshot.png")
    } else {
        std::env::temp_dir().join(format!("accord-screenshot-{}.png", std::process::id()))
    };
    b.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "a screenshot"
    );

    // The log, newest first, and an event appended by someone else shows by itself.
    b.open(&page("view=log"));
    let log = get_text(&server, "/v1/ledgers/main/log");
    let mut seqs: Vec<Value> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a log line")["seq"]
                .to_string()
                .into()
        })
        .collect();
    seqs.reverse();
    let shown =
        b.read("[...document.querySelectorAll('#log-rows tr.event')].map((r) => r.dataset.seq)");
    assert_eq!(shown, json!(seqs), "the log, newest first");
    // A limit removed reads as such, not as "until -".
    let what = b.read(
        "[...document.querySelectorAll('#log-rows tr.event')].map((r) => \
         [r.dataset.id, r.querySelector('[data-col=what]').textContent])",
    );
    let what: Vec<(String, String)> = serde_json::from_value(what).expect("the log's rows");
    assert!(
        what.iter()
            .all(|(_, w)| !w.contains("until -") && !w.contains("milestone -")),
        "{what:?}"
    );
    assert!(
        what.contains(&(
            "2025-10-28-right-revenue-share-until-agi".into(),
            "revenue-share: no end date".into()
        )),
        "{what:?}"
    );
    b.wait(
        "the live log",
        "document.getElementById('live').classList.contains('on')",
    );
    let event = r#"{"id":"browser-test-1","type":"obligation_settled","effective":"2026-05-01","obligation":"msft-funding","amount":{"amount":"100000000","currency":"USD"}}"#;
    let appended = server.post("/v1/ledgers/main/events", &format!("{event}\n"));
    assert_eq!(appended.status, 200, "{}", appended.text());
    let top = b.wait(
        "the appended event at the top of the log",
        "(() => { const r = document.querySelector('#log-rows tr.event'); \
         return r && r.dataset.id === 'browser-test-1' && [r.dataset.seq, r.querySelector('[data-col=type]').textContent]; })()",
    );
    assert_eq!(top, json!(["43", "obligation_settled"]));
    assert_eq!(
        b.eval("document.querySelectorAll('#log-rows tr.event').length"),
        json!(43)
    );

    assert!(b.errors.is_empty(), "the page reported: {:#?}", b.errors);
    drop(server);

    // With tokens: the page asks once, keeps the token out of the URL, and shows a ledger
    // without a store yet as the API's 503, an empty one as a sentence; a token for another
    // ledger can be changed.
    let tokens = dir.path().join("tokens.txt");
    let mut file = String::new();
    let mut new_token = |args: &[&str]| {
        let args = [&["token", "new"], args].concat();
        let made = testkit::checked(testkit::command().args(&args), &args).stdout;
        let mut lines = made.lines();
        let token = lines.next().expect("a token").to_string();
        file.push_str(lines.next().expect("its line"));
        file.push('\n');
        token
    };
    let token = new_token(&["read"]);
    let spare_token = new_token(&["read", "--ledgers", "spare"]);
    let blank_writer = new_token(&["write", "--ledgers", "blank"]);
    std::fs::write(&tokens, file).expect("tokens");
    let missing = dir.path().join("missing.db");
    let blank_store = dir.path().join("blank.db");
    testkit::ok_stdin(&blank_store, &["append", "-"], "");
    let main = format!("main={}", store.display());
    let spare = format!("spare={}", missing.display());
    let blank = format!("blank={}", blank_store.display());
    let server = Served::start(
        None,
        &[
            "--tokens",
            tokens.to_str().unwrap(),
            "--ledger",
            &main,
            "--ledger",
            &spare,
            "--ledger",
            &blank,
        ],
    );
    let url = server.url("/?ledger=main&view=ownership&as_of=2025-10-28");
    b.eval("window.__left = true");
    b.call("Page.navigate", json!({"url": url}), true);
    b.wait(
        "the token form",
        "!window.__left && document.getElementById('token-dialog').open",
    );
    b.eval(&format!(
        "(() => {{ document.getElementById('token-input').value = {}; \
         document.getElementById('token-submit').click(); }})()",
        json!(token)
    ));
    b.settle("the answer with a token");
    let bearer = format!("Bearer {token}");
    let r = server.get_with(
        "/v1/ledgers/main/ownership?as_of=2025-10-28",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(b.read(OWNERSHIP_ON_PAGE), ownership_expected(&r.json()));
    assert_eq!(
        b.eval("sessionStorage.getItem('accord.token')"),
        json!(token)
    );
    assert!(
        !b.eval("location.href").to_string().contains(&token),
        "no token in the URL"
    );
    b.set("ledger", "spare");
    b.settle("the ledger without a store");
    assert!(
        !b.eval("document.getElementById('token-dialog').open")
            .as_bool()
            .unwrap_or(true),
        "asked once"
    );
    let r = server.get_with("/v1/ledgers/spare/ownership", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        b.eval("document.getElementById('problem-detail').textContent"),
        r.json()["detail"]
    );

    // A ledger whose store holds no event: its log is a sentence, not an empty table, until
    // its first event (appended by someone else) shows up.
    b.set("ledger", "blank");
    b.settle("the empty ledger");
    b.click("#tabs a[data-view=log]");
    b.settle("the empty ledger's log");
    assert_eq!(
        b.eval(
            "[document.querySelector('#content table'),              document.getElementById('content').textContent.includes('No events yet')]"
        ),
        json!([null, true])
    );
    b.wait(
        "the empty ledger's live log",
        "document.getElementById('live').classList.contains('on')",
    );
    let first = r#"{"id":"blank-1","type":"party_registered","effective":"2026-01-01","party":"acme","name":"Acme","kind":"corporation"}"#;
    let writer = format!("Bearer {blank_writer}");
    let appended = server.post_with(
        "/v1/ledgers/blank/events",
        &[
            ("Authorization", &writer),
            ("Content-Type", "application/x-ndjson"),
        ],
        format!("{first}\n").as_bytes(),
    );
    assert_eq!(appended.status, 200, "{}", appended.text());
    b.wait(
        "the first event in the log",
        "(() => { const r = document.querySelector('#log-rows tr.event'); \
         return r && r.dataset.id === 'blank-1'; })()",
    );

    // A token for another ledger: main answers 403, and "Change token" (by the problem, and
    // in the bar) forgets it and asks for another.
    b.eval(&format!(
        "sessionStorage.setItem('accord.token', {})",
        json!(spare_token)
    ));
    b.open(&url);
    let spare_bearer = format!("Bearer {spare_token}");
    let r = server.get_with(
        "/v1/ledgers/main/ownership?as_of=2025-10-28",
        &[("Authorization", &spare_bearer)],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        b.eval(
            "[document.getElementById('problem-detail').textContent,              document.getElementById('change-token').hidden]"
        ),
        json!([r.json()["detail"], false])
    );
    b.click("#problem-change-token");
    b.wait(
        "the token form, to change the token",
        "document.getElementById('token-dialog').open",
    );
    assert_eq!(
        b.eval("sessionStorage.getItem('accord.token')"),
        Value::Null
    );
    b.eval(&format!(
        "(() => {{ document.getElementById('token-input').value = {}; \
         document.getElementById('token-submit').click(); }})()",
        json!(token)
    ));
    b.settle("the answer with the changed token");
    let r = server.get_with(
        "/v1/ledgers/main/ownership?as_of=2025-10-28",
        &[("Authorization", &bearer)],
    );
    assert_eq!(b.read(OWNERSHIP_ON_PAGE), ownership_expected(&r.json()));
    assert_eq!(
        b.eval("sessionStorage.getItem('accord.token')"),
        json!(token)
    );
    assert!(b.errors.is_empty(), "the page reported: {:#?}", b.errors);
}
