//! The sync endpoints (`docs/sync-protocol.md`): enrolment, push, pull, the admin bearer-token
//! routes (`/v1/admin/…`), `/health` and `/metrics`; their body codecs and token checks.
//!
//! Handlers are thin: decode the body in the request's format (JSON or postcard), check the
//! protocol version, authenticate, then hand the work to the
//! [`Backend`](crate::backend::Backend) on a blocking thread (SQLite calls block). Bodies are
//! read through a byte limit *after* request decompression, so a small gzip bomb is refused
//! like a large body. Every error answer is the JSON
//! [`ErrorBody`](doorstep_core::wire::ErrorBody).

use crate::app::AppState;
use crate::backend::{CommandUser, DeviceAuth, Enrolment};
use crate::error::{Result, ServerError};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::web::body::JsonQuery;
use crate::web::caller::bearer_token;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_core::sign::WipeOrder;
use doorstep_core::wire::{
    EnrolRequest, EnrolResponse, PullRequest, PullResponse, PushPullRequest, PushPullResponse,
    PushRequest, PushResponse, POSTCARD_MEDIA_TYPE,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::limits::{DEFAULT_CODE_TTL_MINUTES, DEFAULT_MAX_BODY_BYTES, MAX_PUSH_OPS};

/// The body's format, from `Content-Type` (JSON if absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Postcard,
}

fn format_of(headers: &HeaderMap) -> Result<Format> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    let ct = ct.to_str().unwrap_or_default();
    let media = ct.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(Format::Json)
    } else if media.eq_ignore_ascii_case(POSTCARD_MEDIA_TYPE) {
        Ok(Format::Postcard)
    } else {
        Err(ServerError::BadRequest(format!(
            "content type: expected application/json or {POSTCARD_MEDIA_TYPE}"
        )))
    }
}

/// Read the (already decompressed) body, refusing more than `limit` bytes.
async fn read_body(state: &AppState, body: Body) -> Result<Bytes> {
    let limit = state.max_body_bytes;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            Metrics::add(&state.metrics.bytes_in, bytes.len() as u64);
            Ok(bytes)
        }
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ServerError::TooLarge(
            format!("request body over the limit of {limit} bytes (after decompression)"),
        )),
        Err(_) => Err(ServerError::BadRequest(
            "request body could not be read or decompressed".into(),
        )),
    }
}

/// Decode a protocol message; errors name the field, never the value ([`super::body`]).
fn decode<T: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<T> {
    match format {
        Format::Json => super::body::json(bytes),
        Format::Postcard => super::body::postcard(bytes),
    }
}

/// A request's body: its format, read through the limit, decoded.
async fn request<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Format, T)> {
    let format = format_of(headers)?;
    let bytes = read_body(state, body).await?;
    Ok((format, decode(format, &bytes)?))
}

