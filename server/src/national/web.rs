//! The national roll-up over HTTP: `GET /api/v1/national?date=` (JSON), `GET /national?date=`
//! (the page), `/signin` (type the roll-up's token once; a session cookie follows) and
//! `POST /signout`, `/health`. Every route but `/health` and `/signin` needs the roll-up's
//! token: `Authorization: Bearer TOKEN` or the session cookie the sign-in sets.

use super::{page, roll_up, today, Cache, Settings};
use crate::html::Lang;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The session cookie of the roll-up's page.
pub const COOKIE: &str = "doorstep_national";
/// How long a sign-in lasts (12 h, as the province servers').
const SESSION_MS: i64 = 12 * 3600 * 1000;

/// The roll-up's shared state.
#[derive(Clone)]
pub struct NationalState {
    settings: Arc<Settings>,
    cache: Arc<Cache>,
    /// Sessions: SHA-256 of the cookie → expiry (Unix ms). In memory: a restart signs out.
    sessions: Arc<Mutex<HashMap<String, i64>>>,
    /// Served over TLS: the cookie is `Secure`.
    pub tls: bool,
}

impl NationalState {
    pub fn new(settings: Settings) -> NationalState {
        NationalState {
            settings: Arc::new(settings),
            cache: Arc::default(),
            sessions: Arc::default(),
            tls: false,
        }
    }

    /// Whether the request carries the token or a live session.
    fn allowed(&self, headers: &HeaderMap) -> bool {
        let bearer = crate::auth::bearer(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        if let Some(t) = bearer {
            return same(t, &self.settings.token.0);
        }
        let cookie = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| crate::auth::cookie(Some(c), COOKIE));
        let Some(c) = cookie else { return false };
        let now = crate::now_ms();
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|_, exp| *exp > now);
        s.contains_key(&crate::auth::hash_secret(c))
    }
}

/// Compare two secrets by their hashes (no early exit on the first differing byte).
fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// The router of the roll-up.
pub fn router(state: NationalState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/", get(|| async { Redirect::to("/national") }))
        .route("/dash", get(|| async { Redirect::to("/national") }))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/national", get(national_page))
        .route("/api/v1/national", get(national_json))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route") })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

#[derive(Debug, Deserialize, Default)]
pub struct NationalQuery {
    pub date: Option<String>,
    pub lang: Option<String>,
}

/// A JSON answer.
fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The date asked for, checked: `YYYY-MM-DD`, default today (UTC+7).
fn date_of(q: &NationalQuery) -> Result<String, Box<Response>> {
    match q.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(today()),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| {
                Box::new(json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({
                        "error": "bad_request",
                        "message": "date: expected YYYY-MM-DD"
                    }),
                ))
            }),
    }
}

fn lang_of(q: &NationalQuery, headers: &HeaderMap) -> Lang {
    match &q.lang {
        Some(l) => Lang::parse(l),
        None => headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| crate::auth::cookie(Some(c), "doorstep_lang"))
            .map_or(Lang::Vi, Lang::parse),
    }
}

async fn national_json(
    State(state): State<NationalState>,
    headers: HeaderMap,
    Query(q): Query<NationalQuery>,
) -> Response {
    if !state.allowed(&headers) {
        return json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({
                "error": "unauthorized",
                "message": "give the roll-up's token: Authorization: Bearer TOKEN"
            }),
        );
    }
    let date = match date_of(&q) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    json(
        StatusCode::OK,
        &roll_up(&state.settings, &state.cache, &date).await,
    )
}

async fn national_page(
    State(state): State<NationalState>,
    headers: HeaderMap,
    Query(q): Query<NationalQuery>,
) -> Response {
    if !state.allowed(&headers) {
        return Redirect::to("/signin").into_response();
    }
    let lang = lang_of(&q, &headers);
    let date = match date_of(&q) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let n = roll_up(&state.settings, &state.cache, &date).await;
    let mut resp = page::html(page::national(lang, &n)).into_response();
    if let Some(l) = &q.lang {
        if let Ok(v) = format!(
            "doorstep_lang={}; Path=/; SameSite=Strict",
            Lang::parse(l).code()
        )
        .parse()
        {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[derive(Debug, Deserialize, Default)]
pub struct SigninQuery {
    pub failed: Option<String>,
    pub lang: Option<String>,
}

async fn signin_page(headers: HeaderMap, Query(q): Query<SigninQuery>) -> Response {
    let nq = NationalQuery {
        date: None,
        lang: q.lang.clone(),
    };
    page::html(page::signin(lang_of(&nq, &headers), q.failed.is_some())).into_response()
}

#[derive(Deserialize)]
pub struct SigninForm {
    token: String,
}

async fn signin(State(state): State<NationalState>, body: String) -> Response {
    let token = serde_urlencoded::from_str::<SigninForm>(&body)
        .map(|f| f.token)
        .unwrap_or_default();
    if !same(token.trim(), &state.settings.token.0) {
        tracing::warn!("national sign-in refused: wrong token");
        // Slow guessing down a little: the token is long and random, this is a courtesy.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return Redirect::to("/signin?failed=1").into_response();
    }
    let session = crate::auth::new_token();
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            crate::auth::hash_secret(&session),
            crate::now_ms() + SESSION_MS,
        );
    let secure = if state.tls { "; Secure" } else { "" };
    let mut resp = Redirect::to("/national").into_response();
    if let Ok(v) = format!(
        "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_MS / 1000
    )
    .parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn signout(State(state): State<NationalState>, headers: HeaderMap) -> Response {
    if let Some(c) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| crate::auth::cookie(Some(c), COOKIE))
    {
        state
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&crate::auth::hash_secret(c));
    }
    let mut resp = Redirect::to("/signin").into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Serve the roll-up on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: NationalState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
