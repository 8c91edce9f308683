//! The command centre over HTTP: sign-in, the JSON report API, the dashboard pages, the
//! XLSX/CSV reports and the admin pages (`docs/dashboard-api.md`).
//!
//! Who may call: a command user signed in with a password (session cookie) or an admin's
//! bearer token; each sees only the units under their own ([`check_unit`]). In demo mode
//! (`doorstep serve --demo`) an unsigned caller is province command, and every page says so.
//! JSON routes answer 401/403 as JSON; pages send an unsigned caller to `/signin`.

use crate::auth;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::html::{self, Lang};
use crate::http::{blocking, AppState};
use crate::stats::{OfficerReport, Report, Snapshot};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use doorstep_core::roster::ImportReport;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "doorstep_session";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "doorstep_lang";
/// How long a web session lasts: 12 hours.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// The command-centre routes (merged into [`crate::http::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/dash", get(dash_unit))
        .route("/dash/officer/{id}", get(dash_officer))
        .route("/api/v1/report", get(api_report))
        .route("/api/v1/report/officer/{id}", get(api_officer_report))
        .route("/reports/{file}", get(report_file))
        .route("/admin", get(crate::html::admin::index))
        .route(
            "/admin/quotas",
            get(crate::html::admin::quotas_page).post(crate::html::admin::quotas_post),
        )
        .route(
            "/admin/assign",
            get(crate::html::admin::assign_page).post(crate::html::admin::assign_post),
        )
        .route(
            "/admin/devices",
            get(crate::html::admin::devices_page).post(crate::html::admin::devices_post),
        )
        .route(
            "/admin/roster",
            get(crate::html::admin::roster_page).post(crate::html::admin::roster_upload),
        )
        .route(
            "/admin/roster/jobs/{id}",
            get(crate::html::admin::roster_job),
        )
}

/// Query of the report routes and pages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    /// Unit code (default: the caller's unit, or the campaign's).
    pub unit: Option<String>,
    /// `YYYY-MM-DD` (default: today, clamped into the campaign).
    pub date: Option<String>,
    /// Campaign id (default: the active campaign).
    pub campaign: Option<String>,
    /// `vi` or `en` (pages).
    pub lang: Option<String>,
    /// Officer id (report files).
    pub officer: Option<String>,
}

fn parse_date(s: &Option<String>) -> Result<Option<NaiveDate>> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ServerError::BadRequest("date: expected YYYY-MM-DD".into())),
    }
}

fn parse_uuid(s: &str, field: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim())
        .map_err(|_| ServerError::BadRequest(format!("{field}: expected an id (UUID)")))
}

fn parse_campaign(s: &Option<String>) -> Result<Option<Uuid>> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_uuid(s, "campaign"))
        .transpose()
}

/// The caller: a web session, an admin's bearer token, or (demo mode) province command.
/// `None` if unsigned.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<CommandUser>> {
    let now = crate::now_ms();
    if let Some(token) = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    ) {
        let token = token.to_owned();
        let user = blocking(state, move |b| b.command_user_by_token(&token)).await?;
        return match user {
            Some(u) if u.role == "admin" => Ok(Some(u)),
            Some(_) => Err(ServerError::Forbidden(
                "command routes take an admin's token or a signed-in session",
            )),
            None => Err(ServerError::Unauthorized("unknown token")),
        };
    }
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(Some(c), SESSION_COOKIE))
        .map(str::to_owned);
    if let Some(token) = cookie {
        if let Some(u) = blocking(state, move |b| b.session_user(&token, now)).await? {
            return Ok(Some(u));
        }
    }
    if state.demo {
        return Ok(Some(demo_user()));
    }
    Ok(None)
}

/// The user demo mode signs everybody in as.
pub fn demo_user() -> CommandUser {
    CommandUser {
        user_id: Uuid::nil(),
        name: "demo".into(),
        role: "province".into(),
        unit_code: None,
    }
}

/// The caller, or 401.
pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    caller(state, headers)
        .await?
        .ok_or(ServerError::Unauthorized("sign in first"))
}

/// 403 unless `unit` is the user's unit or under it.
pub fn check_unit(user: &CommandUser, snap: &Snapshot, unit: &str) -> Result<()> {
    match &user.unit_code {
        None => Ok(()),
        Some(mine) if snap.is_under(unit, mine) => Ok(()),
        Some(_) => Err(ServerError::Forbidden("that unit is outside your scope")),
    }
}

/// 403 unless the officer belongs to, or works in, the user's unit.
pub fn check_officer(user: &CommandUser, snap: &Snapshot, officer: Uuid) -> Result<()> {
    match &user.unit_code {
        None => Ok(()),
        Some(mine) if snap.officer_in(officer, mine) => Ok(()),
        Some(_) => Err(ServerError::Forbidden("that officer is outside your scope")),
    }
}

