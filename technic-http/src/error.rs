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

    /// 422 for a bad screen expression or sort: the message, and where the problem is.
    pub fn expression(e: &technic_core::ScreenError) -> Self {
        let mut err = Self::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid screen: {}", e.message),
            format!("{}\n{}", e.message, e.caret()),
        );
        err.body.expression = Some(crate::dto::ExpressionErrorDto::from(e));
        err
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
        Self {
            status,
            body: Box::new(ErrorBody {
                status: status.as_u16(),
                category: category.to_owned(),
                message: message.into(),
                detail: detail.into(),
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
        Self::request(status, message, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::request(StatusCode::BAD_REQUEST, "Invalid query string", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::request(StatusCode::BAD_REQUEST, "Invalid path", r.body_text())
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
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}
