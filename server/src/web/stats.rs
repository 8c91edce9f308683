//! The statistics' check and repair (ADR 0009), for an admin's bearer token:
//! `GET /v1/admin/stats/check` brings the numbers kept incrementally up to date, rebuilds them
//! from the whole store in the same read transaction and says whether they are equal (the
//! first difference named by unit code or officer id, no personal data);
//! `POST /v1/admin/stats/rebuild` replaces them with a rebuild. Both audited.

use crate::app::AppState;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::now_ms;
use crate::web::caller::caller;
use crate::web::respond::json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

/// What the check found.
#[derive(Debug, Clone, Serialize)]
pub struct StatsCheckBody {
    /// Whether the numbers kept incrementally equal a rebuild's.
    pub equal: bool,
    /// The first difference, if any.
    pub difference: Option<String>,
    /// How long bringing the kept numbers up to date took, ms.
    pub update_ms: f64,
    /// How long the rebuild took, ms.
    pub rebuild_ms: f64,
    /// The kept numbers could not follow (a unit change…): the rebuild replaced them.
    pub rebuilt: bool,
}

/// What the repair did.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRebuildBody {
    /// How long the rebuild took, ms.
    pub rebuild_ms: f64,
}

async fn admin(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    match caller(state, headers).await? {
        Some(u) if u.role == "admin" && !u.user_id.is_nil() => Ok(u),
        Some(_) => Err(ServerError::Forbidden(
            "admin routes need an admin user's token",
        )),
        None => Err(ServerError::Unauthorized("an admin user's token is needed")),
    }
}

/// Compare the statistics kept incrementally with a rebuild from the whole store.
#[utoipa::path(get, path = "/v1/admin/stats/check", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`{equal, difference, update_ms, rebuild_ms, rebuilt}`: whether the kept numbers equal a rebuild's, the first difference (unit codes, officer ids, sums), and the times", content(("application/json"))),
        (status = 400, response = super::openapi::BadRequest),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn check(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let user = admin(&state, &headers).await?;
    let c = state
        .blocking(move |s| {
            let c = s.stats.check(&s.backend)?;
            let detail = format!("equal={}", c.equal);
            s.backend.audit_access(
                &user.actor(),
                "stats_check",
                "statistics",
                &detail,
                now_ms(),
            )?;
            Ok(c)
        })
        .await?;
    json(&StatsCheckBody {
        equal: c.equal,
        difference: c.difference,
        update_ms: c.update_ms,
        rebuild_ms: c.rebuild_ms,
        rebuilt: c.rebuilt,
    })
}

/// Replace the statistics with a rebuild from the whole store (repair).
#[utoipa::path(post, path = "/v1/admin/stats/rebuild", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`{rebuild_ms}`: rebuilt from the whole store", content(("application/json"))),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn rebuild(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let user = admin(&state, &headers).await?;
    let ms = state
        .blocking(move |s| {
            let snap = s.stats.rebuild(&s.backend)?;
            s.backend
                .audit_access(&user.actor(), "stats_rebuild", "statistics", "", now_ms())?;
            Ok(snap.build_ms)
        })
        .await?;
    json(&StatsRebuildBody { rebuild_ms: ms })
}
