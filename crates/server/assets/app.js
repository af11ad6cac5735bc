"use strict";
// accord's web page: the reports of one ledger for a valid date (as of) and a transaction time
// (known at), over the JSON API of `accord serve` (HTTP.md). Plain JavaScript, no build step,
// nothing fetched but this server's API. Every text from the API reaches the page through
// textContent, never as HTML. Numbers are the API's decimal strings, formatted by the rules of
// the CLI's tables (crates/present/src/render.rs, human.rs) without ever becoming floats.

(() => {
  const TOKEN_KEY = "accord.token";
  // Events of the log loaded at first (newest); older ones on demand.
  const LOG_WINDOW = 500;
  const VIEWS = ["ownership", "obligations", "rights", "position", "diff", "log"];
  // Each view's own query parameters, besides ledger, view, as_of and known_at.
  const VIEW_PARAMS = {
    ownership: ["entity"],
    obligations: ["party", "all"],
    rights: ["party", "all"],
    position: ["party", "all"],
    diff: ["vs_known_at"],
    log: [],
  };

  // ------------------------------------------------------------ formatting (the CLI's rules)

  // human::group_thousands: `1234567.5` -> `1,234,567.5` (the integer part only).
  function groupThousands(s) {
    s = String(s);
    let sign = "";
    let body = s;
    if (s.startsWith("-")) {
      sign = "-";
      body = s.slice(1);
    }
    const dot = body.indexOf(".");
    const int = dot < 0 ? body : body.slice(0, dot);
    let out = "";
    for (let i = 0; i < int.length; i++) {
      if (i > 0 && (int.length - i) % 3 === 0) out += ",";
      out += int[i];
    }
    return dot < 0 ? sign + out : `${sign}${out}.${body.slice(dot + 1)}`;
  }

  // A decimal string rounded half-even to `places` decimals, on its digits.
  function roundHalfEven(s, places) {
    let sign = "";
    if (s.startsWith("-")) {
      sign = "-";
      s = s.slice(1);
    }
    const dot = s.indexOf(".");
    if (dot < 0 || s.length - dot - 1 <= places) return sign + s;
    const int = s.slice(0, dot);
    const frac = s.slice(dot + 1);
    const digits = (int + frac.slice(0, places)).split("");
    const rest = frac.slice(places);
    let up;
    if (rest[0] > "5") up = true;
    else if (rest[0] < "5") up = false;
    else if (/[1-9]/.test(rest.slice(1))) up = true;
    else up = Number(digits[digits.length - 1]) % 2 === 1;
    if (up) {
      let i = digits.length - 1;
      for (; i >= 0; i--) {
        if (digits[i] === "9") {
          digits[i] = "0";
        } else {
          digits[i] = String(Number(digits[i]) + 1);
          break;
        }
      }
      if (i < 0) digits.unshift("1");
    }
    const cut = digits.length - places;
    const whole = digits.slice(0, cut).join("") || "0";
    return sign + (places > 0 ? `${whole}.${digits.slice(cut).join("")}` : whole);
  }

  // Decimal::normalize: no trailing zeros after the point, no bare point, no minus zero.
  function normalize(s) {
    if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    if (/^-0*$/.test(s)) s = "0";
    return s;
  }

  const fmt = {
    // render::money: `135,000,000,000 USD`; a fraction shows at least two decimals.
    money(m) {
      let text = String(m.amount);
      const dot = text.indexOf(".");
      if (dot >= 0 && text.length - dot - 1 === 1) text += "0";
      return `${groupThousands(text)} ${m.currency}`;
    },
    optMoney(m) {
      return m == null ? "-" : fmt.money(m);
    },
    // render::units: thousands grouped, a fraction rounded half-even to 6 places.
    units(u) {
      return groupThousands(normalize(roundHalfEven(String(u), 6)));
    },
    // render::percent
    percent(p) {
      return `${p} %`;
    },
    // render::opt
    opt(v) {
      return v == null ? "-" : String(v);
    },
    // The "Outstanding by obligor" table: grouped, no padding of the decimals.
    total(t) {
      return `${groupThousands(t.outstanding)} ${t.currency}`;
    },
    status(o) {
      return o.overdue ? `${o.status}, overdue` : String(o.status);
    },
    inForce(r) {
      return r.ended == null ? "yes" : `no (${r.ended})`;
    },
    multiple(m) {
      return m == null ? "-" : `${m}x`;
    },
  };

  // ------------------------------------------------------------ small DOM helpers

  const $ = (id) => document.getElementById(id);

  // An element with properties (class, text, title, data-*, on*) and children (nodes or text).
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value" || k === "checked" || k === "disabled" || k === "selected") e[k] = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      e.append(kid instanceof Node ? kid : String(kid));
    }
    return e;
  }

  // A table: columns are [key, label, "num"?]; rows are arrays of cells (text or nodes), or
  // {cells, class} objects.
  function table(cls, columns, rows) {
    const head = h("tr", null, columns.map(([key, label, kind]) =>
      h("th", { class: kind === "num" ? "num" : null, scope: "col", "data-col": key }, label)));
    const body = rows.map((row) => {
      const cells = Array.isArray(row) ? row : row.cells;
      return h("tr", { class: Array.isArray(row) ? null : row.class },
        cells.map((c, i) => {
          const [key, , kind] = columns[i];
          return h("td", { class: kind === "num" ? "num" : null, "data-col": key }, c);
        }));
    });
    return h("table", { class: `grid ${cls}` }, h("thead", null, head), h("tbody", null, body));
  }

  // An id, with the party's name under it when known (or, `compact`, as its tooltip).
  function ident(id, name, compact = false) {
    if (compact) return h("span", { class: "ident", title: name || null }, id);
    return [h("span", { class: "ident" }, id), name ? h("span", { class: "sub" }, name) : null];
  }

  function pill(text, kind) {
    return h("span", { class: `pill ${kind}` }, text);
  }

  function section(title, ...kids) {
    return h("section", { class: "card" }, title ? h("h2", null, title) : null, kids);
  }

  function empty(text) {
    return h("p", { class: "empty" }, text);
  }

  // An RFC 3339 time (any offset, any fraction of a second) as a text that compares as the
  // instant does: UTC, nanoseconds, `2026-04-01T08:30:00.000000000Z`; null if it is not one.
  const utcKeys = new Map();
  function utcKey(t) {
    if (utcKeys.has(t)) return utcKeys.get(t);
    const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(String(t));
    let key = null;
    if (m) {
      const offset = /[Zz]/.test(m[8]) ? 0
        : (m[8][0] === "-" ? -1 : 1) * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6)));
      const d = new Date(0);
      d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      d.setUTCHours(Number(m[4]), Number(m[5]) - offset, Number(m[6]), 0);
      const iso = Number.isNaN(d.getTime()) ? "" : d.toISOString();
      if (/^\d{4}-/.test(iso)) key = `${iso.slice(0, 19)}.${(m[7] || "").padEnd(9, "0").slice(0, 9)}Z`;
    }
    if (utcKeys.size > 10000) utcKeys.clear();
    utcKeys.set(t, key);
    return key;
  }

  function todayUtc() {
    return new Date().toISOString().slice(0, 10);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  let tokenAsk = null;

  // The header's "Change token" shows whenever a token is kept in this tab.
  function syncTokenButton() {
    $("change-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  // Shows the token form (once, however many requests wait for it); resolves when a token
  // is given. `why`: "refused" (a 401 for the token kept), "change" (asked for by the
  // reader), or nothing (the server asks for one).
  function askToken(why) {
    if (!tokenAsk) {
      tokenAsk = new Promise((resolve) => {
        const dialog = $("token-dialog");
        const input = $("token-input");
        $("token-title").textContent = why === "change" ? "Give another token" : "A token is needed";
        $("token-why").textContent = why === "refused"
          ? "The token given was refused (401). Give another one; it is kept in this tab only and never put in a link."
          : why === "change"
            ? "The token kept in this tab is forgotten. Give the one to use now; it is kept in this tab only (session storage) and never put in a link."
            : "This server asks for a token. It is kept in this tab only (session storage) and sent as a bearer token, never in a link.";
        input.value = "";
        const done = (event) => {
          event.preventDefault();
          const token = input.value.trim();
          if (!token) return;
          sessionStorage.setItem(TOKEN_KEY, token);
          syncTokenButton();
          $("token-form").removeEventListener("submit", done);
          dialog.close();
          tokenAsk = null;
          resolve();
        };
        $("token-form").addEventListener("submit", done);
        if (!dialog.open) dialog.showModal();
        input.focus();
      });
    }
    return tokenAsk;
  }

  function apiUrl(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== "" && v !== false) url.searchParams.set(k, String(v));
    }
    return url;
  }

  // A request to the API; answers 401 by asking for a token and trying again; any other
  // error status throws an ApiError with the problem's detail.
  async function request(path, params, options = {}) {
    for (;;) {
      const headers = Object.assign({}, options.headers);
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.Authorization = `Bearer ${token}`;
      const r = await fetch(apiUrl(path, params), {
        headers,
        signal: options.signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      if (r.status === 401) {
        const now = sessionStorage.getItem(TOKEN_KEY);
        // A token given meanwhile (this request went out before it) is simply tried.
        if (now && now !== token) continue;
        if (now) sessionStorage.removeItem(TOKEN_KEY);
        syncTokenButton();
        await askToken(token && now ? "refused" : null);
        continue;
      }
      if (!r.ok) {
        let problem = {};
        try {
          problem = await r.json();
        } catch (_) {
          problem = { detail: `${r.status} ${r.statusText}` };
        }
        throw new ApiError(r.status, problem);
      }
      const head = r.headers.get("Accord-Head");
      if (head && options.answer) noteAnswer(head);
      return r;
    }
  }

  async function getJson(path, params, ctx) {
    const r = await request(path, params, { signal: ctx && ctx.signal, answer: Boolean(ctx) });
    return r.json();
  }

  function ledgerPath(ledger, rest) {
    return `/v1/ledgers/${encodeURIComponent(ledger)}/${rest}`;
  }

  // ------------------------------------------------------------ state and the URL

  let state = readUrl();
  // Each view's parameters as last used, restored when coming back to it.
  const memory = {};
  let ledgers = [];
  // The head that the shown answer was computed at: {seq, hash}.
  let answered = null;
  let feed = null;
  // The parties seen in the log and in answers; the names of entities, from answers.
  const parties = new Set();
  const entities = new Map();

  // A party's name on the chosen date as known at the chosen time (its registration and
  // updates in the log), or "" when the log loaded says nothing.
  function partyName(id) {
    return feed ? feed.nameAt(id, state.as_of || todayUtc(), state.known_at) : "";
  }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    const view = VIEWS.includes(p.get("view")) ? p.get("view") : "ownership";
    const s = {
      ledger: p.get("ledger") || "",
      view,
      as_of: p.get("as_of") || "",
      known_at: p.get("known_at") || "",
      entity: "",
      party: "",
      all: false,
      vs_known_at: "",
    };
    for (const k of VIEW_PARAMS[view]) {
      if (k === "all") s.all = p.get("all") === "true";
      else s[k] = p.get(k) || "";
    }
    return s;
  }

  function urlOf(s) {
    const p = new URLSearchParams();
    if (s.ledger) p.set("ledger", s.ledger);
    p.set("view", s.view);
    if (s.as_of) p.set("as_of", s.as_of);
    if (s.known_at) p.set("known_at", s.known_at);
    for (const k of VIEW_PARAMS[s.view]) {
      if (k === "all") {
        if (s.all) p.set("all", "true");
      } else if (s[k]) {
        p.set(k, s[k]);
      }
    }
    return `?${p}`;
  }

  function viewParams(s) {
    const out = {};
    for (const k of VIEW_PARAMS[s.view]) out[k] = s[k];
    return out;
  }

  // Changes the state, records it in the history (a new entry unless `replace`), and shows it.
  function navigate(changes, replace = false) {
    let next = Object.assign({}, state, changes);
    if (next.view !== state.view) {
      memory[state.view] = viewParams(state);
      const blank = { entity: "", party: "", all: false, vs_known_at: "" };
      next = Object.assign(next, blank, memory[next.view] || {}, changes);
    }
    const ledgerChanged = next.ledger !== state.ledger;
    state = next;
    const url = urlOf(state);
    if (url !== location.search) {
      if (replace) history.replaceState(null, "", url);
      else history.pushState(null, "", url);
    }
    if (ledgerChanged) startFeed();
    render();
  }

  window.addEventListener("popstate", () => {
    const before = state.ledger;
    state = readUrl();
    if (!state.ledger && ledgers.length) state.ledger = ledgers[0].ledger;
    if (state.ledger !== before) startFeed();
    render();
  });

  // ------------------------------------------------------------ the header bar

  function syncBar() {
    const select = $("ledger");
    const list = ledgers.map((l) => l.ledger);
    if (state.ledger && !list.includes(state.ledger)) list.push(state.ledger);
    if (select.options.length !== list.length || [...select.options].some((o, i) => o.value !== list[i])) {
      select.replaceChildren(...list.map((n) => h("option", { value: n }, n)));
    }
    select.value = state.ledger;
    $("as-of").value = state.as_of || todayUtc();
    const known = $("known-at");
    if (document.activeElement !== known || known.value !== state.known_at) known.value = state.known_at;
    $("known-now").disabled = !state.known_at;
    syncTokenButton();
    for (const a of document.querySelectorAll("#tabs a")) {
      const view = a.dataset.view;
      const target = Object.assign({}, state, { view }, { entity: "", party: "", all: false, vs_known_at: "" },
        view === state.view ? viewParams(state) : memory[view] || {});
      a.href = urlOf(target);
      if (view === state.view) {
        a.setAttribute("aria-current", "page");
        a.classList.add("active");
      } else {
        a.removeAttribute("aria-current");
        a.classList.remove("active");
      }
    }
    document.title = `accord: ${state.ledger || "…"} · ${tabLabel(state.view)}`;
  }

  function tabLabel(view) {
    const a = document.querySelector(`#tabs a[data-view="${view}"]`);
    return a ? a.firstChild.textContent.trim() : view;
  }

  function noteAnswer(head) {
    const i = head.indexOf(":");
    answered = { seq: Number(head.slice(0, i)), hash: head.slice(i + 1) };
    showHead();
  }

  function showHead() {
    const el = $("head");
    el.replaceChildren();
    if (!answered) {
      el.title = "";
      return;
    }
    el.title = `The answer was computed at head ${answered.seq}:${answered.hash}`;
    el.append(h("span", { class: "label" }, "answer at"), " ",
      h("strong", { id: "head-seq" }, `seq ${answered.seq}`), " ",
      h("code", null, answered.hash.slice(0, 8)));
    if (feed && feed.newest > answered.seq) {
      el.append(" ", h("span", { class: "behind" }, `ledger at ${feed.newest}`));
    }
  }

  $("ledger").addEventListener("change", (e) => navigate({ ledger: e.target.value }));
  $("as-of").addEventListener("change", (e) => {
    if (/^\d{4}-\d{2}-\d{2}$/.test(e.target.value)) navigate({ as_of: e.target.value });
  });
  const knownAt = () => {
    const v = $("known-at").value.trim();
    if (v !== state.known_at) navigate({ known_at: v });
  };
  $("known-at").addEventListener("change", knownAt);
  $("known-at").addEventListener("keydown", (e) => {
    if (e.key === "Enter") knownAt();
  });
  $("token-dialog").addEventListener("cancel", (e) => e.preventDefault());
  $("change-token").addEventListener("click", () => changeToken());
  $("known-now").addEventListener("click", () => navigate({ known_at: "" }));
  $("tabs").addEventListener("click", (e) => {
    const a = e.target.closest("a[data-view]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate({ view: a.dataset.view });
  });
  $("brand").addEventListener("click", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate({ view: "ownership", as_of: "", known_at: "", entity: "" });
  });
  $("copy-link").addEventListener("click", async () => {
    const pinned = Object.assign({}, state, {
      as_of: state.as_of || todayUtc(),
      known_at: state.known_at || (answered ? String(answered.seq) : ""),
    });
    const link = new URL(urlOf(pinned), location.href).href;
    const button = $("copy-link");
    try {
      await navigator.clipboard.writeText(link);
      button.textContent = "Copied";
    } catch (_) {
      notice(`Link to this answer: ${link}`, "info");
    }
    setTimeout(() => { button.textContent = "Copy link"; }, 1500);
  });

  function notice(text, kind = "error") {
    const n = $("notice");
    if (!text) {
      n.hidden = true;
      n.replaceChildren();
      return;
    }
    n.hidden = false;
    n.className = `notice ${kind}`;
    n.replaceChildren(h("span", null, text));
  }

  // ------------------------------------------------------------ view toolbars

  function partyLabel(id) {
    const name = partyName(id);
    return name ? `${name} (${id})` : id;
  }

  function partySelect(value, blank, onChange) {
    const ids = [...parties];
    if (value && !ids.includes(value)) ids.push(value);
    ids.sort();
    return h("select", { id: "party", "aria-label": "Party", onchange: (e) => onChange(e.target.value) },
      h("option", { value: "", selected: !value }, blank),
      ids.map((id) => h("option", { value: id, selected: id === value }, partyLabel(id))));
  }

  function allToggle(label) {
    return h("label", { class: "check" },
      h("input", { type: "checkbox", id: "all", checked: state.all,
        onchange: (e) => navigate({ all: e.target.checked }) }),
      " ", label);
  }

  function field(label, control) {
    return h("label", { class: "field" }, h("span", null, label), control);
  }

  // ------------------------------------------------------------ views

  let generation = 0;
  let controller = null;
  let refreshTimer = null;
  // The ledger and view that the content shows (or is loading): {ledger, view}.
  let shown = null;
  // How long an answer may take before the content of the same view says it is loading.
  const LOADING_DELAY = 200;

  // The content's placeholder while a view's first answer is asked for.
  function loading() {
    return h("div", { class: "loading", id: "loading", role: "status" }, "Loading…");
  }

  // Shows the current state: the view's answer, or the problem the API gave.
  async function render(quiet = false) {
    const gen = ++generation;
    if (controller) controller.abort();
    controller = new AbortController();
    const ctx = { signal: controller.signal, gen };
    document.documentElement.dataset.ready = "";
    syncBar();
    if (!quiet) notice(null);
    const content = $("content");
    content.classList.add("busy");
    // Another view or ledger: its toolbar and answer are not the old ones dimmed, but
    // "Loading…" until they come. The same view asked again (another date, known-at or
    // party) keeps its old answer dimmed, with a quiet "Loading…" over it when the answer
    // takes a while; a refresh for a new event shows nothing.
    const where = { ledger: state.ledger, view: state.view };
    let wait = null;
    if (!shown || shown.ledger !== where.ledger || shown.view !== where.view || !content.firstChild) {
      $("toolbar").replaceChildren();
      content.replaceChildren(loading());
    } else if (!quiet) {
      wait = setTimeout(() => {
        if (gen === generation && !$("loading")) {
          content.append(h("div", { class: "loading over", id: "loading", role: "status" }, "Loading…"));
        }
      }, LOADING_DELAY);
    }
    shown = where;
    const placed = () => {
      clearTimeout(wait);
      content.classList.remove("busy");
    };
    try {
      if (!state.ledger) {
        $("toolbar").replaceChildren();
        content.replaceChildren(empty("No ledger is served to this token."));
        return;
      }
      if (feed) await feed.loaded;
      const { toolbar, body, later } = await VIEWS_RENDER[state.view](ctx);
      if (gen !== generation) return;
      $("toolbar").replaceChildren(...(toolbar || []));
      content.replaceChildren(...[body].flat());
      placed();
      if (later) await later;
    } catch (e) {
      if (gen !== generation || e.name === "AbortError") return;
      $("toolbar").replaceChildren(...failedToolbar());
      content.replaceChildren(problemCard(e));
    } finally {
      if (gen === generation) {
        placed();
        showHead();
        document.documentElement.dataset.ready = location.search;
      }
    }
  }

  function failedToolbar() {
    if (state.view === "position") {
      return [field("Party", partySelect(state.party, "Choose a party…", (p) => navigate({ party: p })))];
    }
    return [];
  }

  function problemCard(e) {
    const status = e instanceof ApiError ? e.status : null;
    const title = status === 503 ? "The ledger cannot be read"
      : status === 404 ? "Not found"
      : status === 403 ? "Not allowed"
      : status ? "The server refused this question" : "The server could not be reached";
    // A token refused, or one that may not read this ledger (a token for another one):
    // the way to give another is right by the problem.
    const tokenFix = (status === 401 || status === 403) && sessionStorage.getItem(TOKEN_KEY)
      ? h("p", { class: "fix" },
        h("button", { type: "button", id: "problem-change-token", onclick: () => changeToken() }, "Change token"),
        " ", h("span", { class: "muted" }, "The token kept in this tab may be for another ledger or role: forget it and give another."))
      : null;
    return h("section", { class: "card problem", role: "alert" },
      h("h2", null, title),
      h("p", { class: "detail", id: "problem-detail" }, e.message || String(e)),
      e instanceof ApiError && e.problem.code
        ? h("p", { class: "code" }, `${status} · ${e.problem.code}`) : null,
      tokenFix);
  }

  // When the log grows and the answer is for everything recorded, ask again (quietly).
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (state.view !== "log" && !state.known_at) render(true);
    }, 400);
  }

  function q() {
    return { as_of: state.as_of, known_at: state.known_at };
  }

  // A party seen in an answer, with its name when the answer gives one.
  function addParty(id) {
    if (id) parties.add(id);
  }

  const VIEWS_RENDER = {
    async ownership(ctx) {
      const r = await getJson(ledgerPath(state.ledger, "ownership"), Object.assign(q(), { entity: state.entity }), ctx);
      for (const e of r.entities) entities.set(e.entity, e.name);
      const ids = [...entities.keys()];
      if (state.entity && !ids.includes(state.entity)) ids.push(state.entity);
      const toolbar = [
        field("Entity", h("select", { id: "entity", "aria-label": "Entity",
          onchange: (e) => navigate({ entity: e.target.value }) },
          h("option", { value: "", selected: !state.entity }, "All entities"),
          ids.map((id) => h("option", { value: id, selected: id === state.entity },
            entities.get(id) ? `${entities.get(id)} (${id})` : id)))),
      ];
      if (!r.entities.length) {
        const of = state.entity ? ` of ${entities.get(state.entity) || state.entity}` : "";
        return { toolbar, body: section(null, empty(`No holdings${of} on ${r.as_of}.`)) };
      }
      const charts = [];
      const body = r.entities.map((e) => {
        const figure = h("figure", { class: "chart", "data-entity": e.entity },
          h("div", { class: "chart-wait" }, "Loading the timeline…"));
        charts.push(chart(e, figure, ctx));
        const rows = e.holders.map((x) => [
          ident(x.holder, partyName(x.holder)),
          x.class,
          fmt.units(x.units),
          fmt.percent(x.percent),
          fmt.optMoney(x.value),
        ]);
        return h("section", { class: "card entity", "data-entity": e.entity },
          h("div", { class: "card-head" },
            h("h2", null, e.name || "?", " ", h("span", { class: "muted" }, `(${e.entity})`)),
            h("p", { class: "facts" },
              h("span", null, "on ", h("strong", null, r.as_of)),
              h("span", null, h("strong", { class: "n", "data-fact": "total_units" }, fmt.units(e.total_units)), " units"),
              h("span", null, "post-money ", h("strong", { class: "n", "data-fact": "post_money" }, fmt.optMoney(e.post_money))))),
          h("div", { class: "split" },
            rows.length
              ? table("holders", [["holder", "Holder"], ["class", "Class"], ["units", "Units", "num"],
                ["percent", "Percent", "num"], ["value", "Value", "num"]], rows)
              : empty(`No holders on ${r.as_of}.`),
            figure));
      });
      return { toolbar, body, later: Promise.all(charts) };
    },

    async obligations(ctx) {
      const r = await getJson(ledgerPath(state.ledger, "obligations"),
        Object.assign(q(), { party: state.party, all: state.all }), ctx);
      for (const o of r.obligations) {
        addParty(o.obligor);
        addParty(o.obligee);
      }
      const toolbar = [
        field("Party", partySelect(state.party, "Any party", (p) => navigate({ party: p }))),
        allToggle("Include settled and released"),
      ];
      const title = `Obligations on ${r.as_of}`;
      if (!r.obligations.length) {
        const whose = state.party ? ` of ${partyLabel(state.party)}` : "";
        const none = state.all
          ? `No obligations${whose} on ${r.as_of}.`
          : `No open obligations${whose} on ${r.as_of}. Tick “Include settled and released” for the others.`;
        return { toolbar, body: section(title, empty(none)) };
      }
      return {
        toolbar,
        body: [
          section(title, obligationTable(r.obligations)),
          h("section", { class: "card narrow" }, h("h2", null, "Outstanding by obligor"), r.totals.length
            ? table("totals", [["obligor", "Obligor"], ["outstanding", "Outstanding", "num"]],
              r.totals.map((t) => [ident(t.obligor, partyName(t.obligor)), fmt.total(t)]))
            : empty("Nothing is outstanding.")),
        ],
      };
    },

    async rights(ctx) {
      const r = await getJson(ledgerPath(state.ledger, "rights"),
        Object.assign(q(), { party: state.party, all: state.all }), ctx);
      const toolbar = [
        field("Party", partySelect(state.party, "Any party", (p) => navigate({ party: p }))),
        allToggle("Include rights no longer in force"),
      ];
      const whose = state.party ? ` of ${partyLabel(state.party)}` : "";
      const none = state.all
        ? `No rights${whose} on ${r.as_of}.`
        : `No rights${whose} in force on ${r.as_of}. Tick “Include rights no longer in force” for the others.`;
      const body = [section(`Rights on ${r.as_of}`, r.rights.length ? rightsTable(r.rights) : empty(none))];
      if (r.milestones.length) {
        body.push(section("Milestones", table("milestones",
          [["milestone", "Milestone"], ["declared", "Declared"], ["verified", "Verified"]],
          r.milestones.map((m) => [m.milestone, fmt.opt(m.declared), fmt.opt(m.verified)]))));
      }
      return { toolbar, body };
    },

    async position(ctx) {
      await gatherParties(ctx);
      const toolbar = [
        field("Party", partySelect(state.party, "Choose a party…", (p) => navigate({ party: p }))),
        allToggle("Include settled, released and ended"),
      ];
      if (!state.party) {
        const ids = [...parties].sort();
        return {
          toolbar,
          body: section("Choose a party",
            h("p", { class: "muted" }, "All of one party on the date: holdings, investments, obligations and rights."),
            ids.length
              ? h("div", { class: "choices" }, ids.map((id) =>
                h("button", { type: "button", class: "choice", onclick: () => navigate({ party: id }) }, partyLabel(id))))
              : empty(`No party holds, owes or is granted anything on ${state.as_of || todayUtc()}.`)),
        };
      }
      const p = await getJson(ledgerPath(state.ledger, `positions/${encodeURIComponent(state.party)}`),
        Object.assign(q(), { all: state.all }), ctx);
      const title = p.name
        ? h("h2", null, p.name, " ", h("span", { class: "muted" }, `(${p.party})`), " on ", p.as_of)
        : h("h2", null, p.party, " on ", p.as_of, h("span", { class: "muted" }, ": not registered (as known then)"));
      const part = (label, list, build, none) => section(label, list.length ? build(list) : empty(none));
      return {
        toolbar,
        body: [
          h("section", { class: "card party" }, title),
          h("div", { class: "columns" },
            part("Holdings", p.holdings, (l) => table("holdings",
              [["entity", "Entity"], ["class", "Class"], ["units", "Units", "num"], ["percent", "Percent", "num"], ["value", "Value", "num"]],
              l.map((x) => [ident(x.entity, entities.get(x.entity)), x.class, fmt.units(x.units), fmt.percent(x.percent), fmt.optMoney(x.value)])),
            "No shares held."),
            part("Invested", p.invested, (l) => table("invested",
              [["investee", "Investee"], ["invested", "Invested", "num"], ["value", "Value", "num"], ["multiple", "Multiple", "num"]],
              l.map((x) => [ident(x.investee, partyName(x.investee)), fmt.money(x.amount), fmt.optMoney(x.value), fmt.multiple(x.multiple)])),
            "No investments made.")),
          part("Owes", p.owes, obligationTable, state.all ? "Owes nothing." : "No open obligation owed by this party."),
          part("Owed", p.owed, obligationTable, state.all ? "Is owed nothing." : "No open obligation owed to this party."),
          part("Rights held", p.rights_held, rightsTable, state.all ? "Holds no right." : "Holds no right in force."),
          part("Rights granted", p.rights_granted, rightsTable, state.all ? "Has granted no right." : "Has granted no right in force."),
        ],
      };
    },

    async diff(ctx) {
      const vs = h("input", { id: "vs-known-at", type: "text", placeholder: "everything", value: state.vs_known_at,
        spellcheck: "false", autocomplete: "off",
        title: "The later transaction time: a seq, a date or an RFC 3339 time; empty means everything recorded",
        onchange: (e) => navigate({ vs_known_at: e.target.value.trim() }) });
      const toolbar = [
        h("span", { class: "sentence" }, "What changed on ", h("strong", null, state.as_of || todayUtc()),
          " between known at ", h("strong", null, state.known_at || "…"), " and"),
        field("vs known at", vs),
      ];
      if (!state.known_at) {
        return {
          toolbar,
          body: section("Pick the earlier view",
            h("p", null, "Set “Known at” in the bar above (a seq such as 36, a date or a time): this view shows what changed between what was known then and what is known at “vs known at” (everything recorded when empty).")),
        };
      }
      const r = await getJson(ledgerPath(state.ledger, "diff"),
        Object.assign(q(), { vs_known_at: state.vs_known_at }), ctx);
      const describe = (t, seq) => {
        const upto = seq == null ? "no event" : `up to seq ${seq}`;
        return t == null ? `everything recorded (${upto})` : `known at ${t} (${upto})`;
      };
      const title = `Restatement of ${r.as_of}: ${describe(r.from, r.from_seq)} vs ${describe(r.to, r.to_seq)}`;
      const body = [];
      if (!r.changes.length) {
        body.push(section(title, empty(`No change in ownership, obligations or rights on ${r.as_of}.`)));
      } else {
        const rows = [];
        for (const c of r.changes) {
          const events = c.events.join(" ");
          if (c.before == null || c.after == null) {
            rows.push({ class: "first", cells: [c.area, c.key, c.before == null ? "new" : "gone",
              summary(c.area, c.before), summary(c.area, c.after), events] });
            continue;
          }
          diffFields(c).forEach(([f, b, a], k) => {
            rows.push({ class: k === 0 ? "first" : "more", cells: [k === 0 ? c.area : "", k === 0 ? c.key : "", f,
              show(f, b), show(f, a), k === 0 ? events : ""] });
          });
        }
        body.push(section(title, table("changes",
          [["area", "Area"], ["key", "Key"], ["field", "Field"], ["before", "Before", "num"], ["after", "After", "num"], ["events", "Events"]],
          rows)));
      }
      if (r.events.length) {
        body.push(section(`Events known on one side only that affect ${r.as_of}`, table("events",
          [["seq", "Seq", "num"], ["effective", "Effective"], ["type", "Type"], ["id", "Id"], ["reverses", "Reverses"]],
          r.events.map((e) => [String(e.seq), e.effective, e.type, e.id, fmt.opt(e.reverses)]))));
      }
      return { toolbar, body };
    },

    async log(ctx) {
      const f = feed;
      await f.loaded;
      if (ctx.gen !== generation) return {};
      if (f.error) throw f.error;
      const knownSeq = /^\d+$/.test(state.known_at) ? Number(state.known_at) : null;
      const tbody = h("tbody", { id: "log-rows" });
      const rows = [...f.events.values()].sort((a, b) => b.seq - a.seq);
      for (const e of rows) tbody.append(...logRow(e, knownSeq, false));
      const count = h("span", { id: "log-count", class: "muted" });
      const older = h("button", { type: "button", class: "ghost", id: "log-older",
        onclick: async () => {
          older.disabled = true;
          try {
            await f.loadOlder();
          } catch (e) {
            notice(e.message);
          }
          if (state.view === "log") render(true);
        } }, "Show older events");
      const updateCount = () => {
        count.textContent = `${f.events.size} event${f.events.size === 1 ? "" : "s"} shown, newest first` +
          (f.newest ? ` · head seq ${f.newest}` : "");
        older.hidden = f.oldest <= 1;
      };
      updateCount();
      logView = { tbody, knownSeq, updateCount };
      if (f.head) answered = Object.assign({}, f.head);
      const toolbar = [h("span", { class: "sentence" }, "The events as recorded, updated live as they are appended."), count];
      if (knownSeq != null) {
        toolbar.push(h("span", { class: "pill later" }, `after seq ${knownSeq}: not known at ${state.known_at}`));
      }
      if (!rows.length) {
        // The first event appended (seen by the live stream) shows the table.
        logView.empty = true;
        return {
          toolbar: toolbar.filter((x) => x !== count),
          body: section(null, empty("No events yet: this ledger is created by its first append.")),
        };
      }
      return {
        toolbar,
        body: h("section", { class: "card log" },
          h("table", { class: "grid log-table" },
            h("thead", null, h("tr", null,
              h("th", { class: "num", scope: "col" }, "Seq"), h("th", { scope: "col" }, "Effective"),
              h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Id"),
              h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Recorded"))),
            tbody),
          h("div", { class: "more" }, older)),
      };
    },
  };

  // The ids of every party that the reports of this date name, to choose a position from.
  async function gatherParties(ctx) {
    const params = q();
    const [own, obl, rig] = await Promise.all([
      getJson(ledgerPath(state.ledger, "ownership"), params).catch(() => ({ entities: [] })),
      getJson(ledgerPath(state.ledger, "obligations"), Object.assign({ all: true }, params)).catch(() => ({ obligations: [] })),
      getJson(ledgerPath(state.ledger, "rights"), Object.assign({ all: true }, params)).catch(() => ({ rights: [] })),
    ]);
    if (ctx.signal.aborted) return;
    const add = (id) => addParty(id);
    for (const e of own.entities) {
      entities.set(e.entity, e.name);
      for (const x of e.holders) add(x.holder);
    }
    for (const o of obl.obligations) { add(o.obligor); add(o.obligee); }
    for (const r of rig.rights) { add(r.holder); add(r.grantor); }
  }

  function obligationTable(list) {
    const kind = (s) => s === "open" ? "open" : s === "settled" ? "settled" : "released";
    return table("obligations", [
      ["obligation", "Obligation"], ["kind", "Kind"], ["obligor", "Obligor"], ["obligee", "Obligee"],
      ["amount", "Amount", "num"], ["settled", "Settled", "num"], ["outstanding", "Outstanding", "num"],
      ["status", "Status"], ["due", "Due"],
    ], list.map((o) => [
      o.obligation, o.kind, ident(o.obligor, partyName(o.obligor)),
      o.obligee == null ? "-" : ident(o.obligee, partyName(o.obligee)),
      fmt.money(o.amount), fmt.money(o.settled), fmt.money(o.outstanding),
      pill(fmt.status(o), o.overdue ? "overdue" : kind(o.status)), fmt.opt(o.due),
    ]));
  }

  function rightsTable(list) {
    return table("rights", [
      ["right", "Right"], ["kind", "Kind"], ["holder", "Holder"], ["grantor", "Grantor"],
      ["until", "Until"], ["until_milestone", "Until milestone"], ["in_force", "In force"],
    ], list.map((r) => ({
      class: r.ended == null ? null : "ended",
      cells: [r.right, r.kind, ident(r.holder, partyName(r.holder), true), ident(r.grantor, partyName(r.grantor), true),
        fmt.opt(r.until), fmt.opt(r.until_milestone), pill(fmt.inForce(r), r.ended == null ? "yes" : "no")],
    })));
  }

  // The timeline chart of one entity: the SVG fetched with the token, shown from a blob URL.
  const blobs = new Map();
  async function chart(e, figure, ctx) {
    const params = Object.assign(q(), { entity: e.entity });
    try {
      const r = await request(ledgerPath(state.ledger, "timeline"), Object.assign({ format: "svg" }, params), { signal: ctx.signal });
      const svg = await r.blob();
      if (ctx.signal.aborted) return;
      // The charts of earlier answers that are no longer shown are let go.
      for (const [old, gen] of [...blobs]) {
        if (gen < ctx.gen && !document.querySelector(`img[src="${old}"]`)) {
          URL.revokeObjectURL(old);
          blobs.delete(old);
        }
      }
      const url = URL.createObjectURL(svg);
      blobs.set(url, ctx.gen);
      const img = h("img", { src: url, alt: `Ownership of ${e.name || e.entity} over time`, class: "timeline" });
      await img.decode().catch(() => {});
      figure.replaceChildren(img);
    } catch (err) {
      if (err.name === "AbortError") return;
      figure.replaceChildren(h("p", { class: "muted chart-none" }, `No chart: ${err.message}`));
    }
  }

  // ---- the diff view's rules (crates/present/src/diff.rs)

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

  function keyFields(area) {
    if (area === "ownership") return ["entity", "holder", "class"];
    if (area === "obligations") return ["obligation"];
    return ["right"];
  }

  function diffFields(c) {
    const b = isObject(c.before) ? c.before : null;
    const a = isObject(c.after) ? c.after : null;
    const fields = Object.keys(b || {});
    for (const k of Object.keys(a || {})) if (!fields.includes(k)) fields.push(k);
    const get = (m, k) => (m && m[k] != null ? m[k] : undefined);
    return fields
      .filter((k) => !keyFields(c.area).includes(k))
      .map((k) => [k, get(b, k), get(a, k)])
      .filter(([, x, y]) => JSON.stringify(x) !== JSON.stringify(y));
  }

  function show(field, v) {
    if (v == null) return "-";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "string") {
      if (field === "percent") return `${v} %`;
      if (field === "units") return groupThousands(v);
      return v;
    }
    if (isObject(v) && typeof v.amount === "string" && typeof v.currency === "string") {
      return `${groupThousands(v.amount)} ${v.currency}`;
    }
    return JSON.stringify(v);
  }

  function summary(area, row) {
    if (row == null) return "-";
    if (area === "ownership") return `${show("percent", row.percent)} (${show("units", row.units)} units)`;
    if (area === "obligations") {
      return `${show("outstanding", row.outstanding)} outstanding of ${show("amount", row.amount)}, ${show("status", row.status)}`;
    }
    return typeof row.ended === "string"
      ? `${show("kind", row.kind)}, not in force (${row.ended})`
      : `${show("kind", row.kind)}, in force`;
  }

  // ------------------------------------------------------------ the log and its live feed

  let logView = null;

  // A few words on what an event says.
  function what(e) {
    const m = (x) => (isObject(x) && x.amount != null ? fmt.money(x) : "");
    const holdings = (l) => (l || []).map((x) =>
      `${x.holder} ${x.percent != null ? fmt.percent(x.percent) : fmt.units(x.units)}`).join(", ");
    switch (e.type) {
      case "party_registered": return `${e.name} (${e.kind})`;
      case "party_updated": return [e.name, e.kind].filter(Boolean).join(", ");
      case "shares_issued": return `${e.issuer}: ${fmt.units(e.units)} ${e.class || "common"} to ${e.holder}`;
      case "shares_transferred": return `${e.issuer}: ${fmt.units(e.units)} ${e.class || "common"} from ${e.from} to ${e.to}`;
      case "shares_cancelled": return `${e.issuer}: ${fmt.units(e.units)} ${e.class || "common"} of ${e.holder}`;
      case "shares_split": return `${e.issuer}: ${e.numerator} for ${e.denominator}`;
      case "recapitalized":
      case "holdings_stated": return `${e.issuer}: ${holdings(e.holdings)}`;
      case "valuation_recorded": return `${e.entity}: post-money ${m(e.post_money)}`;
      case "investment_made": return `${e.investor} in ${e.investee}: ${m(e.amount)}`;
      case "obligation_incurred": return `${e.obligation}: ${e.obligor} owes ${m(e.amount)}${e.obligee ? ` to ${e.obligee}` : ""}`;
      case "obligation_settled": return `${e.obligation}: ${m(e.amount)} settled`;
      case "obligation_amended": return `${e.obligation}: now ${m(e.amount)}`;
      case "obligation_released": return `${e.obligation} released`;
      case "right_granted": return `${e.right} (${e.kind}) to ${e.holder} by ${e.grantor}`;
      case "right_amended": {
        const parts = [];
        if ("until" in e) parts.push(e.until == null ? "no end date" : `until ${e.until}`);
        if ("until_milestone" in e) parts.push(e.until_milestone == null ? "no milestone" : `until milestone ${e.until_milestone}`);
        return `${e.right}: ${parts.join(", ")}`;
      }
      case "right_ended": return `${e.right} ended${e.reason ? `: ${e.reason}` : ""}`;
      case "milestone_declared": return `${e.milestone} declared by ${e.declared_by}`;
      case "milestone_verified": return `${e.milestone} verified by ${e.verified_by}`;
      case "event_reversed": return `reverses ${e.reverses}: ${e.reason}`;
      default: return "";
    }
  }

  function logRow(e, knownSeq, fresh) {
    const later = knownSeq != null && e.seq > knownSeq;
    const detail = h("tr", { class: "detail", hidden: true },
      h("td", { colspan: "6" }, h("pre", null, JSON.stringify(e, null, 2))));
    const row = h("tr", {
      class: ["event", fresh ? "fresh" : "", later ? "later" : ""].filter(Boolean).join(" "),
      "data-seq": e.seq, "data-id": e.id, tabindex: "0",
      title: later ? `Recorded after seq ${knownSeq}: not known at ${state.known_at}` : "Show the whole event",
      onclick: () => { detail.hidden = !detail.hidden; row.classList.toggle("open", !detail.hidden); },
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); row.click(); } },
    },
    h("td", { class: "num", "data-col": "seq" }, String(e.seq)),
    h("td", { "data-col": "effective" }, e.effective),
    h("td", { "data-col": "type" }, h("span", { class: `type t-${String(e.type).split("_")[0]}` }, e.type)),
    h("td", { "data-col": "id", class: "id" }, e.id),
    h("td", { "data-col": "what", class: "what" }, what(e)),
    h("td", { "data-col": "recorded", class: "recorded" }, e.recorded));
    return [row, detail];
  }

  // The ledger's log: the last LOG_WINDOW events, then every new one from the live stream
  // (Server-Sent Events read with fetch, since EventSource cannot send the token), resuming
  // after the last id whenever the connection drops.
  class Feed {
    constructor(ledger, head) {
      this.ledger = ledger;
      this.events = new Map();
      this.newest = head || 0;
      // {seq, hash} of the newest event known.
      this.head = null;
      // The events that name parties, and the reversals.
      this.naming = [];
      this.oldest = Infinity;
      this.lastId = 0;
      this.error = null;
      this.stopped = false;
      this.abort = new AbortController();
      this.loaded = this.load(head || 0);
      this.loaded.then(() => this.stream());
    }

    // The name of party `id` on `asOf` as known at `knownAt` (a seq, a date, a time or "").
    // A date is its whole day in UTC; a time may have any offset (the server's rules,
    // engine::parse_known_at).
    nameAt(id, asOf, knownAt) {
      let seen = () => true;
      const recorded = (e) => utcKey(e.recorded) || e.recorded;
      if (/^\d+$/.test(knownAt)) {
        seen = (e) => e.seq <= Number(knownAt);
      } else if (/^\d{4}-\d{2}-\d{2}$/.test(knownAt)) {
        seen = (e) => recorded(e).slice(0, 10) <= knownAt;
      } else {
        const t = utcKey(knownAt);
        if (t) seen = (e) => recorded(e) <= t;
      }
      const reversed = new Set(this.naming.filter((e) => e.type === "event_reversed" && seen(e)).map((e) => e.reverses));
      let best = null;
      for (const e of this.naming) {
        if (e.party !== id || !e.name || e.effective > asOf || !seen(e) || reversed.has(e.id)) continue;
        if (!best || e.effective > best.effective || (e.effective === best.effective && e.seq > best.seq)) best = e;
      }
      return best ? best.name : "";
    }

    stop() {
      this.stopped = true;
      this.abort.abort();
    }

    add(e, live) {
      if (this.events.has(e.seq)) return;
      this.events.set(e.seq, e);
      if (e.seq < this.oldest) this.oldest = e.seq;
      if (e.seq > this.lastId) this.lastId = e.seq;
      if ((e.type === "party_registered" || e.type === "party_updated") && e.party) {
        parties.add(e.party);
        this.naming.push(e);
      }
      if (e.type === "event_reversed") this.naming.push(e);
      if (!this.head || e.seq > this.head.seq) this.head = { seq: e.seq, hash: e.hash };
      if (live) {
        this.newest = Math.max(this.newest, e.seq);
        arrived(this, e);
      }
    }

    async page(since, limit) {
      const r = await request(ledgerPath(this.ledger, "log"), { since, limit }, { signal: this.abort.signal });
      const text = await r.text();
      const head = r.headers.get("Accord-Head");
      if (head) {
        const [seq, hash] = head.split(":");
        this.newest = Math.max(this.newest, Number(seq));
        if (!this.head || Number(seq) > this.head.seq) this.head = { seq: Number(seq), hash };
      }
      return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    }

    async load(head) {
      const since = Math.max(0, head - LOG_WINDOW);
      try {
        for (const e of await this.page(since, LOG_WINDOW)) this.add(e, false);
        if (this.oldest === Infinity) this.oldest = since + 1;
      } catch (e) {
        if (e.name !== "AbortError") this.error = e;
      }
    }

    async loadOlder() {
      if (this.oldest <= 1) return;
      const since = Math.max(0, this.oldest - 1 - LOG_WINDOW);
      const before = this.oldest;
      for (const e of await this.page(since, before - 1 - since)) this.add(e, false);
      if (this.oldest === before) this.oldest = since + 1;
    }

    setStatus(status) {
      this.status = status;
      if (feed !== this) return;
      const dot = $("live");
      dot.className = `live ${status === "live" ? "on" : "down"}`;
      dot.title = status === "live" ? "Live: new events show as they are appended" : "Reconnecting to the live log…";
    }

    async stream() {
      let delay = 1000;
      while (!this.stopped) {
        try {
          const headers = { Accept: "text/event-stream" };
          if (this.lastId) headers["Last-Event-ID"] = String(this.lastId);
          const r = await request(ledgerPath(this.ledger, "log/stream"), { since: this.lastId },
            { signal: this.abort.signal, headers });
          this.setStatus("live");
          delay = 1000;
          await readEvents(r.body, (ev) => {
            if (ev.data) this.add(JSON.parse(ev.data), true);
          });
        } catch (e) {
          if (this.stopped || e.name === "AbortError") return;
        }
        if (this.stopped) return;
        this.setStatus("down");
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  }

  // Reads a text/event-stream body, calling `onEvent({id, event, data})` for each event.
  async function readEvents(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let type = "";
    let id = "";
    const line = (l) => {
      if (l === "") {
        if (data.length) onEvent({ id, event: type || "message", data: data.join("\n") });
        data = [];
        type = "";
        return;
      }
      if (l.startsWith(":")) return;
      const colon = l.indexOf(":");
      const name = colon < 0 ? l : l.slice(0, colon);
      let value = colon < 0 ? "" : l.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "data") data.push(value);
      else if (name === "event") type = value;
      else if (name === "id" && !value.includes("\0")) id = value;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (;;) {
        const i = buffer.search(/[\r\n]/);
        if (i < 0) break;
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (buffer[i] === "\r" && i === buffer.length - 1) break;
        line(buffer.slice(0, i));
        buffer = buffer.slice(i + (buffer[i] === "\r" && buffer[i + 1] === "\n" ? 2 : 1));
      }
    }
  }

  // A new event of the ledger shown: into the log view, or a fresh answer for "everything".
  function arrived(f, e) {
    if (f !== feed) return;
    if (state.view === "log" && logView && logView.empty) {
      logView = null;
      render(true);
    } else if (state.view === "log" && logView) {
      logView.tbody.prepend(...logRow(e, logView.knownSeq, true));
      logView.updateCount();
      answered = Object.assign({}, f.head);
      showHead();
    } else {
      showHead();
      if (state.view !== "log" && !state.known_at && (!answered || e.seq > answered.seq)) scheduleRefresh();
    }
  }

  function startFeed() {
    if (feed) feed.stop();
    answered = null;
    logView = null;
    parties.clear();
    entities.clear();
    const l = ledgers.find((x) => x.ledger === state.ledger);
    feed = state.ledger ? new Feed(state.ledger, l && l.head ? l.head.seq : 0) : null;
    if (feed) feed.setStatus("down");
  }

  // A page left (or kept in the back-forward cache) lets its live stream go: a browser
  // opens only a few connections to one server, and each open page would hold one.
  window.addEventListener("pagehide", () => {
    if (feed) feed.stop();
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) {
      startFeed();
      render();
    }
  });

  // ------------------------------------------------------------ start

  // Lists the ledgers this token may read, then shows the state's answer.
  async function start() {
    syncBar();
    if (!$("content").firstChild) $("content").replaceChildren(loading());
    try {
      const r = await getJson("/v1/ledgers", null, null);
      ledgers = r.ledgers || [];
    } catch (e) {
      notice(`The ledgers cannot be listed: ${e.message}`);
    }
    if (!state.ledger && ledgers.length) state.ledger = ledgers[0].ledger;
    history.replaceState(null, "", urlOf(state));
    startFeed();
    render();
  }

  // "Change token": the token kept in this tab is forgotten and another one asked for;
  // then everything is asked again with it (the ledgers it may read, the live log, the
  // answer).
  async function changeToken() {
    document.documentElement.dataset.ready = "";
    sessionStorage.removeItem(TOKEN_KEY);
    syncTokenButton();
    if (feed) feed.stop();
    if (controller) controller.abort();
    if (refreshTimer) {
      clearTimeout(refreshTimer);
      refreshTimer = null;
    }
    notice(null);
    await askToken("change");
    generation++;
    shown = null;
    $("toolbar").replaceChildren();
    await start();
  }

  start();
})();
