//! Sign-in and sign-out of the command centre (a password, then a session cookie), and `/`.

use crate::app::AppState;
use crate::auth;
use crate::error::{Result, ServerError};
use crate::html;
use crate::now_ms;
use crate::web::caller::{caller, session_token, SESSION_COOKIE};
use crate::web::respond::{lang_of, page};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::net::SocketAddr;

/// How long a web session lasts: 12 hours.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// `GET /`: the dashboard if signed in, else the sign-in page.
#[utoipa::path(get, path = "/", tag = "command centre",
    security((), ("session" = []), ("admin_token" = [])),
    responses(
        (status = 303, description = "Signed in (or demo mode): to `/dash`; else to `/signin`"),
        (status = 401, response = crate::web::openapi::Unauthorized),
        (status = 403, response = crate::web::openapi::Forbidden),
    )
)]
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match caller(&state, &headers).await {
        Ok(Some(_)) => Redirect::to("/dash").into_response(),
        Ok(None) => Redirect::to("/signin").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `vi` or `en` (remembered in a cookie).
    lang: Option<String>,
    /// Present after a refused sign-in: the page says so.
    failed: Option<String>,
    /// After too many failures: the seconds to wait before the next attempt is looked at.
    wait: Option<u64>,
}

/// `GET /signin`.
#[utoipa::path(get, path = "/signin", tag = "command centre",
    params(LangQuery),
    responses((status = 200, description = "The sign-in form", content(("text/html; charset=utf-8"))))
)]
pub async fn signin_page(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    page(
        StatusCode::OK,
        html::signin_page(lang, q.failed.is_some(), q.wait),
        cookie,
    )
}

#[derive(Deserialize)]
struct SigninForm {
    name: String,
    password: String,
}

/// `POST /signin`: check the password, start a session, set its cookie.
#[utoipa::path(post, path = "/signin", tag = "command centre",
    request_body(description = "The sign-in form: `name`, `password`", content(("application/x-www-form-urlencoded"))),
    responses(
        (status = 303, description = "Signed in: to `/dash`, with the `doorstep_session` cookie (HttpOnly, SameSite=Strict, 12 h; Secure over TLS); refused: to `/signin?failed=1`; after too many failures of the account or the address, to `/signin?failed=1&wait=SECONDS` with `Retry-After`, the password not checked"),
        (status = 503, response = crate::web::openapi::Unavailable),
        (status = 400, response = crate::web::openapi::BadRequest),
    )
)]
pub async fn signin(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response> {
    let form: SigninForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ServerError::BadRequest("form: expected name and password".into()))?;
    let now = now_ms();
    let addr = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let guard = state.signin_guard.clone();
    // An account or address that failed too often waits, whatever the password: not checked.
    let wait = guard.wait_ms(&form.name, addr, now);
    if wait > 0 {
        tracing::info!("sign-in throttled");
        let secs = (wait + 999) / 1000;
        let mut resp = Redirect::to(&format!("/signin?failed=1&wait={secs}")).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(resp);
    }
    // Hashing is slow on purpose: a bounded number at a time, whoever asks.
    let Some(_turn) = guard.hashing_turn().await else {
        return Err(ServerError::Unavailable(
            "sign-in: too many at once, try again in a few seconds".into(),
        ));
    };
    let name = form.name.clone();
    let found = state
        .blocking(move |s| s.backend.command_user_by_name(&name))
        .await?;
    let password = form.password;
    // Verify off the async threads; an unknown name costs the same.
    let ok = state
        .blocking(move |_| {
            Ok(match found {
                Some((user, hash)) if auth::verify_password(&password, &hash) => Some(user),
                Some(_) => None,
                None => {
                    let _ = auth::verify_password(&password, dummy_hash());
                    None
                }
            })
        })
        .await?;
    let Some(user) = ok else {
        tracing::info!("sign-in refused");
        guard.failed(&form.name, addr, now);
        let name = form.name;
        state
            .blocking(move |s| s.backend.audit_failed_signin(&name, addr, now))
            .await?;
        return Ok(Redirect::to("/signin?failed=1").into_response());
    };
    guard.succeeded(&form.name, addr);
    let token = auth::new_token();
    let t = token.clone();
    let id = user.user_id;
    state
        .blocking(move |s| s.backend.start_session(id, &t, now + SESSION_MS, now))
        .await?;
    tracing::info!(user = %id, "signed in");
    let mut resp = Redirect::to("/dash").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_MS / 1000,
            secure(&state)
        ))
        .map_err(|_| ServerError::Internal("cookie".into()))?,
    );
    Ok(resp)
}

/// A valid PHC string to verify against when the name is unknown, so that an unknown name
/// takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password("not a password").unwrap_or_default())
}

/// `POST /signout`: end the session, clear its cookie.
#[utoipa::path(post, path = "/signout", tag = "command centre",
    security((), ("session" = [])),
    responses((status = 303, description = "The session ended and its cookie cleared: to `/signin`"))
)]
pub async fn signout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = session_token(&headers) {
        state
            .blocking(move |s| s.backend.end_session(&token))
            .await?;
    }
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            secure(&state)
        ))
        .map_err(|_| ServerError::Internal("cookie".into()))?,
    );
    Ok(resp)
}

/// The cookie attribute that keeps a session cookie off plain HTTP, when served over TLS.
fn secure(state: &AppState) -> &'static str {
    if state.tls {
        "; Secure"
    } else {
        ""
    }
}
