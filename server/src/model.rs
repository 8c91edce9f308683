//! The server's records as the behaviour and the storage exchange them: devices, command
//! users, enrolments and codes, audit entries, the gauges of `/metrics`. Plain data with no
//! logic beyond naming an actor, in a module below both `backend` (which decides) and
//! `storage` (which keeps), so neither imports the other's internals; `crate::backend`
//! re-exports them under their usual paths.

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

/// A user of the command centre (dashboard, reports, admin pages, the admin API): a command
/// user signed in with a password (`commune_lead`, `district`, `province`, scoped to
/// `unit_code`), or an admin (every unit) holding a bearer token.
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
        user_actor(self.user_id)
    }
}

/// How a user is named in the audit log.
pub fn user_actor(user_id: Uuid) -> String {
    format!("user:{user_id}")
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
    /// The device's Ed25519 public key (32 bytes), if it sent one.
    pub public_key: Option<Vec<u8>>,
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
    /// The server's public key.
    pub server_key: Vec<u8>,
    /// The server's certificate of the device's key, if it sent one.
    pub certificate: Option<doorstep_core::DeviceCertificate>,
}

/// The device that made a replica's operations, as a relayed segment is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The device's id.
    pub device_id: Uuid,
    /// Its officer.
    pub officer_id: Uuid,
    /// Its public key (`None`: it registered none).
    pub public_key: Option<Vec<u8>>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// The highest counter of its replica the server has processed.
    pub acked_counter: u64,
}

/// An issued enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IssuedCode {
    /// The code (shown once, stored hashed).
    pub code: String,
    /// When it stops working, Unix ms.
    pub expires_ms: i64,
}

/// A device as admins see it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who: `cli`, `user:<id>`, `device:<id>`.
    pub actor: String,
    /// What: `bootstrap`, `officer_add`, `assign`, `units_import`, `enrol_code`, `enrol`,
    /// `enrol_retry` (a lost answer's retry: a new token), `revoke`, `ops_import`.
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
