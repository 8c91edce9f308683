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
use crate::limits::DEFAULT_CODE_TTL_MINUTES;
use crate::now_ms;
use crate::stats::Snapshot;
use crate::web::caller::{check_officer, check_unit, require_admin_pages, require_admin_writes};
use crate::web::respond::{lang_of, page_error, user_page};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use doorstep_core::{AssignTarget, QuotaInput, QuotaMetric, QuotaPeriod, QuotaSubject};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashSet;
use uuid::Uuid;

/// Common query of admin pages.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminQuery {
    /// `vi` or `en` (remembered in a cookie).
    lang: Option<String>,
    /// What the last change made (an id or a code), shown on the page.
    done: Option<String>,
}

impl AdminQuery {
    /// The language asked for, if any.
    pub fn lang(&self) -> Option<&str> {
        self.lang.as_deref()
    }
}

/// An admin form's post: the caller, the form (`expected` names its fields when it does not
/// parse), then the change against the snapshot on a blocking thread, which answers where
/// to go next; errors as pages.
async fn admin_change<F: DeserializeOwned + Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    expected: &'static str,
    change: impl FnOnce(&AppState, &CommandUser, &Snapshot, F, i64) -> Result<String> + Send + 'static,
) -> Response {
    let (lang, _) = lang_of(headers, None);
    let user = match require_admin_writes(state, headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<F>(body) else {
        return page_error(
            ServerError::BadRequest(expected.into()),
            lang,
            Some(&user),
            state.demo,
        );
    };
    let u = user.clone();
    let now = now_ms();
    match state
        .blocking(move |s| {
            let snap = s.snapshot()?;
            change(s, &u, &snap, form, now)
        })
        .await
    {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// `GET /admin`: the menu and the latest audit entries.
#[utoipa::path(get, path = "/admin", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The admin menu and the latest audit entries", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang.as_deref(),
        require_admin_pages(&state, &headers).await,
        |s, _| s.backend.audit(30),
        |lang, user, demo, entries| render::index(lang, user, demo, &entries),
    )
    .await
}

/// `GET /admin/quotas`.
#[utoipa::path(get, path = "/admin/quotas", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The quotas page", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn quotas(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang.as_deref(),
        require_admin_pages(&state, &headers).await,
        |s, _| s.snapshot(),
        |lang, user, demo, snap| render::quotas(lang, user, demo, &snap, q.done.as_deref()),
    )
    .await
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
#[utoipa::path(post, path = "/admin/quotas", tag = "command centre",
    request_body(description = "`campaign`, `subject_kind` (`unit` or `officer`), `unit` or `officer`, `period` (`campaign` or YYYY-MM-DD), `metric`, `target`", content(("application/x-www-form-urlencoded"))),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 303, description = "Done (audited as `user:<id>`): to `/admin/quotas?done=<id>`; not signed in: to `/signin`"),
        (status = "4XX", response = crate::web::openapi::ErrorPage),
    )
)]
pub async fn quotas_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admin_change(
        &state,
        &headers,
        &body,
        "form: expected campaign, subject_kind, unit or officer, period, metric, target",
        |s, user, snap, form: QuotaForm, now| {
            let q = quota_input(user, snap, form)?;
            let id = s.backend.set_quota(&user.actor(), q, now)?;
            Ok(format!("/admin/quotas?done={id}"))
        },
    )
    .await
}

