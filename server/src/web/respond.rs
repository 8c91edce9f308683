//! How the command centre answers: an HTML page (with its headers and the language
//! cookie), a page for an error, or a JSON body. JSON routes answer errors as JSON (the
//! [`ServerError`] response); pages send an unsigned caller to `/signin`.

use crate::app::AppState;
use crate::auth;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::html::{self, Lang};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

/// The language cookie's name.
pub const LANG_COOKIE: &str = "doorstep_lang";

/// The page language: `?lang=` (remembered in a cookie), else the cookie, else Vietnamese.
pub fn lang_of(headers: &HeaderMap, q: Option<&str>) -> (Lang, Option<HeaderValue>) {
    if let Some(l) = q {
        let lang = Lang::parse(l);
        let cookie = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict",
            lang.code()
        ))
        .ok();
        return (lang, cookie);
    }
    let c = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    (
        auth::cookie(c, LANG_COOKIE).map_or(Lang::Vi, Lang::parse),
        None,
    )
}

/// An HTML answer (with the language cookie if it changed).
pub fn page(status: StatusCode, body: String, lang_cookie: Option<HeaderValue>) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    if let Some(c) = lang_cookie {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

/// How a page answers an error: unsigned → the sign-in page; others → a small error page.
pub fn page_error(e: ServerError, lang: Lang, user: Option<&CommandUser>, demo: bool) -> Response {
    match e {
        ServerError::Unauthorized(_) => Redirect::to("/signin").into_response(),
        e => {
            let (status, _) = e.status_and_code();
            if status.is_server_error() {
                tracing::error!(error = %e, "page failed");
            }
            let msg = if status.is_server_error() {
                "the server could not complete the request; retry later".to_owned()
            } else {
                e.to_string()
            };
            page(
                status,
                html::error_page(lang, user, demo, status, &msg),
                None,
            )
        }
    }
}

/// A page for a signed-in caller: `user` is the route's check of the caller; then what the
/// page shows, read on a blocking thread; then its markup (`render`: language, caller, demo
/// mode, data). Any error is answered as a page ([`page_error`]).
pub async fn user_page<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    user: Result<CommandUser>,
    load: impl FnOnce(&AppState, &CommandUser) -> Result<T> + Send + 'static,
    render: impl FnOnce(Lang, &CommandUser, bool, T) -> String,
) -> Response {
    let (lang, cookie) = lang_of(headers, lang);
    let user = match user {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let u = user.clone();
    match state.blocking(move |s| load(s, &u)).await {
        Ok(data) => page(
            StatusCode::OK,
            render(lang, &user, state.demo, data),
            cookie,
        ),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// A JSON answer, not cached.
pub fn json<T: Serialize>(value: &T) -> Result<Response> {
    let bytes = serde_json::to_vec(value).map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