/// Answer in the request's format.
fn respond<T: Serialize>(state: &AppState, format: Format, value: &T) -> Result<Response> {
    let (bytes, ct) = match format {
        Format::Json => (
            serde_json::to_vec(value).map_err(|e| ServerError::Internal(e.to_string()))?,
            "application/json",
        ),
        Format::Postcard => (
            postcard::to_allocvec(value).map_err(|e| ServerError::Internal(e.to_string()))?,
            POSTCARD_MEDIA_TYPE,
        ),
    };
    Metrics::add(&state.metrics.bytes_out, bytes.len() as u64);
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

fn token(headers: &HeaderMap) -> Result<String> {
    bearer_token(headers).ok_or(ServerError::Unauthorized("missing bearer token"))
}

async fn device(state: &AppState, headers: &HeaderMap) -> Result<DeviceAuth> {
    match device_or_revoked(state, headers).await? {
        (dev, None) => Ok(dev),
        (_, Some(order)) => Err(ServerError::Revoked(Box::new(order))),
    }
}

/// The device holding the bearer token, and for a revoked one its signed wipe order.
async fn device_or_revoked(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(DeviceAuth, Option<doorstep_core::sign::WipeOrder>)> {
    let token = token(headers)?;
    state
        .blocking(move |s| {
            if let Some(d) = s.backend.authenticate_device(&token)? {
                return Ok((d, None));
            }
            match s.backend.revoked_device(&token)? {
                Some((d, order)) => Ok((d, Some(order))),
                None => Err(ServerError::Unauthorized("unknown device token")),
            }
        })
        .await
}

async fn admin(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    let token = token(headers)?;
    let (user, device) = state
        .blocking(move |s| {
            Ok((
                s.backend.authenticate_user(&token)?,
                s.backend.authenticate_device(&token)?,
            ))
        })
        .await?;
    match (user, device) {
        (Some(u), _) if u.role == "admin" => Ok(u),
        (Some(_), _) | (None, Some(_)) => Err(ServerError::Forbidden(
            "admin routes need an admin user's token",
        )),
        (None, None) => Err(ServerError::Unauthorized("unknown token")),
    }
}

/// Whether the server and its database answer.
#[utoipa::path(get, path = "/health", tag = "ops",
    responses(
        (status = 200, description = "`ok`", content(("text/plain"))),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub(super) async fn health(State(state): State<AppState>) -> Result<&'static str> {
    state
        .blocking(|s| s.backend.health())
        .await
        .map_err(|_| ServerError::Unavailable("database not answering".into()))?;
    Ok("ok")
}

/// Prometheus metrics: requests by route and status, operations applied/duplicate/rejected/
/// pulled, body bytes, devices, quarantined operations, feed rows, clock offset per device id.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", content(("text/plain; version=0.0.4"))),
        (status = 500, response = super::openapi::Internal),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let gauges = state.blocking(|s| s.backend.gauges()).await?;
    let text = state.metrics.render(&gauges);
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(resp)
}

/// Exchange a one-time enrolment code for a device token (no token needed).
///
/// The same replica retrying the same code after a lost answer gets its device back with a
/// fresh token until the token is first used. The replica is bound to the device: one another
/// device (not revoked) or the server holds is refused 403.
#[utoipa::path(post, path = "/v1/enrol", tag = "sync",
    params(("Content-Encoding" = Option<String>, Header, description = "`gzip` or `zstd` if the body is compressed (answered 415 otherwise)"),
        ("Accept-Encoding" = Option<String>, Header, description = "`zstd, gzip` for a compressed answer")),
    request_body(description = "`EnrolRequest`", content((ref("#/components/schemas/EnrolRequest") = "application/json"), (ref("#/components/schemas/EnrolRequest") = "application/x-doorstep-postcard"))),
    responses(
        (status = 200, description = "`EnrolResponse`, in the request's format", content((ref("#/components/schemas/EnrolResponse") = "application/json"), (ref("#/components/schemas/EnrolResponse") = "application/x-doorstep-postcard"))),
        super::openapi::SyncErrors,
    )
)]
pub(super) async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let (format, req): (Format, EnrolRequest) = request(&state, &headers, body).await?;
    let now = now_ms();
    let done = state
        .blocking(move |s| {
            s.backend.enrol(
                Enrolment {
                    code: req.code,
                    device_name: req.device_name,
                    replica: req.replica,
                    device_time_ms: req.device_time_ms,
                    public_key: req.public_key,
                },
                now,
            )
        })
        .await?;
    tracing::info!(device = %done.device_id, officer = %done.officer_id, "device enrolled");
    respond(
        &state,
        format,
        &EnrolResponse {
            device_id: done.device_id,
            token: done.token,
            officer_id: done.officer_id,
            server_replica: done.server_replica,
            server_time_ms: now,
            server_key: done.server_key,
            certificate: done.certificate,
            lease_until_ms: now.saturating_add(state.lease_ms),
        },
    )
}