/// `GET /admin/assign`.
#[utoipa::path(get, path = "/admin/assign", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The assignments page", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang.as_deref(),
        require_admin_pages(&state, &headers).await,
        |s, _| s.snapshot(),
        |lang, user, demo, snap| render::assign(lang, user, demo, &snap, q.done.as_deref()),
    )
    .await
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
#[utoipa::path(post, path = "/admin/assign", tag = "command centre",
    request_body(description = "`action` (`assign`, `unassign`, `move`), `officer`, `from` (for `move`), `kind` (`village` or `household`), `target`", content(("application/x-www-form-urlencoded"))),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 303, description = "Done (audited as `user:<id>`): to `/admin/assign?done=<id>`; not signed in: to `/signin`"),
        (status = "4XX", response = crate::web::openapi::ErrorPage),
    )
)]
pub async fn assign_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admin_change(
        &state,
        &headers,
        &body,
        "form: expected action, officer, kind, target",
        |s, u, snap, form: AssignForm, now| {
            let b = &s.backend;
            let officer = Uuid::parse_str(form.officer.trim())
                .map_err(|_| ServerError::BadRequest("officer: expected an officer id".into()))?;
            check_officer(u, snap, officer)?;
            let target = match form.kind.as_str() {
                "village" => {
                    let v = form.target.trim().to_owned();
                    if snap.unit(&v).is_none() {
                        return Err(ServerError::NotFound("village"));
                    }
                    check_unit(u, snap, &v)?;
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
            let id = match form.action.as_str() {
                "assign" => b.set_assignment(&actor, officer, target, true, now),
                "unassign" => b.set_assignment(&actor, officer, target, false, now),
                "move" => {
                    let from =
                        Uuid::parse_str(form.from.unwrap_or_default().trim()).map_err(|_| {
                            ServerError::BadRequest(
                                "from: expected the officer it moves from".into(),
                            )
                        })?;
                    check_officer(u, snap, from)?;
                    b.set_assignment(&actor, from, target.clone(), false, now)?;
                    b.set_assignment(&actor, officer, target, true, now)
                }
                _ => Err(ServerError::BadRequest(
                    "action: expected assign, unassign or move".into(),
                )),
            }?;
            Ok(format!("/admin/assign?done={id}"))
        },
    )
    .await
}

/// `GET /admin/devices`.
#[utoipa::path(get, path = "/admin/devices", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The devices page", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang.as_deref(),
        require_admin_pages(&state, &headers).await,
        |s, u| {
            let snap = s.snapshot()?;
            let devices = s.backend.list_devices()?;
            let ids: HashSet<Uuid> = snap
                .officers_in(u.unit_code.as_deref())
                .iter()
                .map(|o| o.id)
                .collect();
            let rows = snap.device_rows(&devices, &ids, now_ms());
            Ok((snap, rows))
        },
        |lang, user, demo, (snap, rows)| {
            let pin = state.tls_pin.as_ref().and_then(|pin| pin());
            render::devices(
                lang,
                user,
                demo,
                &snap,
                &rows,
                q.done.as_deref(),
                pin.as_deref(),
            )
        },
    )
    .await
}

#[derive(Deserialize)]
struct DeviceForm {
    action: String,
    officer: Option<String>,
    device: Option<String>,
}

/// `POST /admin/devices`: `action=enrol&officer=` or `action=revoke&device=`.
#[utoipa::path(post, path = "/admin/devices", tag = "command centre",
    request_body(description = "`action=enrol&officer=<id>` (issue a code) or `action=revoke&device=<id>`", content(("application/x-www-form-urlencoded"))),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 303, description = "Done (audited as `user:<id>`): to `/admin/devices?done=<code>` or `/admin/devices`; not signed in: to `/signin`"),
        (status = "4XX", response = crate::web::openapi::ErrorPage),
    )
)]
pub async fn devices_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admin_change(
        &state,
        &headers,
        &body,
        "form: expected action and officer or device",
        |s, u, snap, form: DeviceForm, now| {
            let b = &s.backend;
            match form.action.as_str() {
                "enrol" => {
                    let o =
                        Uuid::parse_str(form.officer.unwrap_or_default().trim()).map_err(|_| {
                            ServerError::BadRequest("officer: expected an officer id".into())
                        })?;
                    check_officer(u, snap, o)?;
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
                    check_officer(u, snap, dev.officer_id)?;
                    b.revoke_device(&u.actor(), d, now)?;
                    Ok("/admin/devices".to_owned())
                }
                _ => Err(ServerError::BadRequest(
                    "action: expected enrol or revoke".into(),
                )),
            }
        },
    )
    .await
}

/// `GET /admin/roster`: the upload form with its progress bar.
#[utoipa::path(get, path = "/admin/roster", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The roster upload form with its progress bar", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn roster(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang.as_deref(),
        require_admin_pages(&state, &headers).await,
        |s, _| s.snapshot(),
        |lang, user, demo, snap| render::roster(lang, user, demo, &snap),
    )
    .await
}
