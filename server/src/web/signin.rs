//! Sign-in and sign-out of the command centre (a password, and for a user with a second
//! factor a 6-digit TOTP code in the same form; then a session cookie), and `/`.
//!
//! One form, one step: a user with a second factor types the code beside the password, so the
//! password is never carried to a second page, no half-signed-in state is kept between
//! requests (or between PostgreSQL instances), and a refusal says the same whether the
//! password, the code or both were wrong. A wrong, missing or replayed code counts as a failure
//! in [`crate::throttle`] like a wrong password, and is audited (`sign_in_failed`,
//! `reason=totp`). With `serve --require-totp`, a district or province user without a second
//! factor is refused (after the right password) with a page telling them to ask the admin for
//! `doorstep user totp enable`.

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
    /// Present after a refused sign-in: the page says so (`totp_required`: the user must have a
    /// second factor, `serve --require-totp`).
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
        html::signin_page(lang, q.failed.as_deref(), q.wait),
        cookie,
    )
}

#[derive(Deserialize)]
struct SigninForm {
    name: String,
    password: String,
    /// The 6-digit code of a user with a second factor; ignored for the others.
    #[serde(default)]
    code: String,
}

/// The roles whose users see a whole district's or province's residents: `--require-totp`
/// refuses them without a second factor.
pub const TOTP_ROLES: &[&str] = &["district", "province"];

/// `POST /signin`: check the password (and the code of a user with a second factor), start a
/// session, set its cookie.
#[utoipa::path(post, path = "/signin", tag = "command centre",
    request_body(description = "The sign-in form: `name`, `password`, and `code` (the 6-digit TOTP code, RFC 6238; needed by a user with a second factor, ignored for the others)", content(("application/x-www-form-urlencoded"))),
    responses(
        (status = 303, description = "Signed in: to `/dash`, with the `doorstep_session` cookie (HttpOnly, SameSite=Strict, 12 h; Secure over TLS); refused (wrong name or password, or a user with a second factor whose code is missing, wrong or used already; the same answer for each): to `/signin?failed=1`; a district or province user without a second factor on a server run with `--require-totp`: to `/signin?failed=totp_required`; after too many failures of the account or the address, to `/signin?failed=1&wait=SECONDS` with `Retry-After`, the password not checked"),
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
    // The user's second factor is read with them, before the password is checked: a right
    // password then takes no longer to refuse than a wrong one.
    let found = state
        .blocking(move |s| {
            let Some((user, hash)) = s.backend.command_user_by_name(&name)? else {
                return Ok(None);
            };
            let secret = s.backend.user_totp(user.user_id)?;
            Ok(Some((user, hash, secret)))
        })
        .await?;
    let password = form.password;
    // Verify off the async threads; an unknown name costs the same.
    let ok = state
        .blocking(move |_| {
            Ok(match found {
                Some((user, hash, secret)) if auth::verify_password(&password, &hash) => {
                    Some((user, secret))
                }
                Some(_) => None,
                None => {
                    let _ = auth::verify_password(&password, dummy_hash());
                    None
                }
            })
        })
        .await?;
    let Some((user, secret)) = ok else {
        tracing::info!("sign-in refused");
        return refuse(&state, form.name, addr, None, now).await;
    };
    // The second factor, once the password is right.
    let id = user.user_id;
    match secret {
        Some(secret) => {
            let step = crate::totp::verify(&secret, &form.code, now);
            let fresh = match step {
                Some(step) => {
                    state
                        .blocking(move |s| s.backend.use_totp_step(id, step))
                        .await?
                }
                None => false,
            };
            if !fresh {
                tracing::info!(user = %id, "sign-in refused: code");
                return refuse(&state, form.name, addr, Some("totp"), now).await;
            }
        }
        None if state.require_totp && TOTP_ROLES.contains(&user.role.as_str()) => {
            // Not a guess (the password was right): not counted against the account.
            tracing::info!(user = %id, "sign-in refused: --require-totp");
            let name = form.name;
            state
                .blocking(move |s| {
                    s.backend
                        .audit_failed_signin(&name, addr, Some("totp_required"), now)
                })
                .await?;
            return Ok(Redirect::to("/signin?failed=totp_required").into_response());
        }
        None => {}
    }
    guard.succeeded(&form.name, addr);
    let token = auth::new_token();
    let t = token.clone();
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

/// Refuse a sign-in: count the failure against the account and the address, audit it (the
/// name tried and why; never the password or the code), and send the browser back to the form
/// with the one message that does not say which part was wrong.
async fn refuse(
    state: &AppState,
    name: String,
    addr: Option<std::net::IpAddr>,
    reason: Option<&'static str>,
    now: i64,
) -> Result<Response> {
    state.signin_guard.failed(&name, addr, now);
    state
        .blocking(move |s| s.backend.audit_failed_signin(&name, addr, reason, now))
        .await?;
    Ok(Redirect::to("/signin?failed=1").into_response())
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
