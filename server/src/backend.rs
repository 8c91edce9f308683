//! The storage the HTTP layer and the CLI need, as a trait.
//!
//! Two implementations: embedded SQLite ([`crate::sqlite::SqliteBackend`], the default) and
//! PostgreSQL for province scale ([`crate::pg::PgBackend`], several instances on one
//! database; `docs/adr/0006-postgres-backend.md`). The methods are blocking
//! (the HTTP layer calls them on `spawn_blocking`) and each is one transaction: a push's
//! merge, its feed rows and the device's acknowledgement commit together or not at all.

use crate::error::Result;
use doorstep_core::roster::{ImportProgress, ImportReport};
use doorstep_core::wire::{PullResponse, PushResponse};
use doorstep_core::{AssignTarget, CampaignInput, QuotaInput, UnitInput};
use doorstep_core::{Op, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The actor written to the audit log for commands run on the server's console.
pub const CLI_ACTOR: &str = "cli";

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// The device's id.
    pub device_id: Uuid,
    /// Its officer.
    pub officer_id: Uuid,
    /// Its store's replica id.
    pub replica: Uuid,
}

/// An authenticated admin user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuth {
    /// The user's id.
    pub user_id: Uuid,
    /// `admin` (the only role so far).
    pub role: String,
}

impl UserAuth {
    /// How the user is named in the audit log.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// A user of the command centre (dashboard, reports, admin pages): a command user signed in
/// with a password (`commune_lead`, `district`, `province`, scoped to `unit_code`), or an
/// admin (every unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUser {
    /// The user's id.
    pub user_id: Uuid,
    /// Their sign-in name.
    pub name: String,
    /// `admin`, `commune_lead`, `district` or `province`.
    pub role: String,
    /// The unit they may see (everything under it); `None` for an admin: every unit.
    pub unit_code: Option<String>,
}

impl CommandUser {
    /// How the user is named in the audit log.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// The roles a command user may have, with the unit level each is scoped to.
pub const COMMAND_ROLES: &[(&str, &str)] = &[
    ("commune_lead", "commune"),
    ("district", "district"),
    ("province", "province"),
];

/// An enrolment to perform.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The code as typed.
    pub code: String,
    /// A label for the device.
    pub device_name: String,
    /// The device's replica id.
    pub replica: Uuid,
    /// The device's clock.
    pub device_time_ms: i64,
}

/// What an enrolment made.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The new device.
    pub device_id: Uuid,
    /// Its token (returned once, stored hashed).
    pub token: String,
    /// Its officer.
    pub officer_id: Uuid,
    /// The server's replica id.
    pub server_replica: Uuid,
}

/// An issued enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    /// The code (shown once, stored hashed).
    pub code: String,
    /// When it stops working, Unix ms.
    pub expires_ms: i64,
}

/// A device as admins see it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Its id.
    pub id: Uuid,
    /// Its officer.
    pub officer_id: Uuid,
    /// Its replica id.
    pub replica: Uuid,
    /// The label it gave.
    pub name: String,
    /// When it enrolled, Unix ms.
    pub enrolled_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// Highest counter of its replica the server has processed.
    pub acked_counter: u64,
    /// Last request, Unix ms.
    pub last_seen_ms: Option<i64>,
    /// `server_time - device_time` at its last request.
    pub clock_offset_ms: Option<i64>,
}

/// An audit entry (no personal data: ids and counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who: `cli`, `user:<id>`, `device:<id>`.
    pub actor: String,
    /// What: `bootstrap`, `officer_add`, `assign`, `units_import`, `enrol_code`, `enrol`,
    /// `revoke`, `ops_import`.
    pub action: String,
    /// On what (an id).
    pub target: String,
    /// Details (counts, durations).
    pub detail: String,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Devices enrolled and not revoked.
    pub devices_active: u64,
    /// Devices revoked.
    pub devices_revoked: u64,
    /// Operations in quarantine.
    pub quarantined: u64,
    /// Feed rows.
    pub feed_rows: u64,
    /// `(device id, clock offset ms)` of active devices that have synced.
    pub clock_offsets: Vec<(Uuid, i64)>,
    /// PostgreSQL: `(times taken, total nanoseconds waited)` for the feed lock by this process
    /// since it started (how much instances queue behind each other's pushes); `None` on
    /// SQLite, which has one writer by construction.
    pub feed_lock: Option<(u64, u64)>,
}

/// What the server stores and how.
pub trait Backend: Send + Sync {
    /// Whether the database answers.
    fn health(&self) -> Result<()>;
    /// The server's replica id.
    fn server_replica(&self) -> Uuid;

    /// Exchange a one-time code for a device token.
    fn enrol(&self, e: Enrolment, now_ms: i64) -> Result<Enrolled>;
    /// The device holding `token`, unless unknown or revoked.
    fn authenticate_device(&self, token: &str) -> Result<Option<DeviceAuth>>;
    /// The admin user holding `token`.
    fn authenticate_user(&self, token: &str) -> Result<Option<UserAuth>>;

