//! `assets/openapi.json`, the document `GET /openapi.json` serves, kept true to the router:
//! its operations are exactly `server::ROUTES`, both ways; each declares every parameter of
//! its path template, required, and no other path parameter, and no parameter twice; every
//! `$ref` resolves; every operation declares its 200 with a media type, and every error it
//! declares is a problem (`application/problem+json`) of a status of HTTP.md's table; only
//! `/healthz` and `/openapi.json` go without the bearer token, and the others declare 401
//! and 403.
//!
//! `tests/openapi.rs` at the root holds a running `accord serve` to the same document.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const DOC: &str = include_str!("../assets/openapi.json");

/// The statuses of HTTP.md's table of errors.
const ERROR_STATUSES: &[&str] = &[
    "400", "401", "403", "404", "409", "412", "413", "415", "422", "503",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOC).expect("assets/openapi.json is JSON")
}

/// `v`, or what its `$ref` (a local JSON pointer) points to.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        None => v,
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: only local references"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{r} does not resolve"));
            resolve(doc, target)
        }
    }
}

/// Every (METHOD, path template) of the document, with its operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut ops = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("paths is an object");
    for (path, item) in paths {
        for (key, op) in item.as_object().expect("a path item is an object") {
            if METHODS.contains(&key.as_str()) {
                ops.insert((key.to_ascii_uppercase(), path.clone()), op);
            }
        }
    }
    ops
}

/// The parameters of an operation (its path item's and its own), resolved.
fn parameters<'a>(doc: &'a Value, path: &str, op: &'a Value) -> Vec<&'a Value> {
    let item = &doc["paths"][path];
    let mut out = Vec::new();
    for list in [&item["parameters"], &op["parameters"]] {
        if let Some(list) = list.as_array() {
            out.extend(list.iter().map(|p| resolve(doc, p)));
        }
    }
    out
}

fn names_in<'a>(params: &[&'a Value], location: &str) -> BTreeSet<&'a str> {
    params
        .iter()
        .filter(|p| p["in"] == location)
        .map(|p| p["name"].as_str().expect("a parameter has a name"))
        .collect()
}

/// The `{name}`s of a path template.
fn template_names(path: &str) -> BTreeSet<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn routes() -> BTreeSet<(String, String)> {
    server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn walk_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("$ref") {
                resolve(doc, v);
            }
            for x in m.values() {
                walk_refs(doc, x);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk_refs(doc, x)),
        _ => {}
    }
}

#[test]
fn the_document_describes_exactly_the_routes() {
    let doc = doc();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "an OpenAPI 3.1 document"
    );
    walk_refs(&doc, &doc);

    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops.keys().cloned().collect();
    let served = routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "server::ROUTES and openapi.json differ:\n  served, not documented: {undocumented:?}\n  documented, not served: {unserved:?}"
    );

    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "bearer security scheme");
    assert_eq!(scheme["scheme"], "bearer", "bearer security scheme");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));

    for ((method, path), op) in &ops {
        let what = format!("{method} {path}");
        let params = parameters(&doc, path, op);
        let mut seen = BTreeSet::new();
        for p in &params {
            assert!(
                seen.insert((p["in"].as_str(), p["name"].as_str())),
                "{what}: parameter {} declared twice",
                p["name"]
            );
            if p["in"] == "path" {
                assert_eq!(p["required"], true, "{what}: path parameter {}", p["name"]);
            }
        }
        assert_eq!(
            names_in(&params, "path"),
            template_names(path),
            "{what}: the path parameters declared are the template's"
        );

        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.contains_key("200"), "{what}: declares its 200");
        for (status, response) in responses {
            let response = resolve(&doc, response);
            if status == "200" {
                assert!(
                    response["content"]
                        .as_object()
                        .is_some_and(|c| !c.is_empty()),
                    "{what}: its 200 has a media type"
                );
                continue;
            }
            assert!(
                ERROR_STATUSES.contains(&status.as_str()),
                "{what}: {status} is not a status of HTTP.md's table"
            );
            let content = response["content"].as_object().expect("content");
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{what}: {status} is a problem"
            );
        }

        let open = matches!(path.as_str(), "/healthz" | "/openapi.json");
        match op.get("security") {
            Some(s) if open => assert_eq!(s, &serde_json::json!([]), "{what} needs no token"),
            None if open => panic!("{what} needs no token: declare `security: []`"),
            Some(_) => panic!("{what}: uses the document's bearer security"),
            None => assert!(
                responses.contains_key("401") && responses.contains_key("403"),
                "{what} needs a token: it declares 401 and 403"
            ),
        }
    }
}