/// Send the device's operations the server lacks (at most 1,000), in counter order.
///
/// Applied in one transaction with the device's acknowledged counter; a retried batch is a
/// no-op (duplicates). Refused operations are listed in `rejected` and the rest is applied.
#[utoipa::path(post, path = "/v1/sync/push", tag = "sync",
    params(("Content-Encoding" = Option<String>, Header, description = "`gzip` or `zstd` if the body is compressed (answered 415 otherwise)"),
        ("Accept-Encoding" = Option<String>, Header, description = "`zstd, gzip` for a compressed answer")),
    request_body(description = "`PushRequest`", content((ref("#/components/schemas/PushRequest") = "application/json"), (ref("#/components/schemas/PushRequest") = "application/x-doorstep-postcard"))),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "`PushResponse`, in the request's format", content((ref("#/components/schemas/PushResponse") = "application/json"), (ref("#/components/schemas/PushResponse") = "application/x-doorstep-postcard"))),
        super::openapi::SyncErrors,
    )
)]
pub(super) async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    // A revoked device may still push once more before it wipes: its own operations stamped
    // before the revocation (docs/sync-protocol.md, "Lease and wipe").
    let (dev, revoked) = device_or_revoked(&state, &headers).await?;
    let (format, req): (Format, PushRequest) = request(&state, &headers, body).await?;
    let resp = push_ops(&state, dev, revoked, req).await?;
    respond(&state, format, &resp)
}

/// A push and the pull after it, in one request: the last push of a sync carries the pull
/// that ends it (one round trip fewer on a 2G link).
///
/// A revoked device is answered `401` with its wipe order before anything is applied (it
/// pushes alone, then wipes). Otherwise the push is applied as `POST /v1/sync/push` would,
/// the device is checked again (revoked meanwhile: the answer has the push's result, no page
/// and the wipe order) and the pull is answered as `POST /v1/sync/pull` would.
#[utoipa::path(post, path = "/v1/sync/push-pull", tag = "sync",
    params(("Content-Encoding" = Option<String>, Header, description = "`gzip` or `zstd` if the body is compressed (answered 415 otherwise)"),
        ("Accept-Encoding" = Option<String>, Header, description = "`zstd, gzip` for a compressed answer")),
    request_body(description = "`PushPullRequest`", content((ref("#/components/schemas/PushPullRequest") = "application/json"), (ref("#/components/schemas/PushPullRequest") = "application/x-doorstep-postcard"))),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "`PushPullResponse`, in the request's format", content((ref("#/components/schemas/PushPullResponse") = "application/json"), (ref("#/components/schemas/PushPullResponse") = "application/x-doorstep-postcard"))),
        super::openapi::SyncErrors,
    )
)]
pub(super) async fn push_pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    // A revoked device gets its wipe order before anything is applied: it pushes what it still
    // may with `POST /v1/sync/push` (whose answer it reports), then wipes.
    let dev = device(&state, &headers).await?;
    let (format, req): (Format, PushPullRequest) = request(&state, &headers, body).await?;
    let push = push_ops(&state, dev, None, req.push).await?;
    // Revoked while the push was applied: no page, the wipe order instead (the push's answer
    // still says what was taken).
    let (pull, wipe) = match device_or_revoked(&state, &headers).await? {
        (dev, None) => (Some(pull_ops(&state, dev, req.pull).await?), None),
        (_, Some(order)) => (None, Some(order)),
    };
    respond(&state, format, &PushPullResponse { push, pull, wipe })
}