    /// Apply a device's batch (checked against its scope), file feed rows and record its
    /// acknowledgement, in one transaction.
    fn push(
        &self,
        device: &DeviceAuth,
        ops: Vec<Op>,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PushResponse>;
    /// A page of the feed in the device's scope after `cursor`.
    fn pull(
        &self,
        device: &DeviceAuth,
        cursor: Option<&str>,
        limit: u32,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PullResponse>;

    /// Create the first admin user; `None` if one exists. Returns its id and token.
    fn bootstrap_admin(&self, name: &str, now_ms: i64) -> Result<Option<(Uuid, String)>>;
    /// Issue an enrolment code for an officer.
    fn issue_enrol_code(
        &self,
        actor: &str,
        officer_id: Uuid,
        ttl_minutes: u32,
        now_ms: i64,
    ) -> Result<IssuedCode>;
    /// Revoke a device; `false` if it was already revoked.
    fn revoke_device(&self, actor: &str, device_id: Uuid, now_ms: i64) -> Result<bool>;
    /// Every device.
    fn list_devices(&self) -> Result<Vec<DeviceInfo>>;
    /// The newest audit entries, newest first.
    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
    /// Counts for `/metrics`.
    fn gauges(&self) -> Result<Gauges>;

    /// Add an officer (reference data, made by the server's replica). Returns its id.
    fn add_officer(
        &self,
        actor: &str,
        name: &str,
        role: Role,
        unit_code: &str,
        now_ms: i64,
    ) -> Result<Uuid>;
    /// Assign a village to an officer. Returns the assignment id.
    fn assign_village(
        &self,
        actor: &str,
        officer_id: Uuid,
        village: &str,
        now_ms: i64,
    ) -> Result<Uuid>;
    /// Import units from CSV. Returns (rows, rejected rows).
    fn import_units(&self, actor: &str, csv: &[u8], now_ms: i64) -> Result<(u64, u64)>;
    /// Add or update one unit (a village under a commune, say).
    fn put_unit(&self, actor: &str, unit: UnitInput, now_ms: i64) -> Result<()>;
    /// Add or update a campaign. Returns its id.
    fn put_campaign(&self, actor: &str, campaign: CampaignInput, now_ms: i64) -> Result<Uuid>;
    /// Import a roster CSV for a campaign (`docs/roster-format.md`), with progress.
    fn import_roster(
        &self,
        actor: &str,
        campaign_id: Uuid,
        csv: &[u8],
        progress: &mut dyn FnMut(ImportProgress),
        now_ms: i64,
    ) -> Result<ImportReport>;
    /// Merge operations made elsewhere (a roster prepared at the commune station) without a
    /// scope check, filing them in the feed. Returns how many were new.
    fn import_ops(&self, actor: &str, ops: &[Op], now_ms: i64) -> Result<u64>;

    /// Run `f` on a connection to the core store's materialised tables (units, residents,
    /// account_state, assists…; `docs/store.md`), read-only and inside one read transaction so
    /// that every query sees the same state. The command centre's statistics
    /// ([`crate::stats`]) are computed this way, whatever the backend.
    fn read_view(&self, f: &mut dyn FnMut(&rusqlite::Connection) -> Result<()>) -> Result<()>;

    /// Add a command user (role from [`COMMAND_ROLES`], scoped to `unit_code`) with an argon2
    /// PHC password hash. Names are unique among users who sign in. Returns the id.
    fn add_command_user(
        &self,
        actor: &str,
        name: &str,
        role: &str,
        unit_code: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Uuid>;
    /// The user who signs in as `name`, with their password hash.
    fn command_user_by_name(&self, name: &str) -> Result<Option<(CommandUser, String)>>;
    /// The admin or command user holding an API bearer token (admins only have one).
    fn command_user_by_token(&self, token: &str) -> Result<Option<CommandUser>>;
    /// Open a web session for a user (the token is stored hashed); audited as `sign_in`.
    fn start_session(&self, user_id: Uuid, token: &str, expires_ms: i64, now_ms: i64)
        -> Result<()>;
    /// The user of an unexpired web session.
    fn session_user(&self, token: &str, now_ms: i64) -> Result<Option<CommandUser>>;
    /// End a web session (sign out).
    fn end_session(&self, token: &str) -> Result<()>;
    /// Set a quota (audited as `quota_set`).
    fn set_quota(&self, actor: &str, quota: QuotaInput, now_ms: i64) -> Result<Uuid>;
    /// Assign (`active`) or unassign a village or household (audited as `assign` / `unassign`).
    fn set_assignment(
        &self,
        actor: &str,
        officer_id: Uuid,
        target: AssignTarget,
        active: bool,
        now_ms: i64,
    ) -> Result<Uuid>;
}
