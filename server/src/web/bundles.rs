//! File bundles brought to the command centre (#14): `GET /admin/bundles` is the upload form,
//! `POST /admin/bundles` opens a bundle sealed for this server (the body is the file's bytes)
//! and applies its signed runs as relayed pushes — the same path as `doorstep bundle import`
//! ([`crate::backend::Backend::import_bundle`]): each run's author is checked (key,
//! revocation, scope and authority), not the person uploading it, who is only its carrier.
//! Uploading the same bundle twice, or bundles out of order, applies nothing twice. Audited
//! `bundle_import` under the signed-in user, with counts only.

use crate::app::AppState;
use crate::error::{Result, ServerError};
use crate::html::admin as render;
use crate::now_ms;
use crate::web::admin::AdminQuery;
use crate::web::caller::{require_admin_pages, require_admin_writes};
use crate::web::respond::{json, user_page};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

/// What an upload did, as JSON.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BundleUpload {
    /// The device that made the bundle.
    pub sender: uuid::Uuid,
    /// Signed runs in it.
    pub runs: usize,
    /// Operations new to the server, applied.
    pub applied: usize,
    /// Operations the server already held.
    pub duplicates: usize,
    /// Operations refused: how many for each reason (`bad_signature`, `revoked`,
    /// `out_of_scope`, ...), most frequent first.
    pub rejected: Vec<(String, usize)>,
}

/// `GET /admin/bundles`: the upload form.
#[utoipa::path(get, path = "/admin/bundles", tag = "command centre",
    params(AdminQuery),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The bundle upload form", content(("text/html; charset=utf-8"))),
        crate::web::openapi::PageErrors,
    )
)]
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AdminQuery>,
) -> Response {
    user_page(
        &state,
        &headers,
        q.lang(),
        require_admin_pages(&state, &headers).await,
        |_, _| Ok(()),
        |lang, user, demo, ()| render::bundles(lang, user, demo),
    )
    .await
}

/// `POST /admin/bundles` with the bundle file as the body.
#[utoipa::path(post, path = "/admin/bundles", tag = "command centre",
    request_body(description = "A bundle file sealed for this server (`exportBundle` on a phone)", content(("application/octet-stream"))),
    security(("session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Opened and applied (audited `bundle_import`)", body = ref("#/components/schemas/BundleUpload")),
        (status = 400, response = crate::web::openapi::BadRequest),
        (status = 401, response = crate::web::openapi::Unauthorized),
        (status = 403, response = crate::web::openapi::Forbidden),
        (status = 413, response = crate::web::openapi::TooLarge),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let user = require_admin_writes(&state, &headers).await?;
    // Larger than the request limit: `doorstep bundle import FILE` on the server.
    let bytes = crate::web::jobs::body_bytes(&state, body).await?;
    if bytes.is_empty() {
        return Err(ServerError::BadRequest(
            "bundle: expected the file's bytes as the request body".into(),
        ));
    }
    let actor = user.actor();
    let r = state
        .blocking(move |s| s.backend.import_bundle(&actor, &bytes, now_ms()))
        .await?;
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for rej in &r.rejected {
        match reasons.iter_mut().find(|(k, _)| *k == rej.reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((rej.reason.clone(), 1)),
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    json(&BundleUpload {
        sender: r.sender,
        runs: r.runs,
        applied: r.applied,
        duplicates: r.duplicates,
        rejected: reasons,
    })
}
