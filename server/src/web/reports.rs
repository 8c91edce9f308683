//! The reports a caller may see: a unit's or an officer's ([`unit_report`],
//! [`officer_report`], shared with the dashboard pages and the `doorstep report` command),
//! as JSON (`/api/v1/report…`) and as files (`/reports/{daily|final}.{xlsx|csv|json}`).
//! The numbers come from [`crate::stats`]; the files are written by [`crate::reports`].

use crate::app::AppState;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::now_ms;
use crate::stats::{OfficerReport, Report, Snapshot};
use crate::web::body::JsonQuery;
use crate::web::caller::{check_officer, check_unit, require};
use crate::web::respond::json;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

/// Query of the report routes and pages.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

/// An id from a path or a query, or 400 naming the field.
pub fn parse_uuid(s: &str, field: &str) -> Result<Uuid> {
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

/// A unit report as the caller may see it (blocks: run it inside [`AppState::blocking`]).
pub fn unit_report(
    state: &AppState,
    user: &CommandUser,
    q: &ReportQuery,
    via: &'static str,
) -> Result<(Arc<Snapshot>, Report)> {
    let date = parse_date(&q.date)?;
    let campaign_id = parse_campaign(&q.campaign)?;
    let snap = state.snapshot()?;
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
    let date = date.unwrap_or_else(|| snap.default_date(&campaign));
    let devices = state.backend.list_devices()?;
    let report = snap.report(&unit, &campaign, date, &devices, now_ms())?;
    audit_view(state, user, &format!("unit:{unit}"), via, date)?;
    Ok((snap, report))
}

/// An officer report as the caller may see it (blocks: run it inside
/// [`AppState::blocking`]).
pub fn officer_report(
    state: &AppState,
    user: &CommandUser,
    id: Uuid,
    q: &ReportQuery,
    via: &'static str,
) -> Result<(Arc<Snapshot>, OfficerReport)> {
    let date = parse_date(&q.date)?;
    let campaign_id = parse_campaign(&q.campaign)?;
    let snap = state.snapshot()?;
    if snap.officer(id).is_none() {
        return Err(ServerError::NotFound("officer"));
    }
    check_officer(user, &snap, id)?;
    let campaign = snap.campaign(campaign_id, date)?;
    let date = date.unwrap_or_else(|| snap.default_date(&campaign));
    let devices = state.backend.list_devices()?;
    let report = snap.officer_report(id, &campaign, date, &devices, now_ms())?;
    audit_view(state, user, &format!("officer:{id}"), via, date)?;
    Ok((snap, report))
}

/// Who looked at what: every report shown or exported (names of officers, residents' counts
/// and lists) is an audit row — the user, the unit or officer, how (`page`, `api`, `file`,
/// `console`) and the day.
fn audit_view(
    state: &AppState,
    user: &CommandUser,
    target: &str,
    via: &'static str,
    date: chrono::NaiveDate,
) -> Result<()> {
    state.backend.audit_access(
        &user.actor(),
        "view_report",
        target,
        &format!("{via} date={date}"),
        now_ms(),
    )
}

/// `GET /api/v1/report`: a unit's report as JSON.
#[utoipa::path(get, path = "/api/v1/report", tag = "command centre",
    params(ReportQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The unit's report (its shape and counting rules: docs/dashboard-api.md)", content(("application/json"))),
        crate::web::openapi::CommandErrors,
    )
)]
pub async fn api_unit(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonQuery(q): JsonQuery<ReportQuery>,
) -> Result<Response> {
    let user = require(&state, &headers).await?;
    let (_, report) = state
        .blocking(move |s| unit_report(s, &user, &q, "api"))
        .await?;
    json(&report)
}

/// `GET /api/v1/report/officer/{id}`: an officer's report as JSON.
#[utoipa::path(get, path = "/api/v1/report/officer/{id}", tag = "command centre",
    params(("id" = String, Path, description = "The officer's id (UUID)"), ReportQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The officer's report (docs/dashboard-api.md)", content(("application/json"))),
        crate::web::openapi::CommandErrors,
    )
)]
pub async fn api_officer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonQuery(q): JsonQuery<ReportQuery>,
) -> Result<Response> {
    let user = require(&state, &headers).await?;
    let id = parse_uuid(&id, "officer")?;
    let (_, report) = state
        .blocking(move |s| officer_report(s, &user, id, &q, "api"))
        .await?;
    json(&report)
}

/// `/reports/{daily|final}.{xlsx|csv|json}`: a unit's report (or an officer's with
/// `officer=`) on the day (`daily`) or on the campaign's last day (`final`).
#[utoipa::path(get, path = "/reports/{file}", tag = "command centre",
    params(("file" = String, Path, description = "`daily` or `final`, `.`, then `xlsx`, `csv` or `json` (e.g. `daily.xlsx`)"), ReportQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The report file, with `Content-Disposition: attachment` (docs/dashboard-api.md, Report files)",
            content(("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), ("text/csv; charset=utf-8"), ("application/json"))),
        crate::web::openapi::CommandErrors,
    )
)]
pub async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    JsonQuery(mut q): JsonQuery<ReportQuery>,
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
    let (bytes, name) = state
        .blocking(move |st| {
            if final_report {
                let snap = st.snapshot()?;
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
                    let (_, r) = officer_report(st, &user, id, &q, "file")?;
                    let name = format!("{kind}-officer-{}-{}.{ext}", r.officer.id, r.date);
                    Ok((crate::reports::officer(&r, format)?, name))
                }
                None => {
                    let (_, r) = unit_report(st, &user, &q, "file")?;
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