/// Apply a push of `dev` (`revoked`: its wipe order, if it was revoked).
async fn push_ops(
    state: &AppState,
    dev: DeviceAuth,
    revoked: Option<WipeOrder>,
    mut req: PushRequest,
) -> Result<PushResponse> {
    let mut late = Vec::new();
    if let Some(order) = &revoked {
        req.segments.clear();
        let (kept, after): (Vec<_>, Vec<_>) = req.ops.into_iter().partition(|o| {
            o.replica.0 == dev.replica && (o.hlc.physical_ms() as i64) < order.revoked_at_ms
        });
        req.ops = kept;
        late = after;
    }
    if req.ops.len() > MAX_PUSH_OPS {
        return Err(ServerError::TooLarge(format!(
            "{} operations in one push; at most {MAX_PUSH_OPS}",
            req.ops.len()
        )));
    }
    let now = now_ms();
    let device_id = dev.device_id;
    let late_max = late
        .iter()
        .filter(|o| o.replica.0 == dev.replica)
        .map(|o| o.counter)
        .max();
    let mut resp = state
        .blocking(move |s| {
            let mut resp =
                s.backend
                    .push_with(&dev, req.ops, &req.segments, req.device_time_ms, now)?;
            if let Some(n) = late_max {
                // Refused, but processed: the device need not send them again.
                resp.acked_counter = s.backend.raise_ack(dev.device_id, n)?;
            }
            if revoked.is_some() {
                // An admin sees what a revoked device still delivered.
                s.backend.audit_access(
                    &format!("device:{}", dev.device_id),
                    "revoked_push",
                    &dev.device_id.to_string(),
                    &format!(
                        "applied={} duplicates={} refused={}",
                        resp.applied,
                        resp.duplicates,
                        resp.rejected.len()
                    ),
                    now,
                )?;
            }
            Ok(resp)
        })
        .await?;
    resp.rejected
        .extend(late.iter().map(|o| doorstep_core::wire::Rejected {
            replica: o.replica.0,
            counter: o.counter,
            reason: "revoked".to_owned(),
        }));
    let m = &state.metrics;
    Metrics::add(&m.ops_applied, resp.applied);
    Metrics::add(&m.ops_duplicate, resp.duplicates);
    Metrics::add(&m.ops_rejected, resp.rejected.len() as u64);
    tracing::info!(
        device = %device_id,
        applied = resp.applied,
        duplicates = resp.duplicates,
        rejected = resp.rejected.len(),
        acked = resp.acked_counter,
        "push"
    );
    Ok(resp)
}

/// A page of operations in the device's scope after its cursor (never its own).
///
/// Apply the page and store its `cursor` in one transaction; ask again while `has_more`.
#[utoipa::path(post, path = "/v1/sync/pull", tag = "sync",
    params(("Content-Encoding" = Option<String>, Header, description = "`gzip` or `zstd` if the body is compressed (answered 415 otherwise)"),
        ("Accept-Encoding" = Option<String>, Header, description = "`zstd, gzip` for a compressed answer")),
    request_body(description = "`PullRequest`", content((ref("#/components/schemas/PullRequest") = "application/json"), (ref("#/components/schemas/PullRequest") = "application/x-doorstep-postcard"))),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "`PullResponse`, in the request's format", content((ref("#/components/schemas/PullResponse") = "application/json"), (ref("#/components/schemas/PullResponse") = "application/x-doorstep-postcard"))),
        super::openapi::SyncErrors,
    )
)]
pub(super) async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let dev = device(&state, &headers).await?;
    let (format, req): (Format, PullRequest) = request(&state, &headers, body).await?;
    let resp = pull_ops(&state, dev, req).await?;
    respond(&state, format, &resp)
}

/// Answer a pull of `dev`.
async fn pull_ops(state: &AppState, dev: DeviceAuth, req: PullRequest) -> Result<PullResponse> {
    let now = now_ms();
    let device_id = dev.device_id;
    let resp = state
        .blocking(move |s| {
            let ask = crate::backend::PullArgs {
                cursor: req.cursor.as_deref(),
                limit: req.limit,
                own: req.own,
                device_time_ms: req.device_time_ms,
                relaying: &req.relaying,
            };
            s.backend.pull_with(&dev, ask, now)
        })
        .await?;
    let mut resp = resp;
    resp.lease_until_ms = now.saturating_add(state.lease_ms);
    Metrics::add(&state.metrics.ops_pulled, resp.ops.len() as u64);
    tracing::info!(device = %device_id, ops = resp.ops.len(), has_more = resp.has_more, held = resp.held, "pull");
    Ok(resp)
}

