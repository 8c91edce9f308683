//! The admin pages' handlers: quotas, assignments (assign, unassign, move), devices (enrol
//! codes, revoke) and the roster upload form (the upload itself: [`crate::web::jobs`]).
//! Every change goes through the backend, which writes it to the audit log under the
//! signed-in user; the markup is [`crate::html::admin`].
//!
//! Who: an admin (every unit), or a command user within their unit (quotas, assignments,
//! devices of their officers). Roster import: admins and province command only.

use crate::app::AppState;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::html::admin as render;
use crate::now_ms;
use crate::stats::Snapshot;
use crate::web::caller::{check_officer, check_unit, require_admin_pages};
use crate::web::respond::{lang_of, page, page_error};
use crate::web::sync::DEFAULT_CODE_TTL_MINUTES;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use doorstep_core::{AssignTarget, QuotaInput, QuotaMetric, QuotaPeriod, QuotaSubject};
use serde::Deserialize;
use std::collections::HashSet;
use uuid::Uuid;

/// Common query of admin pages.
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    lang: Option<String>,
    done: Option<String>,
}

/// `GET /admin`: the menu and the latest audit entries.
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let entries = match state.blocking(|s| s.backend.audit(30)).await {
        Ok(e) => e,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    page(
        StatusCode::OK,
        render::index(lang, &user, state.demo, &entries),
        cookie,
    )
}

/// `GET /admin/quotas`.
pub async fn quotas(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match state.blocking(|s| s.snapshot()).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    page(
        StatusCode::OK,
        render::quotas(lang, &user, state.demo, &snap, q.done.as_deref()),
        cookie,
    )
}

#[derive(Deserialize)]
struct QuotaForm {
    campaign: String,
    subject_kind: String,
    unit: Option<String>,
    officer: Option<String>,
    period: String,
    metric: String,
    target: i64,
}

fn parse_period(s: &str) -> Result<QuotaPeriod> {
    let s = s.trim();
    if s == "campaign" {
        return Ok(QuotaPeriod::Campaign);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(QuotaPeriod::Day)
        .map_err(|_| ServerError::BadRequest("period: expected campaign or YYYY-MM-DD".into()))
}

/// Parse and scope-check a quota.
fn quota_input(user: &CommandUser, snap: &Snapshot, f: QuotaForm) -> Result<QuotaInput> {
    let campaign_id = Uuid::parse_str(f.campaign.trim())
        .map_err(|_| ServerError::BadRequest("campaign: expected a campaign id".into()))?;
    let subject = match f.subject_kind.as_str() {
        "unit" => {
            let u = f.unit.unwrap_or_default().trim().to_owned();
            if snap.unit(&u).is_none() {
                return Err(ServerError::NotFound("unit"));
            }
            check_unit(user, snap, &u)?;
            QuotaSubject::Unit(u)
        }
        "officer" => {
            let o = Uuid::parse_str(f.officer.unwrap_or_default().trim())
                .map_err(|_| ServerError::BadRequest("officer: expected an officer id".into()))?;
            check_officer(user, snap, o)?;
            QuotaSubject::Officer(o)
        }
        _ => {
            return Err(ServerError::BadRequest(
                "subject_kind: expected unit or officer".into(),
            ))
        }
    };
    Ok(QuotaInput {
        campaign_id,
        subject,
        period: parse_period(&f.period)?,
        metric: QuotaMetric::parse(f.metric.trim())?,
        target: f.target,
    })
}

/// `POST /admin/quotas`.
pub async fn quotas_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, _) = lang_of(&headers, None);
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let form: QuotaForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => return page_error(
            ServerError::BadRequest(
                "form: expected campaign, subject_kind, unit or officer, period, metric, target"
                    .into(),
            ),
            lang,
            Some(&user),
            state.demo,
        ),
    };
    let u = user.clone();
    let now = now_ms();
    match state
        .blocking(move |s| {
            let snap = s.snapshot()?;
            let q = quota_input(&u, &snap, form)?;
            s.backend.set_quota(&u.actor(), q, now)
        })
        .await
    {
        Ok(id) => Redirect::to(&format!("/admin/quotas?done={id}")).into_response(),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// `GET /admin/assign`.
pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match state.blocking(|s| s.snapshot()).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    page(
        StatusCode::OK,
        render::assign(lang, &user, state.demo, &snap, q.done.as_deref()),
        cookie,
    )
}

#[derive(Deserialize)]
struct AssignForm {
    action: String,
    officer: String,
    from: Option<String>,
    kind: String,
    target: String,
}

