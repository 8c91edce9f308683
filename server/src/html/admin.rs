//! Admin pages: quotas, assignments (assign, unassign, move), devices (enrol codes, revoke),
//! roster import with a progress bar and the rejected rows. Every change goes through the
//! backend, which writes it to the audit log under the signed-in user.
//!
//! Who: an admin (every unit), or a command user within their unit (quotas, assignments,
//! devices of their officers). Roster import: admins and province command only.

use super::{esc, layout, Lang};
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::http::AppState;
use crate::stats::Snapshot;
use crate::web::{
    body_bytes, check_officer, check_unit, lang_of, on_blocking, page, page_error, require, Job,
    JobReport,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use doorstep_core::{AssignTarget, QuotaInput, QuotaMetric, QuotaPeriod, QuotaSubject};
use serde::Deserialize;
use std::fmt::Write as _;
use uuid::Uuid;

/// Common query of admin pages.
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    lang: Option<String>,
    done: Option<String>,
}

async fn admin_user(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    let u = require(state, headers).await?;
    match u.role.as_str() {
        "admin" | "province" | "district" | "commune_lead" => Ok(u),
        _ => Err(ServerError::Forbidden("admin pages need a command user")),
    }
}

fn done_note(lang: Lang, done: &Option<String>) -> String {
    match done.as_deref() {
        Some(d) if !d.is_empty() => format!(
            "<p class=\"ok\" id=\"done\">{}: {}</p>",
            lang.t("Đã lưu", "Saved"),
            esc(d)
        ),
        _ => String::new(),
    }
}

fn officer_select(snap: &Snapshot, user: &CommandUser, name: &str) -> String {
    let mut s = format!("<select name=\"{name}\" id=\"{name}\">");
    for o in snap.officers_in(user.unit_code.as_deref()) {
        let _ = write!(
            s,
            "<option value=\"{}\">{} ({})</option>",
            o.id,
            esc(&o.name),
            esc(&o.unit_code)
        );
    }
    s.push_str("</select>");
    s
}

fn campaign_select(snap: &Snapshot) -> String {
    let mut s = String::from("<select name=\"campaign\" id=\"campaign\">");
    for c in snap.campaigns().iter().rev() {
        let _ = write!(
            s,
            "<option value=\"{}\">{} ({} – {})</option>",
            c.id,
            esc(&c.name),
            c.start,
            c.end
        );
    }
    s.push_str("</select>");
    s
}

/// `GET /admin`: the menu and the latest audit entries.
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match admin_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let entries = match on_blocking(&state, |_, b| b.audit(30)).await {
        Ok(e) => e,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let mut b = format!(
        "<h1>{}</h1><ul><li><a href=\"/admin/quotas\">{}</a></li><li><a href=\"/admin/assign\">{}</a></li>\
         <li><a href=\"/admin/devices\">{}</a></li><li><a href=\"/admin/roster\">{}</a></li></ul><h2>{}</h2>",
        lang.t("Quản trị", "Admin"),
        lang.t("Giao chỉ tiêu", "Quotas"),
        lang.t("Phân công địa bàn", "Assignments"),
        lang.t("Thiết bị", "Devices"),
        lang.t("Nhập danh sách", "Roster import"),
        lang.t("Nhật ký thao tác", "Audit log"),
    );
    b.push_str("<div class=\"tw\"><table id=\"audit\"><tr><th class=\"l\">at</th><th class=\"l\">actor</th><th class=\"l\">action</th><th class=\"l\">target</th><th class=\"l\">detail</th></tr>");
    for e in entries {
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&crate::stats::local_rfc3339(e.at_ms)),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.target),
            esc(&e.detail)
        );
    }
    b.push_str("</table></div>");
    page(
        StatusCode::OK,
        layout(lang, Some(&user), state.demo, "Admin", "/admin", &b),
        cookie,
    )
}