/// A unit report as the caller may see it.
pub fn unit_report(
    state: &AppState,
    backend: &Arc<crate::Backend>,
    user: &CommandUser,
    q: &ReportQuery,
) -> Result<(Arc<Snapshot>, Report)> {
    let date = parse_date(&q.date)?;
    let campaign_id = parse_campaign(&q.campaign)?;
    let snap = state.stats.get(backend)?;
    let campaign = snap.campaign(campaign_id, date)?;
    let unit = match q.unit.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => u.to_owned(),
        None => user
            .unit_code
            .clone()
            .filter(|u| snap.unit(u).is_some())
            .unwrap_or_else(|| campaign.unit_code.clone()),
    };
    if snap.unit(&unit).is_none() {
        return Err(ServerError::NotFound("unit"));
    }
    check_unit(user, &snap, &unit)?;
    let date = date.unwrap_or_else(|| Snapshot::default_date(&campaign));
    let devices = backend.list_devices()?;
    let report = snap.report(&unit, &campaign, date, &devices, crate::now_ms())?;
    Ok((snap, report))
}

/// An officer report as the caller may see it.
pub fn officer_report(
    state: &AppState,
    backend: &Arc<crate::Backend>,
    user: &CommandUser,
    id: Uuid,
    q: &ReportQuery,
) -> Result<(Arc<Snapshot>, OfficerReport)> {
    let date = parse_date(&q.date)?;
    let campaign_id = parse_campaign(&q.campaign)?;
    let snap = state.stats.get(backend)?;
    if snap.officer(id).is_none() {
        return Err(ServerError::NotFound("officer"));
    }
    check_officer(user, &snap, id)?;
    let campaign = snap.campaign(campaign_id, date)?;
    let date = date.unwrap_or_else(|| Snapshot::default_date(&campaign));
    let devices = backend.list_devices()?;
    let report = snap.officer_report(id, &campaign, date, &devices, crate::now_ms())?;
    Ok((snap, report))
}

/// Run `f` with the state on a blocking thread.
pub async fn on_blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState, &Arc<crate::Backend>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let backend = st.backend.clone();
        f(&st, &backend)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("worker failed: {e}")))?
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

async fn api_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let user = require(&state, &headers).await?;
    let (_, report) = on_blocking(&state, move |st, b| unit_report(st, b, &user, &q)).await?;
    json(&report)
}

async fn api_officer_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let user = require(&state, &headers).await?;
    let id = parse_uuid(&id, "officer")?;
    let (_, report) =
        on_blocking(&state, move |st, b| officer_report(st, b, &user, id, &q)).await?;
    json(&report)
}

/// `/reports/{daily|final}.{xlsx|csv|json}`: a unit's report (or an officer's with
/// `officer=`) on the day (`daily`) or on the campaign's last day (`final`).
async fn report_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(mut q): Query<ReportQuery>,
) -> Result<Response> {
    let user = require(&state, &headers).await?;
    let (kind, ext) = file
        .split_once('.')
        .map(|(k, e)| (k.to_owned(), e.to_owned()))
        .ok_or(ServerError::NotFound("no such report"))?;
    let (kind, ext): (&'static str, &'static str) = (
        match kind.as_str() {
            "daily" => "daily",
            "final" => "final",
            _ => return Err(ServerError::NotFound("no such report")),
        },
        match ext.as_str() {
            "xlsx" => "xlsx",
            "csv" => "csv",
            "json" => "json",
            _ => return Err(ServerError::NotFound("no such report format")),
        },
    );
    let format = crate::reports::Format::parse(ext)
        .map_err(|_| ServerError::NotFound("no such report format"))?;
    let final_report = match kind {
        "daily" => false,
        "final" => true,
        _ => return Err(ServerError::NotFound("no such report")),
    };
    let (bytes, name) = on_blocking(&state, move |st, b| {
        if final_report {
            let snap = st.stats.get(b)?;
            let c = snap.campaign(parse_campaign(&q.campaign)?, parse_date(&q.date)?)?;
            q.date = Some(c.end.to_string());
        }
        let officer = q
            .officer
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_uuid(s, "officer"))
            .transpose()?;
        match officer {
            Some(id) => {
                let (_, r) = officer_report(st, b, &user, id, &q)?;
                let name = format!("{kind}-officer-{}-{}.{ext}", r.officer.id, r.date);
                Ok((crate::reports::officer(&r, format)?, name))
            }
            None => {
                let (_, r) = unit_report(st, b, &user, &q)?;
                let name = format!("{kind}-{}-{}.{ext}", r.unit.code, r.date);
                Ok((crate::reports::unit(&r, format)?, name))
            }
        }
    })
    .await?;
    let ct = match ext {
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/json",
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

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

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match caller(&state, &headers).await {
        Ok(Some(_)) => Redirect::to("/dash").into_response(),
        Ok(None) => Redirect::to("/signin").into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
    failed: Option<String>,
}

async fn signin_page(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    page(
        StatusCode::OK,
        html::signin_page(lang, q.failed.is_some()),
        cookie,
    )
}

#[derive(Deserialize)]
struct SigninForm {
    name: String,
    password: String,
}

async fn signin(State(state): State<AppState>, body: Bytes) -> Result<Response> {
    let form: SigninForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ServerError::BadRequest("form: expected name and password".into()))?;
    let now = crate::now_ms();
    let name = form.name.clone();
    let found = blocking(&state, move |b| b.command_user_by_name(&name)).await?;
    let password = form.password;
    // Verify (slow, on purpose) off the async threads; an unknown name costs the same.
    let ok = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) if auth::verify_password(&password, &hash) => Some(user),
        Some(_) => None,
        None => {
            let _ = auth::verify_password(&password, dummy_hash());
            None
        }
    })
    .await
    .map_err(|e| ServerError::Internal(format!("worker failed: {e}")))?;
    let Some(user) = ok else {
        tracing::info!("sign-in refused");
        return Ok(Redirect::to("/signin?failed=1").into_response());
    };
    let token = auth::new_token();
    let t = token.clone();
    let id = user.user_id;
    blocking(&state, move |b| {
        b.start_session(id, &t, now + SESSION_MS, now)
    })
    .await?;
    tracing::info!(user = %id, "signed in");
    let mut resp = Redirect::to("/dash").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_MS / 1000
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