/// `POST /admin/assign`.
pub async fn assign_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, _) = lang_of(&headers, None);
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<AssignForm>(&body) else {
        return page_error(
            ServerError::BadRequest("form: expected action, officer, kind, target".into()),
            lang,
            Some(&user),
            state.demo,
        );
    };
    let u = user.clone();
    let now = now_ms();
    let r = state
        .blocking(move |s| {
            let b = &s.backend;
            let snap = s.snapshot()?;
            let officer = Uuid::parse_str(form.officer.trim())
                .map_err(|_| ServerError::BadRequest("officer: expected an officer id".into()))?;
            check_officer(&u, &snap, officer)?;
            let target = match form.kind.as_str() {
                "village" => {
                    let v = form.target.trim().to_owned();
                    if snap.unit(&v).is_none() {
                        return Err(ServerError::NotFound("village"));
                    }
                    check_unit(&u, &snap, &v)?;
                    AssignTarget::Village(v)
                }
                "household" => {
                    AssignTarget::Household(Uuid::parse_str(form.target.trim()).map_err(|_| {
                        ServerError::BadRequest("target: expected a household id (UUID)".into())
                    })?)
                }
                _ => {
                    return Err(ServerError::BadRequest(
                        "kind: expected village or household".into(),
                    ))
                }
            };
            let actor = u.actor();
            match form.action.as_str() {
                "assign" => b.set_assignment(&actor, officer, target, true, now),
                "unassign" => b.set_assignment(&actor, officer, target, false, now),
                "move" => {
                    let from =
                        Uuid::parse_str(form.from.unwrap_or_default().trim()).map_err(|_| {
                            ServerError::BadRequest(
                                "from: expected the officer it moves from".into(),
                            )
                        })?;
                    check_officer(&u, &snap, from)?;
                    b.set_assignment(&actor, from, target.clone(), false, now)?;
                    b.set_assignment(&actor, officer, target, true, now)
                }
                _ => Err(ServerError::BadRequest(
                    "action: expected assign, unassign or move".into(),
                )),
            }
        })
        .await;
    match r {
        Ok(id) => Redirect::to(&format!("/admin/assign?done={id}")).into_response(),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// `GET /admin/devices`.
pub async fn devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let u = user.clone();
    let r = state
        .blocking(move |s| {
            let snap = s.snapshot()?;
            let devices = s.backend.list_devices()?;
            let ids: HashSet<Uuid> = snap
                .officers_in(u.unit_code.as_deref())
                .iter()
                .map(|o| o.id)
                .collect();
            let rows = snap.device_rows(&devices, &ids, now_ms());
            Ok((snap, rows))
        })
        .await;
    let (snap, rows) = match r {
        Ok(x) => x,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    page(
        StatusCode::OK,
        render::devices(lang, &user, state.demo, &snap, &rows, q.done.as_deref()),
        cookie,
    )
}

#[derive(Deserialize)]
struct DeviceForm {
    action: String,
    officer: Option<String>,
    device: Option<String>,
}

/// `POST /admin/devices`: `action=enrol&officer=` or `action=revoke&device=`.
pub async fn devices_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (lang, _) = lang_of(&headers, None);
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<DeviceForm>(&body) else {
        return page_error(
            ServerError::BadRequest("form: expected action and officer or device".into()),
            lang,
            Some(&user),
            state.demo,
        );
    };
    let u = user.clone();
    let now = now_ms();
    let r = state
        .blocking(move |s| {
            let b = &s.backend;
            let snap = s.snapshot()?;
            match form.action.as_str() {
                "enrol" => {
                    let o =
                        Uuid::parse_str(form.officer.unwrap_or_default().trim()).map_err(|_| {
                            ServerError::BadRequest("officer: expected an officer id".into())
                        })?;
                    check_officer(&u, &snap, o)?;
                    let code = b.issue_enrol_code(&u.actor(), o, DEFAULT_CODE_TTL_MINUTES, now)?;
                    Ok(format!("/admin/devices?done={}", code.code))
                }
                "revoke" => {
                    let d =
                        Uuid::parse_str(form.device.unwrap_or_default().trim()).map_err(|_| {
                            ServerError::BadRequest("device: expected a device id".into())
                        })?;
                    let dev = b
                        .list_devices()?
                        .into_iter()
                        .find(|x| x.id == d)
                        .ok_or(ServerError::NotFound("device"))?;
                    check_officer(&u, &snap, dev.officer_id)?;
                    b.revoke_device(&u.actor(), d, now)?;
                    Ok("/admin/devices".to_owned())
                }
                _ => Err(ServerError::BadRequest(
                    "action: expected enrol or revoke".into(),
                )),
            }
        })
        .await;
    match r {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// `GET /admin/roster`: the upload form with its progress bar.
pub async fn roster(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match require_admin_pages(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match state.blocking(|s| s.snapshot()).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    page(
        StatusCode::OK,
        render::roster(lang, &user, state.demo, &snap),
        cookie,
    )
}
