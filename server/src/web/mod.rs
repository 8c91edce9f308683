//! Everything the server answers over HTTP: the one [`router`] and the request handlers,
//! one file per concern. Handlers decode the request, check the caller, call the backend or
//! the statistics through [`AppState::blocking`], and hand data to [`crate::html`] (which
//! renders only) or to JSON.
//!
//! | routes | file |
//! | --- | --- |
//! | `/v1/enrol`, `/v1/sync/push`, `/v1/sync/pull`, `/v1/admin/…`, `/health`, `/metrics` (the sync protocol, bearer tokens) | [`sync`] |
//! | `/`, `/signin`, `/signout` | [`signin`] |
//! | `/dash`, `/dash/officer/{id}` (the dashboard pages) | [`dashboard`] |
//! | `/api/v1/report…` (JSON), `/reports/{file}` (XLSX/CSV/JSON files) | [`reports`] |
//! | `/v1/admin/stats/check`, `/v1/admin/stats/rebuild` (the statistics checked against a rebuild, repaired; ADR 0009) | [`stats`] |
//! | `/v1/openapi.json`, `/v1/schema.json` (the contract: OpenAPI document, wire types' JSON Schema, also in `docs/api/`) | [`openapi`] |
//! | `/admin`, `/admin/quotas`, `/admin/assign`, `/admin/devices`, `/admin/roster` (pages) | [`admin`] |
//! | `POST /admin/roster`, `/admin/roster/jobs/{id}` (roster imports and their progress) | [`jobs`] |
//!
//! Who the caller is and what they may see: [`caller`](mod@caller); how a page or a JSON
//! answer is sent: [`respond`]. Dependency order: [`crate::app`] ← these handlers →
//! [`crate::html`]; nothing below imports them.

pub mod admin;
pub mod body;
pub mod bundles;
pub mod caller;
pub mod dashboard;
pub mod jobs;
pub mod openapi;
pub mod reports;
pub mod respond;
pub mod signin;
pub mod stats;
pub mod sync;
pub mod tls;

pub use caller::{caller, check_officer, check_unit, demo_user, require};
pub use reports::{officer_report, unit_report, ReportQuery};
pub use respond::{json, lang_of, page, page_error};

use crate::app::AppState;
use crate::error::ServerError;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        // The sync protocol.
        .route("/health", get(sync::health))
        .route("/metrics", get(sync::metrics))
        .route("/v1/enrol", post(sync::enrol))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/pull", post(sync::pull))
        .route("/v1/sync/push-pull", post(sync::push_pull))
        .route("/v1/admin/enrol-codes", post(sync::issue_code))
        .route("/v1/admin/devices", get(sync::list_devices))
        .route("/v1/admin/devices/{id}/revoke", post(sync::revoke))
        .route("/v1/admin/audit", get(sync::audit))
        .route("/v1/admin/stats/check", get(stats::check))
        .route("/v1/admin/stats/rebuild", post(stats::rebuild))
        // The contract: docs/api/, generated (openapi.rs).
        .route("/v1/openapi.json", get(openapi::serve_openapi))
        .route("/v1/schema.json", get(openapi::serve_schema))
        // The command centre.
        .route("/", get(signin::home))
        .route("/signin", get(signin::signin_page).post(signin::signin))
        .route("/signout", post(signin::signout))
        .route("/dash", get(dashboard::unit))
        .route("/dash/officer/{id}", get(dashboard::officer))
        .route("/api/v1/report", get(reports::api_unit))
        .route("/api/v1/report/officer/{id}", get(reports::api_officer))
        .route("/reports/{file}", get(reports::file))
        .route("/admin", get(admin::index))
        .route("/admin/quotas", get(admin::quotas).post(admin::quotas_post))
        .route("/admin/assign", get(admin::assign).post(admin::assign_post))
        .route(
            "/admin/devices",
            get(admin::devices).post(admin::devices_post),
        )
        .route(
            "/admin/roster",
            get(admin::roster).post(jobs::roster_upload),
        )
        .route("/admin/roster/jobs/{id}", get(jobs::roster_job))
        .route("/admin/bundles", get(bundles::page).post(bundles::upload))
        .fallback(|| async { ServerError::NotFound("no such route") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(RequestDecompressionLayer::new().gzip(true).zstd(true))
        .layer(CompressionLayer::new().gzip(true).zstd(true))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            strict_transport,
        ))
        .with_state(state)
}

/// Over TLS, tell browsers to use nothing else for this host for a year (HSTS).
async fn strict_transport(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if state.tls {
        resp.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// Count every answer by route template and status (`/metrics`).
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let resp = next.run(req).await;
    state.metrics.request(&route, resp.status().as_u16());
    resp
}
