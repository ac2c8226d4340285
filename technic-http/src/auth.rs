//! The admin token: what counts as one, and the check every state-changing request passes.
//!
//! With a token configured ([`crate::ServerConfig::admin_token`]), every `POST`, `PUT`, `PATCH` and
//! `DELETE` must send `Authorization: Bearer <token>` (else 401 with `WWW-Authenticate: Bearer`); reads
//! stay open. Without one, state changes are open as before (the server binds loopback by default) and
//! the admin-only routes (clearing and warming the cache) answer 403.
//!
//! An empty token is not a token: [`check_token`] refuses it, [`crate::serve`] will not start with it,
//! and a router built over it anyway refuses every state change (it fails closed, never open).

use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::error::ApiError;
use crate::state::ServerConfig;

/// Why `token` cannot be an admin token, if it cannot: it must be 1 or more visible ASCII characters
/// (no spaces), so it can be sent in an `Authorization` header.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.trim().is_empty() {
        return Err(
            "the admin token is empty; give a real token (e.g. `openssl rand -hex 32`) or none at all"
                .to_owned(),
        );
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the admin token must be visible ASCII characters without spaces (it travels in an \
             `Authorization: Bearer` header)"
                .to_owned(),
        );
    }
    Ok(())
}

/// True for the methods that change state.
pub fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The check of a request: state changes need the token when one is configured.
pub fn authorize(config: &ServerConfig, method: &Method, headers: &HeaderMap) -> Result<(), AuthError> {
    match &config.admin_token {
        Some(expected) if changes_state(method) => verify(expected, headers),
        _ => Ok(()),
    }
}

/// Checks the bearer token of `headers` against `expected` in constant time. An invalid `expected` (empty)
/// matches nothing.
pub fn verify(expected: &str, headers: &HeaderMap) -> Result<(), AuthError> {
    if check_token(expected).is_err() {
        return Err(AuthError::Misconfigured);
    }
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or("");
    // `subtle` compares without an early exit, so timing does not reveal how much of the token matched.
    let same: bool = subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.as_bytes()).into();
    if same && !sent.is_empty() {
        Ok(())
    } else {
        Err(AuthError::Unauthorized)
    }
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token, or the wrong one: 401 with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// The configured token is not a token (empty): every state change is refused with 403.
    Misconfigured,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // `ApiError` adds `WWW-Authenticate: Bearer` to every 401.
            AuthError::Unauthorized => {
                let msg = "Missing or wrong admin token: send `Authorization: Bearer <token>` (the token the \
                           server was started with, --admin-token or TECHNIC_ADMIN_TOKEN)";
                ApiError::request(StatusCode::UNAUTHORIZED, msg, msg)
            }
            AuthError::Misconfigured => {
                let msg = "This server's admin token is empty, so every state change is refused: restart it \
                           with a real token or none";
                ApiError::request(StatusCode::FORBIDDEN, msg, msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn empty_and_blank_tokens_are_not_tokens() {
        assert!(check_token("").is_err());
        assert!(check_token("   ").is_err());
        assert!(check_token("has space").is_err());
        assert!(check_token("s3cr3t-token").is_ok());
    }

    #[test]
    fn an_empty_configured_token_matches_nothing() {
        assert_eq!(verify("", &HeaderMap::new()), Err(AuthError::Misconfigured));
        assert_eq!(verify("", &with_auth("Bearer ")), Err(AuthError::Misconfigured));
    }

    #[test]
    fn bearer_tokens_are_compared() {
        assert_eq!(verify("t0k", &with_auth("Bearer t0k")), Ok(()));
        assert_eq!(verify("t0k", &with_auth("bearer t0k")), Ok(()));
        assert_eq!(
            verify("t0k", &with_auth("Bearer t0")),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(
            verify("t0k", &with_auth("Basic t0k")),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(verify("t0k", &HeaderMap::new()), Err(AuthError::Unauthorized));
    }

    #[test]
    fn only_state_changes_need_the_token() {
        let config = ServerConfig {
            admin_token: Some("t0k".to_owned()),
            ..ServerConfig::default()
        };
        assert!(authorize(&config, &Method::GET, &HeaderMap::new()).is_ok());
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                authorize(&config, &m, &HeaderMap::new()),
                Err(AuthError::Unauthorized)
            );
        }
        assert!(authorize(&ServerConfig::default(), &Method::POST, &HeaderMap::new()).is_ok());
    }
}
