//! Browser safety, for every request and response: the server answers only for host names it serves
//! (against DNS rebinding), refuses cross-origin state changes and non-JSON bodies (a web page cannot make
//! a browser start or cancel scans on `127.0.0.1`), and sets the headers that stop sniffing, framing and
//! referrer leaks.
//!
//! - `Host` must be one of [`crate::ServerConfig::allowed_hosts`] (port ignored): `localhost`,
//!   `127.0.0.1`, `[::1]`, the address the server is bound to, and any `--allowed-host`. Otherwise
//!   421 Misdirected Request. A request without `Host` (not a browser) passes.
//! - `POST`, `PUT`, `PATCH` and `DELETE` with an `Origin` other than the request's own host are refused
//!   with 403: browsers send `Origin` on cross-origin requests, and no API call is meant to come from
//!   another site.
//! - A request body must be `Content-Type: application/json`, else 415.
//! - With an admin token configured, a state change without it is refused with 401 (see [`crate::auth`]).
//! - Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY` and a Content-Security-Policy with `frame-ancestors 'none'` (the dashboard's
//!   own policy is kept and extended).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The middleware: checks the request, then secures the response (errors included).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let checked = check(&state, &req)
        .and_then(|()| budget(&state, &req))
        .and_then(|()| {
            crate::auth::authorize(&state.config, req.method(), req.headers()).map_err(ApiError::from)
        });
    let mut response = match checked {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    secure(response.headers_mut());
    response
}

/// Counts a state change against its client's [`crate::budget::WriteBudget`].
fn budget(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if !crate::auth::changes_state(req.method()) {
        return Ok(());
    }
    let Some(crate::budget::ClientAddr(client)) = req.extensions().get().copied() else {
        return Ok(());
    };
    state.writes.take(client).map_err(|wait| {
        let per_minute = state.config.writes_per_minute_per_client;
        let secs = wait.as_secs().max(1);
        ApiError::busy(
            format!("Too many changes from {client}: at most {per_minute} a minute per client; try again in {secs} s"),
            secs,
        )
    })
}

fn check(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let (Some(host), Some(allowed)) = (host, &state.config.allowed_hosts) {
        let name = host_name(host);
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            // The port the client reached is in its Host header: name it, so the address shown works.
            let port = host
                .rsplit_once(':')
                .map(|(_, p)| p)
                .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .map_or_else(String::new, |p| format!(":{p}"));
            let msg = format!(
                "This server does not answer for host `{name}`; open it at http://127.0.0.1{port}/ or start \
                 it with --allowed-host {name}"
            );
            return Err(ApiError::request(
                StatusCode::MISDIRECTED_REQUEST,
                msg.clone(),
                msg,
            ));
        }
    }
    let unsafe_method = crate::auth::changes_state(req.method());
    if unsafe_method && let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let same = host.is_some_and(|h| origin_authority(origin).is_some_and(|o| o.eq_ignore_ascii_case(h)));
        if !same {
            let msg = format!(
                "Cross-origin request from `{origin}` refused: call the API from its own page or without a browser"
            );
            return Err(ApiError::request(StatusCode::FORBIDDEN, msg.clone(), msg));
        }
    }
    if has_body(headers) && !is_json(headers) {
        let sent = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        let msg = format!("Request bodies must be JSON: send `Content-Type: application/json` (got {sent})");
        return Err(ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            msg.clone(),
            msg,
        ));
    }
    Ok(())
}

/// The host name of a `Host` header value: `127.0.0.1:8003` → `127.0.0.1`, `[::1]:80` → `[::1]`.
pub fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `http://127.0.0.1:8003` → `127.0.0.1:8003`.
fn origin_authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"))
        })
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let csp = match headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    {
        Some(own) if own.contains("frame-ancestors") => return,
        Some(own) => format!("{own}; frame-ancestors 'none'"),
        None => "default-src 'none'; frame-ancestors 'none'".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("127.0.0.1:8003"), "127.0.0.1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("[::1]:8003"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }
}
