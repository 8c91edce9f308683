//! The dashboard pages: a unit's (`/dash`) and an officer's (`/dash/officer/{id}`), the
//! same reports as the JSON API rendered by [`crate::html::dashboard`].

use crate::app::AppState;
use crate::html;
use crate::web::caller::require;
use crate::web::reports::{officer_report, parse_uuid, unit_report, ReportQuery};
use crate::web::respond::{lang_of, page, page_error};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `GET /dash`: a unit's page.
pub async fn unit(
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
    match state.blocking(move |s| unit_report(s, &u, &q)).await {
        Ok((snap, report)) => page(
            StatusCode::OK,
            html::unit_page(lang, &user, demo, &snap, &report),
            cookie,
        ),
        Err(e) => page_error(e, lang, Some(&user), demo),
    }
}

/// `GET /dash/officer/{id}`: an officer's page.
pub async fn officer(
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
    match state.blocking(move |s| officer_report(s, &u, id, &q)).await {
        Ok((snap, report)) => page(
            StatusCode::OK,
            html::officer_page(lang, &user, demo, &snap, &report),
            cookie,
        ),
        Err(e) => page_error(e, lang, Some(&user), demo),
    }
}
