//! Who is calling the command centre, and what they may see.
//!
//! A command user signed in with a password (session cookie) or an admin's bearer token;
//! each sees only the units under their own ([`check_unit`], [`check_officer`]). In demo mode
//! (`doorstep serve --demo`) an unsigned caller is province command ([`demo_user`]).

use crate::app::AppState;
use crate::auth;
use crate::backend::CommandUser;
use crate::error::{Result, ServerError};
use crate::now_ms;
use crate::stats::Snapshot;
use axum::http::{header, HeaderMap};
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "doorstep_session";

/// The bearer token of `Authorization`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .map(str::to_owned)
}

/// The session token of the session cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(Some(c), SESSION_COOKIE))
        .map(str::to_owned)
}

/// The caller: a web session, an admin's bearer token, or (demo mode) province command.
/// `None` if unsigned.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<CommandUser>> {
    let now = now_ms();
    if let Some(token) = bearer_token(headers) {
        let user = state
            .blocking(move |s| s.backend.command_user_by_token(&token))
            .await?;
        return match user {
            Some(u) if u.role == "admin" => Ok(Some(u)),
            Some(_) => Err(ServerError::Forbidden(
                "command routes take an admin's token or a signed-in session",
            )),
            None => Err(ServerError::Unauthorized("unknown token")),
        };
    }
    if let Some(token) = session_token(headers) {
        if let Some(u) = state
            .blocking(move |s| s.backend.session_user(&token, now))
            .await?
        {
            return Ok(Some(u));
        }
    }
    if state.demo {
        return Ok(Some(demo_user()));
    }
    Ok(None)
}

/// The user demo mode signs everybody in as.
pub fn demo_user() -> CommandUser {
    CommandUser {
        user_id: Uuid::nil(),
        name: "demo".into(),
        role: "province".into(),
        unit_code: None,
    }
}

/// The caller, or 401.
pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    caller(state, headers)
        .await?
        .ok_or(ServerError::Unauthorized("sign in first"))
}

/// The caller if they may use the admin pages (an admin or a command user), else 401/403.
pub async fn require_admin_pages(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    let u = require(state, headers).await?;
    match u.role.as_str() {
        "admin" | "province" | "district" | "commune_lead" => Ok(u),
        _ => Err(ServerError::Forbidden("admin pages need a command user")),
    }
}

/// The caller if they may change anything through the admin pages: as
/// [`require_admin_pages`], but demo mode's anonymous province command only looks (a demo is
/// open to anyone; its data stays as built).
pub async fn require_admin_writes(state: &AppState, headers: &HeaderMap) -> Result<CommandUser> {
    let u = require_admin_pages(state, headers).await?;
    if state.demo && u.user_id.is_nil() {
        return Err(ServerError::Forbidden(
            "demo mode is read-only: sign in as a command user to change anything",
        ));
    }
    Ok(u)
}

/// 403 unless `unit` is the user's unit or under it.
pub fn check_unit(user: &CommandUser, snap: &Snapshot, unit: &str) -> Result<()> {
    match &user.unit_code {
        None => Ok(()),
        Some(mine) if snap.is_under(unit, mine) => Ok(()),
        Some(_) => Err(ServerError::Forbidden("that unit is outside your scope")),
    }
}

/// 403 unless the officer belongs to, or works in, the user's unit.
pub fn check_officer(user: &CommandUser, snap: &Snapshot, officer: Uuid) -> Result<()> {
    match &user.unit_code {
        None => Ok(()),
        Some(mine) if snap.officer_in(officer, mine) => Ok(()),
        Some(_) => Err(ServerError::Forbidden("that officer is outside your scope")),
    }
}
