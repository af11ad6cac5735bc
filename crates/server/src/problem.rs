//! Errors as RFC 9457 problem details (`application/problem+json`), with the status table of
//! the API mapped here, and only here, from the engine's errors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request that did not succeed.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// The rule's name of a refusal, or one of the API's own codes.
    pub code: String,
    /// One line: the CLI's `error:` line without the prefix.
    pub detail: String,
    pub event: Option<String>,
    pub line: Option<usize>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code: code.to_string(),
            detail: one_line(&detail.into()),
            event: None,
            line: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// The problem of a status reached without one of ours (axum's own rejections, a
    /// timeout): the code the table gives that status.
    pub fn for_status(status: StatusCode, detail: impl Into<String>) -> Problem {
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "timeout",
            409 => "id_conflict",
            412 => "head_moved",
            413 => "too_large",
            415 => "unsupported_media_type",
            422 => "unprocessable",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "error",
        };
        Problem::new(status, code, detail)
    }

    pub fn body(&self) -> String {
        let title = self.status.canonical_reason().unwrap_or("Error");
        json!({
            "type": "about:blank",
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
            "event": self.event,
            "line": self.line,
        })
        .to_string()
    }
}

/// Control characters and line ends of a message shown as escapes, so `detail` is one line.
fn one_line(s: &str) -> String {
    present::render::visible(s).replace(['\n', '\r'], " ")
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"accord\""),
            );
        }
        response
    }
}

impl From<engine::Error> for Problem {
    fn from(e: engine::Error) -> Problem {
        use engine::Error as E;
        match e {
            E::Refused(r) => {
                // A party named by the request (`positions/{party}`, `party=`) that no event
                // registers is not found; one named by an event of a body is refused input.
                let status = match (r.code, &r.event) {
                    ("id_conflict", _) => StatusCode::CONFLICT,
                    ("unknown_party", None) => StatusCode::NOT_FOUND,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Problem {
                    status,
                    code: r.code.to_string(),
                    detail: one_line(&r.message),
                    event: r.event,
                    line: r.line,
                }
            }
            E::HeadMoved { .. } => {
                Problem::new(StatusCode::PRECONDITION_FAILED, "head_moved", e.to_string())
            }
            E::Unavailable { message, .. } => Problem::unavailable(message),
            E::Integrity { message, .. } => Problem::unavailable(message),
            E::BadArgument(m) => Problem::bad_request(m),
            E::Output(e) => Problem::unavailable(format!("cannot write the answer: {e}")),
        }
    }
}
