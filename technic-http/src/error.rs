//! `ApiError`: every failure of the API as a status code and a JSON [`ErrorBody`] with category, message,
//! detail and suggested actions. The full detail is logged; secrets never reach it (core errors carry none).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use technic_core::{Category, Error};

use crate::dto::ErrorBody;

/// An API error: a status and the body to send.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Boxed: an `ApiError` travels in every handler's `Result`, so it stays small.
    body: Box<ErrorBody>,
    /// Seconds to send in `Retry-After` (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// A request error (4xx) with the actions `fix_request`.
    pub fn request(status: StatusCode, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(status, "request", message, detail, &["fix_request"])
    }

    /// 429: the server is at capacity; try again after `seconds`.
    pub fn busy(message: impl Into<String>, seconds: u64) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "request",
            message.clone(),
            message,
            &["retry"],
        );
        e.retry_after = Some(seconds);
        e
    }

    /// 422 for a bad screen expression or sort: the message, and where the problem is. An expression over
    /// the parser's size limit is echoed only in part.
    pub fn expression(e: &technic_core::ScreenError) -> Self {
        let mut dto = crate::dto::ExpressionErrorDto::from(e);
        if dto.source.len() > technic_core::screen::parse::MAX_SOURCE {
            dto.source = clip(&dto.source, ECHO_MAX).into_owned();
            dto.caret = clip(&dto.caret, ECHO_MAX).into_owned();
        }
        let mut err = Self::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid screen: {}", e.message),
            format!("{}\n{}", e.message, dto.caret),
        );
        err.body.expression = Some(dto);
        err
    }

    /// 404 with a JSON body for a path no route serves (the router's fallback).
    pub fn no_route(method: &str, path: &str) -> Self {
        let msg = format!(
            "No route for {method} {}: see /openapi.json for the API",
            clip(path, ECHO_MAX)
        );
        Self::request(StatusCode::NOT_FOUND, msg.clone(), msg)
    }

    /// 405 with a JSON body for a method a route does not answer.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let msg = format!(
            "{method} is not allowed on {}: see /openapi.json for the methods it answers",
            clip(path, ECHO_MAX)
        );
        Self::request(StatusCode::METHOD_NOT_ALLOWED, msg.clone(), msg)
    }

    /// 404 for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "data",
            format!("Not found: {what}"),
            what,
            &["fix_request"],
        )
    }

    fn new(
        status: StatusCode,
        category: &str,
        message: impl Into<String>,
        detail: impl Into<String>,
        actions: &[&str],
    ) -> Self {
        let (message, detail) = (message.into(), detail.into());
        Self {
            status,
            body: Box::new(ErrorBody {
                status: status.as_u16(),
                category: category.to_owned(),
                // Bounded whatever a message quotes from the request (a name, a symbol, a query key).
                message: clip_owned(message, TEXT_MAX),
                detail: clip_owned(detail, TEXT_MAX),
                actions: actions.iter().map(|a| (*a).to_owned()).collect(),
                expression: None,
            }),
            retry_after: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

/// Most bytes of request input an error quotes (a query key, a path, a name): enough to recognise it.
pub const ECHO_MAX: usize = 64;

/// Most bytes of an error's message or detail (an expression's caret line fits: expressions are at most
/// 4,096 bytes).
pub const TEXT_MAX: usize = 8192 + 512;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// [`clip`] of an owned text, which moves it unchanged when it fits.
fn clip_owned(text: String, max: usize) -> String {
    if text.len() <= max {
        text
    } else {
        clip(&text, max).into_owned()
    }
}

/// A rejection's text (axum and serde quote the input: an unknown field or query key, a value that does
/// not parse) with every word longer than [`ECHO_MAX`] bytes cut to a short prefix, so the answer
/// stays small however long the input.
fn clip_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(1024));
    let mut word = String::new();
    for c in text.chars() {
        if c == ' ' || c == '`' || c == ',' || c == ':' {
            out.push_str(&clip(&word, ECHO_MAX));
            word.clear();
            out.push(c);
        } else if word.len() <= ECHO_MAX + 4 {
            word.push(c);
        } else if !word.ends_with('…') {
            word.push('…');
        }
    }
    out.push_str(&clip(&word, ECHO_MAX));
    out
}

/// The body for a core error, used in responses and in scan statuses.
pub fn error_body(e: &Error) -> ErrorBody {
    *ApiError::from(e.clone()).body
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::InvalidData { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Config { .. } => StatusCode::BAD_REQUEST,
            Error::Unavailable { .. } | Error::CircuitOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Throttled { .. } => StatusCode::SERVICE_UNAVAILABLE,
            // The store (a PostgreSQL server, a locked file) is unreachable: try again later; what is
            // stored is kept.
            Error::Store { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Rejected { .. } => StatusCode::BAD_GATEWAY,
            Error::Cancelled => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let actions: Vec<String> = e
            .actions()
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        let category: Category = e.category();
        Self {
            status,
            body: Box::new(ErrorBody {
                status: status.as_u16(),
                category: category.as_str().to_owned(),
                message: e.user_message(),
                detail: e.detail(),
                actions,
                expression: None,
            }),
            retry_after: match &e {
                Error::Unavailable { retry_after, .. } | Error::Throttled { retry_after, .. } => {
                    retry_after.map(|d| d.as_secs().max(1))
                }
                Error::CircuitOpen { retry_in, .. } => Some(retry_in.as_secs().max(1)),
                Error::Store { .. } => Some(5),
                _ => None,
            },
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "Request body too large".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "Send the body as JSON (Content-Type: application/json)".to_owned()
            }
            _ => "Malformed request body".to_owned(),
        };
        Self::request(status, message, clip_words(&r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            "Invalid query string",
            clip_words(&r.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            "Invalid path",
            clip_words(&r.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), detail = %self.body.detail, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), detail = %self.body.detail, "request refused");
        }
        let mut response = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"technic\""),
            );
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 3), "é…");
        let long = format!("unknown field `{}`, expected one of `a`", "k".repeat(65_000));
        let clipped = clip_words(&long);
        assert!(clipped.len() < 2 * ECHO_MAX + 60, "{}", clipped.len());
        assert!(
            clipped.starts_with("unknown field `kkk") && clipped.ends_with("`a`"),
            "{clipped}"
        );
        let short = "unknown field `nope`, expected one of `limit`, `offset`";
        assert_eq!(clip_words(short), short);
    }
}
