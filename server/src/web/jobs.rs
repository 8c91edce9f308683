//! Roster imports started from the admin page: `POST /admin/roster?campaign=ID` starts one on
//! a blocking thread and answers its id at once; `GET /admin/roster/jobs/{id}` reports its
//! progress, then its report. The jobs live in [`AppState::jobs`].

use crate::app::{AppState, Job, JobReport};
use crate::error::{Result, ServerError};
use crate::now_ms;
use crate::web::body::JsonQuery;
use crate::web::caller::{require_admin_pages, require_admin_writes};
use crate::web::respond::json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use uuid::Uuid;

/// Query of the roster upload.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RosterQuery {
    /// The campaign's id.
    campaign: String,
}

/// Read a request body up to the server's limit.
pub(crate) async fn body_bytes(state: &AppState, body: Body) -> Result<Bytes> {
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

/// `POST /admin/roster?campaign=ID` with the CSV as the body: starts the import, answers
/// `{"job": id}` at once.
#[utoipa::path(post, path = "/admin/roster", tag = "command centre",
    params(RosterQuery),
    request_body(description = "The roster CSV (docs/roster-format.md)", content(("text/csv"))),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 202, description = "The import started: `{\"job\": <id>}`", content(("application/json"))),
        (status = 400, response = crate::web::openapi::BadRequest),
        (status = 401, response = crate::web::openapi::Unauthorized),
        (status = 403, response = crate::web::openapi::Forbidden),
        (status = 413, response = crate::web::openapi::TooLarge),
    )
)]
pub async fn roster_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonQuery(q): JsonQuery<RosterQuery>,
    body: Body,
) -> Result<Response> {
    let user = require_admin_writes(&state, &headers).await?;
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
    // Not awaited: the job runs on after the answer.
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
            now_ms(),
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
    let mut resp = json(&serde_json::json!({ "job": id }))?;
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

/// `GET /admin/roster/jobs/{id}`: the import's progress, then its report.
#[utoipa::path(get, path = "/admin/roster/jobs/{id}", tag = "command centre",
    params(("id" = String, Path, description = "The job's id (UUID)")),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The import's progress (`total_bytes`, `bytes_read`, `rows_read`, `done`), then its `report` or `error`", content(("application/json"))),
        (status = 400, response = crate::web::openapi::BadRequest),
        (status = 401, response = crate::web::openapi::Unauthorized),
        (status = 403, response = crate::web::openapi::Forbidden),
        (status = 404, response = crate::web::openapi::NotFound),
    )
)]
pub async fn roster_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let user = require_admin_pages(&state, &headers).await?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ServerError::BadRequest("job: expected a job id".into()))?;
    let job = state.jobs.get(id).ok_or(ServerError::NotFound("job"))?;
    if job.owner != user.user_id && user.role != "admin" {
        return Err(ServerError::Forbidden("that import is another user's"));
    }
    json(&job)
}