/// `GET /admin/quotas`.
pub async fn quotas_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match admin_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match on_blocking(&state, |st, b| st.stats.get(b)).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let mut metrics = String::new();
    for m in QuotaMetric::ALL {
        let _ = write!(metrics, "<option>{}</option>", m.as_str());
    }
    let b = format!(
        "<h1>{}</h1>{}<form class=\"f\" method=\"post\" action=\"/admin/quotas\">\
         <label>{}{}</label>\
         <label>{}<select name=\"subject_kind\" id=\"subject_kind\"><option value=\"unit\">{}</option><option value=\"officer\">{}</option></select></label>\
         <label>{}<input name=\"unit\" id=\"unit\" placeholder=\"22852\"></label>\
         <label>{}{}</label>\
         <label>{}<input name=\"period\" id=\"period\" placeholder=\"campaign | YYYY-MM-DD\" value=\"campaign\"></label>\
         <label>{}<select name=\"metric\" id=\"metric\">{metrics}</select></label>\
         <label>{}<input name=\"target\" id=\"target\" type=\"number\" min=\"0\" required></label>\
         <button id=\"save\">{}</button></form>",
        lang.t("Giao chỉ tiêu", "Set a quota"),
        done_note(lang, &q.done),
        lang.t("Chiến dịch", "Campaign"),
        campaign_select(&snap),
        lang.t("Giao cho", "For"),
        lang.t("Đơn vị", "Unit"),
        lang.t("Cán bộ", "Officer"),
        lang.t("Mã đơn vị", "Unit code"),
        lang.t("Cán bộ", "Officer"),
        officer_select(&snap, &user, "officer"),
        lang.t("Kỳ (campaign hoặc ngày)", "Period (campaign or a day)"),
        lang.t("Chỉ số", "Metric"),
        lang.t("Chỉ tiêu", "Target"),
        lang.t("Lưu", "Save"),
    );
    page(
        StatusCode::OK,
        layout(lang, Some(&user), state.demo, "Quotas", "/admin/quotas", &b),
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

/// Parse and scope-check a quota (shared by the page and its tests).
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
    let user = match admin_user(&state, &headers).await {
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
    let now = crate::now_ms();
    match on_blocking(&state, move |st, b| {
        let snap = st.stats.get(b)?;
        let q = quota_input(&u, &snap, form)?;
        b.set_quota(&u.actor(), q, now)
    })
    .await
    {
        Ok(id) => Redirect::to(&format!("/admin/quotas?done={id}")).into_response(),
        Err(e) => page_error(e, lang, Some(&user), state.demo),
    }
}

/// `GET /admin/assign`.
pub async fn assign_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match admin_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match on_blocking(&state, |st, b| st.stats.get(b)).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let b = format!(
        "<h1>{}</h1>{}<form class=\"f\" method=\"post\" action=\"/admin/assign\">\
         <label>{}<select name=\"action\" id=\"action\"><option value=\"assign\">{}</option><option value=\"unassign\">{}</option><option value=\"move\">{}</option></select></label>\
         <label>{}{}</label><label>{}{}</label>\
         <label>{}<select name=\"kind\" id=\"kind\"><option value=\"village\">{}</option><option value=\"household\">{}</option></select></label>\
         <label>{}<input name=\"target\" id=\"target\" required></label>\
         <button id=\"save\">{}</button></form><p class=\"asof\">{}</p>",
        lang.t("Phân công địa bàn", "Assign areas"),
        done_note(lang, &q.done),
        lang.t("Thao tác", "Action"),
        lang.t("Giao", "Assign"),
        lang.t("Thu hồi", "Unassign"),
        lang.t("Chuyển", "Move"),
        lang.t("Cán bộ", "Officer"),
        officer_select(&snap, &user, "officer"),
        lang.t("Từ cán bộ (khi chuyển)", "From officer (move)"),
        officer_select(&snap, &user, "from"),
        lang.t("Loại", "Kind"),
        lang.t("Thôn/khu phố", "Village"),
        lang.t("Hộ", "Household"),
        lang.t("Mã thôn hoặc mã hộ (UUID)", "Village code or household id"),
        lang.t("Lưu", "Save"),
        lang.t(
            "Chuyển = thu hồi của cán bộ cũ rồi giao cho cán bộ mới.",
            "Move = unassign from the old officer, then assign to the new one."
        ),
    );
    page(
        StatusCode::OK,
        layout(lang, Some(&user), state.demo, "Assign", "/admin/assign", &b),
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
    let user = match admin_user(&state, &headers).await {
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
    let now = crate::now_ms();
    let r = on_blocking(&state, move |st, b| {
        let snap = st.stats.get(b)?;
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
                let from = Uuid::parse_str(form.from.unwrap_or_default().trim()).map_err(|_| {
                    ServerError::BadRequest("from: expected the officer it moves from".into())
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
pub async fn devices_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match admin_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let u = user.clone();
    let r = on_blocking(&state, move |st, b| {
        let snap = st.stats.get(b)?;
        let devices = b.list_devices()?;
        let ids: std::collections::HashSet<Uuid> = snap
            .officers_in(u.unit_code.as_deref())
            .iter()
            .map(|o| o.id)
            .collect();
        let rows = snap.device_rows(&devices, &ids, crate::now_ms());
        Ok((snap, rows))
    })
    .await;
    let (snap, rows) = match r {
        Ok(x) => x,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let mut b = format!(
        "<h1>{}</h1>{}<h2>{}</h2><form class=\"f\" method=\"post\" action=\"/admin/devices\">\
         <input type=\"hidden\" name=\"action\" value=\"enrol\"><label>{}{}</label><button id=\"enrol\">{}</button></form>",
        lang.t("Thiết bị", "Devices"),
        match q.done.as_deref() {
            Some(code) if !code.is_empty() => format!(
                "<p class=\"ok\" id=\"done\">{} <b id=\"code\">{}</b> {}</p>",
                lang.t("Mã đăng ký (chỉ hiện một lần):", "Enrolment code (shown once):"),
                esc(code),
                lang.t("hiệu lực 24 giờ.", "valid for 24 hours.")
            ),
            _ => String::new(),
        },
        lang.t("Cấp mã đăng ký thiết bị", "Issue an enrolment code"),
        lang.t("Cán bộ", "Officer"),
        officer_select(&snap, &user, "officer"),
        lang.t("Cấp mã", "Issue"),
    );
    b.push_str("<div class=\"tw\"><table id=\"devices\"><tr><th class=\"l\">id</th><th class=\"l\">name</th><th class=\"l\">officer</th><th class=\"l\">last sync</th><th></th></tr>");
    for d in rows {
        let action = if d.revoked {
            lang.t("đã thu hồi", "revoked").to_owned()
        } else {
            format!(
                "<form method=\"post\" action=\"/admin/devices\"><input type=\"hidden\" name=\"action\" value=\"revoke\">\
                 <input type=\"hidden\" name=\"device\" value=\"{}\"><button>{}</button></form>",
                d.id,
                lang.t("Thu hồi", "Revoke")
            )
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l{}\">{}</td><td>{action}</td></tr>",
            d.id,
            esc(&d.name),
            esc(&d.officer_name),
            if d.stale { " bad" } else { "" },
            esc(d.last_sync.as_deref().unwrap_or("–")),
        );
    }
    b.push_str("</table></div>");
    page(
        StatusCode::OK,
        layout(
            lang,
            Some(&user),
            state.demo,
            "Devices",
            "/admin/devices",
            &b,
        ),
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
    let user = match admin_user(&state, &headers).await {
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
    let now = crate::now_ms();
    let r = on_blocking(&state, move |st, b| {
        let snap = st.stats.get(b)?;
        match form.action.as_str() {
            "enrol" => {
                let o = Uuid::parse_str(form.officer.unwrap_or_default().trim()).map_err(|_| {
                    ServerError::BadRequest("officer: expected an officer id".into())
                })?;
                check_officer(&u, &snap, o)?;
                let code =
                    b.issue_enrol_code(&u.actor(), o, crate::http::DEFAULT_CODE_TTL_MINUTES, now)?;
                Ok(format!("/admin/devices?done={}", code.code))
            }
            "revoke" => {
                let d = Uuid::parse_str(form.device.unwrap_or_default().trim())
                    .map_err(|_| ServerError::BadRequest("device: expected a device id".into()))?;
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

/// `GET /admin/roster`: upload form with a progress bar (a few lines of script: send the
/// file, poll the job).
pub async fn roster_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    let (lang, cookie) = lang_of(&headers, q.lang.as_deref());
    let user = match admin_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return page_error(e, lang, None, state.demo),
    };
    let snap = match on_blocking(&state, |st, b| st.stats.get(b)).await {
        Ok(s) => s,
        Err(e) => return page_error(e, lang, Some(&user), state.demo),
    };
    let b = format!(
        "<h1>{}</h1><form class=\"f\" id=\"rf\"><label>{}{}</label><label>{}<input type=\"file\" id=\"file\" accept=\".csv,text/csv\" required></label>\
         <button id=\"upload\">{}</button></form><p><progress id=\"bar\" max=\"100\" value=\"0\"></progress> <span id=\"pct\"></span></p><div id=\"out\"></div>\
         <script>document.getElementById('rf').onsubmit=async function(e){{e.preventDefault();\
         var f=document.getElementById('file').files[0];if(!f)return;var c=document.getElementById('campaign').value;\
         var r=await fetch('/admin/roster?campaign='+encodeURIComponent(c),{{method:'POST',body:f,headers:{{'content-type':'text/csv'}}}});\
         var j=await r.json();if(!r.ok){{document.getElementById('out').textContent=j.message;return;}}\
         var t=setInterval(async function(){{var s=await (await fetch('/admin/roster/jobs/'+j.job)).json();\
         var p=s.total_bytes?Math.floor(s.bytes_read*100/s.total_bytes):0;document.getElementById('bar').value=p;\
         document.getElementById('pct').textContent=p+'% ('+s.rows_read+')';\
         if(s.done){{clearInterval(t);var o=document.getElementById('out');o.textContent='';var pre=document.createElement('pre');\
         pre.textContent=s.error?s.error:(s.report.rows+' rows, '+s.report.accepted+' accepted, '+s.report.rejected.length+' rejected\\n'+\
         s.report.rejected.map(function(x){{return 'line '+x[0]+': '+x[1];}}).join('\\n'));o.appendChild(pre);}}}},500);}};</script>",
        lang.t("Nhập danh sách cư dân", "Import a roster"),
        lang.t("Chiến dịch", "Campaign"),
        campaign_select(&snap),
        lang.t("Tệp CSV", "CSV file"),
        lang.t("Tải lên", "Upload"),
    );
    page(
        StatusCode::OK,
        layout(lang, Some(&user), state.demo, "Roster", "/admin/roster", &b),
        cookie,
    )
}

#[derive(Deserialize)]
pub struct RosterQuery {
    campaign: String,
}

/// `POST /admin/roster?campaign=ID` with the CSV as the body: starts the import, answers
/// `{"job": id}` at once.
pub async fn roster_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RosterQuery>,
    body: Body,
) -> Result<Response> {
    let user = admin_user(&state, &headers).await?;
    if !matches!(user.role.as_str(), "admin" | "province") {
        return Err(ServerError::Forbidden(
            "roster import needs an admin or province command",
        ));
    }
    let campaign = Uuid::parse_str(q.campaign.trim())
        .map_err(|_| ServerError::BadRequest("campaign: expected a campaign id".into()))?;
    let bytes = body_bytes(&state, body).await?;
    let id = Uuid::now_v7();
    if let Ok(mut jobs) = state.jobs.jobs.lock() {
        jobs.insert(
            id,
            Job {
                total_bytes: bytes.len() as u64,
                owner: user.user_id,
                ..Job::default()
            },
        );
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let jobs = st.jobs.clone();
        let r = st.backend.import_roster(
            &user.actor(),
            campaign,
            &bytes,
            &mut |p| {
                jobs.update(id, |j| {
                    j.bytes_read = p.bytes_read;
                    j.rows_read = p.rows_read as u64;
                })
            },
            crate::now_ms(),
        );
        st.jobs.update(id, |j| {
            j.done = true;
            j.bytes_read = j.total_bytes;
            match r {
                Ok(rep) => {
                    j.rows_read = rep.rows as u64;
                    j.report = Some(JobReport::from(&rep));
                }
                Err(e) => j.error = Some(e.body().message),
            }
        });
    });
    let mut resp = crate::web::json(&serde_json::json!({ "job": id }))?;
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

/// `GET /admin/roster/jobs/{id}`: the import's progress, then its report.
pub async fn roster_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let user = admin_user(&state, &headers).await?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ServerError::BadRequest("job: expected a job id".into()))?;
    let job = state.jobs.get(id).ok_or(ServerError::NotFound("job"))?;
    if job.owner != user.user_id && user.role != "admin" {
        return Err(ServerError::Forbidden("that import is another user's"));
    }
    crate::web::json(&job)
}