/// `POST /v1/admin/enrol-codes` body.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolCodeRequest {
    /// The officer whose device will enrol with the code.
    pub officer_id: Uuid,
    /// Lifetime; 24 h if absent.
    #[serde(default)]
    pub ttl_minutes: Option<u32>,
}

/// Issue a one-time enrolment code for an officer's device (audited).
#[utoipa::path(post, path = "/v1/admin/enrol-codes", tag = "admin",
    request_body(description = "`EnrolCodeRequest`", content((ref("#/components/schemas/EnrolCodeRequest") = "application/json"), (ref("#/components/schemas/EnrolCodeRequest") = "application/x-doorstep-postcard"))),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`IssuedCode`, in the request's format", content((ref("#/components/schemas/IssuedCode") = "application/json"), (ref("#/components/schemas/IssuedCode") = "application/x-doorstep-postcard"))),
        (status = 400, response = super::openapi::BadRequest),
        (status = 404, response = super::openapi::NotFound),
        (status = 413, response = super::openapi::TooLarge),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn issue_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let user = admin(&state, &headers).await?;
    let (format, req): (Format, EnrolCodeRequest) = request(&state, &headers, body).await?;
    let now = now_ms();
    let issued = state
        .blocking(move |s| {
            s.backend.issue_enrol_code(
                &user.actor(),
                req.officer_id,
                req.ttl_minutes.unwrap_or(DEFAULT_CODE_TTL_MINUTES),
                now,
            )
        })
        .await?;
    respond(&state, format, &issued)
}

/// `POST /v1/admin/devices/{id}/revoke` answer.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RevokeResponse {
    /// The device.
    pub device_id: Uuid,
    /// `false` if it was already revoked.
    pub revoked: bool,
}

/// Revoke a device: its token answers 401 from now on (audited).
#[utoipa::path(post, path = "/v1/admin/devices/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "The device's id (UUID)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`RevokeResponse`", body = ref("#/components/schemas/RevokeResponse")),
        (status = 400, response = super::openapi::BadRequest),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let user = admin(&state, &headers).await?;
    let device_id = Uuid::parse_str(&id)
        .map_err(|_| ServerError::BadRequest("device id: expected a UUID".into()))?;
    let now = now_ms();
    let revoked = state
        .blocking(move |s| s.backend.revoke_device(&user.actor(), device_id, now))
        .await?;
    tracing::info!(device = %device_id, revoked, "device revoked");
    respond(&state, Format::Json, &RevokeResponse { device_id, revoked })
}

/// Every device, as admins see it (no secrets).
#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`[DeviceInfo]`", body = ref("#/components/schemas/DeviceList")),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn list_devices(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response> {
    admin(&state, &headers).await?;
    let devices = state.blocking(|s| s.backend.list_devices()).await?;
    respond(&state, Format::Json, &devices)
}

/// `GET /v1/admin/audit` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Newest entries first, at most this many (default 100).
    pub limit: Option<u32>,
}

/// The audit log, newest first (ids and counts, no personal data).
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin",
    params(AuditQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`[AuditEntry]`", body = ref("#/components/schemas/AuditLog")),
        (status = 400, response = super::openapi::BadRequest),
        super::openapi::AdminErrors,
    )
)]
pub(super) async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonQuery(q): JsonQuery<AuditQuery>,
) -> Result<Response> {
    admin(&state, &headers).await?;
    let limit = q.limit.unwrap_or(100);
    let entries = state.blocking(move |s| s.backend.audit(limit)).await?;
    respond(&state, Format::Json, &entries)
}
