//! The dashboard pages: a unit's (`/dash`) and an officer's (`/dash/officer/{id}`), the
//! same reports as the JSON API rendered by [`crate::html::dashboard`].

use crate::app::AppState;
use crate::html;
use crate::web::caller::require;
use crate::web::reports::{officer_report, parse_uuid, unit_report, ReportQuery};
use crate::web::respond::user_page;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

/// `GET /dash`: a unit's page.
#[utoipa::path(get, path = "/dash", tag = "command centre",
    params(ReportQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "An HTML page", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn unit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    let lang = q.lang.clone();
    user_page(
        &state,
        &headers,
        lang.as_deref(),
        require(&state, &headers).await,
        move |s, u| unit_report(s, u, &q, "page"),
        |lang, user, demo, (snap, report)| {
            html::dashboard::unit_page(lang, user, demo, &snap, &report)
        },
    )
    .await
}

/// `GET /dash/officer/{id}`: an officer's page.
#[utoipa::path(get, path = "/dash/officer/{id}", tag = "command centre",
    params(("id" = String, Path, description = "The officer's id (UUID)"), ReportQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "An HTML page", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn officer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let lang = q.lang.clone();
    user_page(
        &state,
        &headers,
        lang.as_deref(),
        require(&state, &headers).await,
        move |s, u| officer_report(s, u, parse_uuid(&id, "officer")?, &q, "page"),
        |lang, user, demo, (snap, report)| {
            html::dashboard::officer_page(lang, user, demo, &snap, &report)
        },
    )
    .await
}