async fn signout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(Some(c), SESSION_COOKIE))
        .map(str::to_owned);
    if let Some(token) = cookie {
        blocking(&state, move |b| b.end_session(&token)).await?;
    }
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("doorstep_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

async fn dash_unit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let u = user.clone();
    let demo = state.demo;
    match on_blocking(&state, move |st, b| unit_report(st, b, &u, &q)).await {
        Ok((snap, report)) => page(
            StatusCode::OK,
            html::unit_page(lang, &user, demo, &snap, &report),
            cookie,
        ),
        Err(e) => page_error(e, lang, Some(&user), demo),
    }
}

async fn dash_officer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let id = match parse_uuid(&id, "officer") {
        Ok(id) => id,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let u = user.clone();
    let demo = state.demo;
    match on_blocking(&state, move |st, b| officer_report(st, b, &u, id, &q)).await {
        Ok((snap, report)) => page(
            StatusCode::OK,
            html::officer_page(lang, &user, demo, &snap, &report),
            cookie,
        ),
        Err(e) => page_error(e, lang, Some(&user), demo),
    }
}

/// A roster import started from the admin page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    /// Bytes of the upload.
    pub total_bytes: u64,
    /// Bytes read so far.
    pub bytes_read: u64,
    /// Rows read so far.
    pub rows_read: u64,
    /// Finished (with a report or an error).
    pub done: bool,
    /// The import's report when done: counts and every rejected row (line and reason; no
    /// personal data).
    pub report: Option<JobReport>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Who started it.
    #[serde(skip)]
    pub owner: Uuid,
}

/// What a roster import did (`doorstep_core::roster::ImportReport`, serialisable).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobReport {
    /// Data rows.
    pub rows: usize,
    /// Rows accepted.
    pub accepted: usize,
    /// Households written.
    pub households_changed: usize,
    /// Residents written.
    pub residents_changed: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Rejected rows: line number and reason (names the column, never the value).
    pub rejected: Vec<(u64, String)>,
}

impl From<&ImportReport> for JobReport {
    fn from(r: &ImportReport) -> JobReport {
        JobReport {
            rows: r.rows,
            accepted: r.accepted,
            households_changed: r.households_changed,
            residents_changed: r.residents_changed,
            unchanged: r.unchanged,
            rejected: r
                .rejected
                .iter()
                .map(|x| (x.line, x.reason.clone()))
                .collect(),
        }
    }
}

/// Roster imports in progress or done, by id (kept for the server's life; small).
#[derive(Debug, Default)]
pub struct Jobs {
    /// The jobs.
    pub jobs: Mutex<HashMap<Uuid, Job>>,
}

impl Jobs {
    /// Update a job.
    pub fn update(&self, id: Uuid, f: impl FnOnce(&mut Job)) {
        if let Ok(mut j) = self.jobs.lock() {
            if let Some(job) = j.get_mut(&id) {
                f(job);
            }
        }
    }

    /// A job's state.
    pub fn get(&self, id: Uuid) -> Option<Job> {
        self.jobs.lock().ok().and_then(|j| j.get(&id).cloned())
    }
}

/// Read a request body up to the server's limit.
pub async fn body_bytes(state: &AppState, body: Body) -> Result<Bytes> {
    use http_body_util::{BodyExt, Limited};
    let limit = state.max_body_bytes;
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| {
            ServerError::TooLarge(format!(
                "request body over the limit of {limit} bytes (after decompression)"
            ))
        })
}
