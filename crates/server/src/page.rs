//! The web page and the OpenAPI document, built into the binary: no build step, nothing
//! fetched at run time. Only the names below are served; any other path is a 404, so no
//! path reaches a file system.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The page's files: (path, media type, contents).
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The OpenAPI 3.1 document of the API.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

/// What the page may do: its own scripts, styles and API, images from its own blobs, and
/// nothing from anywhere else; no framing.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub fn file(path: &str) -> Option<Response> {
    let (_, media, body) = FILES.iter().find(|(p, _, _)| *p == path)?;
    let mut response = (StatusCode::OK, *body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

pub fn openapi() -> Response {
    let mut response = (StatusCode::OK, OPENAPI).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
