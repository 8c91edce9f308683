//! Devices, enrolment codes, users and sessions: who may talk to the server, and the admin's
//! views of them. Every limit and check lives here, once; the backends only store the rows
//! (`crate::storage::Tables`), and what must be read from the replicated data (officers,
//! units, a replica's progress) is read from the core store's tables, the same on both.

use super::{
    user_actor, AuditEntry, Backend, CommandUser, DeviceAuth, DeviceInfo, Enrolled, Enrolment,
    IssuedCode, CLI_ACTOR,
};
use crate::auth;
use crate::backend::console;
use crate::error::{Result, ServerError};
use crate::storage::{uuid_col, NewDevice, NewUser, Storage};
use doorstep_core::wire::EnrolRefusal;
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use crate::limits::{MAX_AUDIT, MAX_DEVICE_NAME, MAX_TTL_MINUTES, MAX_USER_NAME};

/// Where a re-enrolling phone's acknowledgement starts: what the server holds of its replica.
fn replica_contiguous(conn: &Connection, replica: Uuid) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT contiguous FROM replicas WHERE replica = ?1",
            [replica.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Whether an officer exists (and is not deleted).
fn officer_known(conn: &Connection, officer_id: Uuid) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM officers WHERE id = ?1 AND deleted = 0)",
        [officer_id.to_string()],
        |r| r.get(0),
    )?)
}

/// A unit's level: `None` if there is no such unit.
fn unit_level(conn: &Connection, code: &str) -> Result<Option<Option<String>>> {
    Ok(conn
        .query_row("SELECT level FROM units WHERE code = ?1", [code], |r| {
            r.get(0)
        })
        .optional()?)
}

/// The device a used code's retry gets back, or why not. Only the replica that used the code,
/// within the code's lifetime, to a device not revoked whose token was never used (its last
/// request is still its enrolment): a phone that got its answer and synced cannot be taken
/// over by someone who later learns the code and its replica id.
fn retry_device(
    device: Option<DeviceInfo>,
    replica: Uuid,
    expires_ms: i64,
    now_ms: i64,
) -> std::result::Result<DeviceInfo, EnrolRefusal> {
    let d = device.ok_or(EnrolRefusal::Used)?;
    let never_used = d.last_seen_ms == Some(d.enrolled_at_ms);
    if d.replica != replica || d.revoked_at_ms.is_some() || !never_used {
        Err(EnrolRefusal::Used)
    } else if now_ms >= expires_ms {
        Err(EnrolRefusal::Expired)
    } else {
        Ok(d)
    }
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Exchange a one-time code for a device token.
    pub fn enrol(&self, e: Enrolment, now_ms: i64) -> Result<Enrolled> {
        let name = super::check_name("device_name", &e.device_name, MAX_DEVICE_NAME)?;
        // A phone re-enrolling after a reset keeps its replica: start from what we hold.
        let acked = self.view(|c| replica_contiguous(c, e.replica))?;
        let server_replica = self.server_replica();
        if let Some(k) = &e.public_key {
            let ok = <[u8; 32]>::try_from(k.as_slice())
                .ok()
                .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
            if !ok {
                return Err(ServerError::BadRequest(
                    "public_key: expected the 32 bytes of an Ed25519 public key".into(),
                ));
            }
        }
        self.write(|t| {
            let server_key = crate::storage::server_signing_key(t)?;
            // The server's word that this key is this device's, for other phones to check.
            let certify = |t: &mut dyn crate::storage::Tables,
                           device_id: Uuid,
                           officer_id: Uuid|
             -> Result<Option<doorstep_core::DeviceCertificate>> {
                let Some(key) = &e.public_key else {
                    return Ok(None);
                };
                t.set_public_key(&device_id.to_string(), key)?;
                Ok(Some(doorstep_core::sign::certify(
                    &server_key,
                    doorstep_core::DeviceCertificate {
                        replica: e.replica,
                        officer_id,
                        device_id,
                        public_key: key.clone(),
                        issued_at_ms: now_ms,
                        signature: Vec::new(),
                    },
                )))
            };
            let server_public = server_key.verifying_key().to_bytes().to_vec();
            let code_hash = auth::hash_secret(&auth::normalize_code(&e.code));
            let Some((officer, expires_ms, used)) = t.enrol_code(&code_hash)? else {
                return Err(ServerError::EnrolRefused(EnrolRefusal::Unknown));
            };
            let officer_id = uuid_col(&officer)?;
            let token = auth::new_token();
            let clock_offset_ms = now_ms.saturating_sub(e.device_time_ms);
            if let Some(used_by) = used {
                // Used: the same phone whose answer was lost gets its device back, once per
                // retry, until the code expires or the device's token is first used.
                let device = retry_device(t.device(&used_by)?, e.replica, expires_ms, now_ms)
                    .map_err(ServerError::EnrolRefused)?;
                t.replace_token(&used_by, &auth::hash_secret(&token), clock_offset_ms)?;
                t.audit(
                    now_ms,
                    &format!("device:{used_by}"),
                    "enrol_retry",
                    &used_by,
                    &format!("officer={officer_id}"),
                )?;
                let certificate = certify(t, device.id, officer_id)?;
                return Ok(Enrolled {
                    device_id: device.id,
                    token,
                    officer_id,
                    server_replica,
                    server_key: server_public,
                    certificate,
                });
            }
            if now_ms >= expires_ms {
                return Err(ServerError::EnrolRefused(EnrolRefusal::Expired));
            }
            // A replica belongs to one device: the server's own, or one another device holds,
            // is refused and the code left unused (an admin revokes the other device first).
            if e.replica == server_replica {
                return Err(ServerError::Forbidden("replica: the server's own"));
            }
            const BOUND: &str = "replica: enrolled on another device; revoke that device first";
            if t.active_device_of_replica(e.replica)?.is_some() {
                return Err(ServerError::Forbidden(BOUND));
            }
            let device_id = Uuid::now_v7();
            let id = device_id.to_string();
            // The unique index settles a race of two enrolments of one replica (PostgreSQL
            // instances, each past the check above): the second inserts nothing.
            let inserted = t.insert_device(&NewDevice {
                id: &id,
                officer_id: &officer,
                replica: e.replica,
                name,
                token_hash: &auth::hash_secret(&token),
                now_ms,
                acked_counter: acked,
                clock_offset_ms,
            })?;
            if !inserted {
                return Err(ServerError::Forbidden(BOUND));
            }
            t.use_code(&code_hash, &id)?;
            t.audit(
                now_ms,
                &format!("device:{device_id}"),
                "enrol",
                &id,
                &format!("officer={officer_id}"),
            )?;
            let certificate = certify(t, device_id, officer_id)?;
            Ok(Enrolled {
                device_id,
                token,
                officer_id,
                server_replica,
                server_key: server_public,
                certificate,
            })
        })
    }

    /// The revoked device holding `token`, with its signed wipe order.
    pub fn revoked_device(
        &self,
        token: &str,
    ) -> Result<Option<(DeviceAuth, doorstep_core::sign::WipeOrder)>> {
        let mut out = None;
        self.write(|t| {
            let Some((device, revoked_at_ms)) =
                t.revoked_device_by_token(&auth::hash_secret(token))?
            else {
                return Ok(());
            };
            let key = crate::storage::server_signing_key(t)?;
            let order = doorstep_core::sign::sign_wipe(
                &key,
                doorstep_core::sign::WipeOrder {
                    device_id: device.device_id,
                    replica: device.replica,
                    revoked_at_ms,
                    signature: Vec::new(),
                },
            );
            out = Some((device, order));
            Ok(())
        })?;
        Ok(out)
    }

    /// Raise a device's acknowledgement over operations refused outside a batch (a revoked
    /// device's late work); returns the acknowledgement.
    pub fn raise_ack(&self, device_id: Uuid, counter: u64) -> Result<u64> {
        let id = device_id.to_string();
        self.write(|t| {
            t.raise_ack(&id, i64::try_from(counter).unwrap_or(i64::MAX))?;
            Ok(t.device(&id)?.map_or(0, |d| d.acked_counter))
        })
    }

    /// The device holding `token`, unless unknown or revoked.
    pub fn authenticate_device(&self, token: &str) -> Result<Option<DeviceAuth>> {
        self.lookup(|t| t.device_by_token(&auth::hash_secret(token)))
    }

    /// The admin or command user holding an API bearer token (admins only have one).
    pub fn authenticate_user(&self, token: &str) -> Result<Option<CommandUser>> {
        self.tables(|t| t.user_by_token(&auth::hash_secret(token)))
    }

    /// The admin or command user holding an API bearer token (admins only have one).
    pub fn command_user_by_token(&self, token: &str) -> Result<Option<CommandUser>> {
        self.authenticate_user(token)
    }

    /// Create the first admin user; `None` if one exists. Returns its id and token.
    pub fn bootstrap_admin(&self, name: &str, now_ms: i64) -> Result<Option<(Uuid, String)>> {
        let name = super::check_name("name", name, MAX_USER_NAME)?;
        self.write(|t| {
            if t.admin_exists()? {
                return Ok(None);
            }
            let id = Uuid::now_v7();
            let token = auth::new_token();
            t.insert_user(&NewUser {
                id: &id.to_string(),
                name,
                role: "admin",
                unit_code: None,
                token_hash: &auth::hash_secret(&token),
                now_ms,
                password_hash: None,
            })?;
            t.audit(
                now_ms,
                CLI_ACTOR,
                "bootstrap",
                &id.to_string(),
                "role=admin",
            )?;
            Ok(Some((id, token)))
        })
    }

    /// Issue an enrolment code for an officer.
    pub fn issue_enrol_code(
        &self,
        actor: &str,
        officer_id: Uuid,
        ttl_minutes: u32,
        now_ms: i64,
    ) -> Result<IssuedCode> {
        if ttl_minutes == 0 || ttl_minutes > MAX_TTL_MINUTES {
            return Err(ServerError::BadRequest(format!(
                "ttl_minutes: expected 1 to {MAX_TTL_MINUTES}"
            )));
        }
        if !self.view(|c| officer_known(c, officer_id))? {
            return Err(ServerError::NotFound("no officer with that id"));
        }
        let code = auth::new_code();
        let expires_ms = now_ms + i64::from(ttl_minutes) * 60_000;
        self.write(|t| {
            let officer = officer_id.to_string();
            t.insert_code(&auth::hash_secret(&code), &officer, expires_ms, now_ms)?;
            t.audit(
                now_ms,
                actor,
                "enrol_code",
                &officer,
                &format!("ttl_minutes={ttl_minutes}"),
            )
        })?;
        Ok(IssuedCode { code, expires_ms })
    }

    /// Revoke a device; `false` if it was already revoked.
    pub fn revoke_device(&self, actor: &str, device_id: Uuid, now_ms: i64) -> Result<bool> {
        let id = device_id.to_string();
        self.write(|t| {
            // Between two writes of the feed, never inside one: a relay of the device's work
            // either sees the revocation or is wholly before it.
            t.hold_feed()?;
            if !t.lock_device(&id)? {
                return Err(ServerError::NotFound("no device with that id"));
            }
            // Never before what the server already took from the device (a run signed by a
            // clock a little ahead, relayed just before): all it holds of the device is
            // stamped strictly before `revoked_at`, as all it takes from it later must be.
            let at = match t.newest_stamp_of_device(&id)? {
                Some(stamp) => now_ms.max(stamp.saturating_add(1)),
                None => now_ms,
            };
            let revoked = t.revoke_device(&id, at)?;
            let detail = if revoked {
                "revoked"
            } else {
                "already_revoked"
            };
            t.audit(now_ms, actor, "revoke", &id, detail)?;
            Ok(revoked)
        })
    }

    /// Every device.
    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>> {
        self.tables(|t| t.devices())
    }

    /// The newest audit entries, newest first.
    pub fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.tables(|t| t.audit_log(limit.clamp(1, MAX_AUDIT)))
    }

    /// Add a command user (role from [`super::COMMAND_ROLES`], scoped to `unit_code`) with an
    /// argon2 PHC password hash. Names are unique among users who sign in. Returns the id.
    pub fn add_command_user(
        &self,
        actor: &str,
        name: &str,
        role: &str,
        unit_code: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        let (name, level) = console::check_command_user(name, role)?;
        let unit_code = unit_code.trim();
        // Units are replicated data: they live in the core store.
        match self.view(|c| unit_level(c, unit_code))? {
            None => return Err(ServerError::NotFound("unit")),
            Some(l) if l.as_deref() != Some(level) => {
                return Err(ServerError::BadRequest(format!(
                    "unit: a {role} user needs a unit of level {level}"
                )))
            }
            Some(_) => {}
        }
        self.write(|t| {
            if t.signin_name_taken(name)? {
                return Err(ServerError::BadRequest(
                    "name: already used by another user; choose another".into(),
                ));
            }
            let id = Uuid::now_v7();
            // The bearer-token column is required: give it a random token nobody learns.
            t.insert_user(&NewUser {
                id: &id.to_string(),
                name,
                role,
                unit_code: Some(unit_code),
                token_hash: &auth::hash_secret(&auth::new_token()),
                now_ms,
                password_hash: Some(password_hash),
            })?;
            t.audit(
                now_ms,
                actor,
                "user_add",
                &id.to_string(),
                &format!("role={role} unit={unit_code}"),
            )?;
            Ok(id)
        })
    }

    /// The user who signs in as `name`, with their password hash.
    pub fn command_user_by_name(&self, name: &str) -> Result<Option<(CommandUser, String)>> {
        self.tables(|t| t.user_by_name(name.trim()))
    }

    /// Give the command user who signs in as `name` a second factor (TOTP): a fresh secret,
    /// replacing any they had (a lost phone). Audited as `totp_enable`. Returns the user's id
    /// and the secret (base32), to be shown once.
    pub fn enable_totp(&self, actor: &str, name: &str, now_ms: i64) -> Result<(Uuid, String)> {
        let secret = crate::totp::new_secret();
        let name = name.trim();
        self.write(|t| {
            let (user, _) = t.user_by_name(name)?.ok_or(ServerError::NotFound(
                "name: no command user signs in with that name",
            ))?;
            let id = user.user_id.to_string();
            let replaced = t.user_totp(&id)?.is_some();
            t.set_totp(&id, Some(&secret))?;
            let detail = if replaced { "replaced" } else { "enabled" };
            t.audit(now_ms, actor, "totp_enable", &id, detail)?;
            Ok((user.user_id, secret.clone()))
        })
    }

    /// Remove the second factor of the command user who signs in as `name`; `false` if they
    /// had none. Audited as `totp_disable`.
    pub fn disable_totp(&self, actor: &str, name: &str, now_ms: i64) -> Result<bool> {
        let name = name.trim();
        self.write(|t| {
            let (user, _) = t.user_by_name(name)?.ok_or(ServerError::NotFound(
                "name: no command user signs in with that name",
            ))?;
            let id = user.user_id.to_string();
            let had = t.user_totp(&id)?.is_some();
            t.set_totp(&id, None)?;
            let detail = if had { "disabled" } else { "already_disabled" };
            t.audit(now_ms, actor, "totp_disable", &id, detail)?;
            Ok(had)
        })
    }

    /// A user's TOTP secret (base32), if they have a second factor.
    pub fn user_totp(&self, user_id: Uuid) -> Result<Option<String>> {
        self.tables(|t| t.user_totp(&user_id.to_string()))
    }

    /// Record that a user's code of `step` was accepted; `false` if that step or a later one
    /// was used already (a replayed code) or the user has no second factor.
    pub fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool> {
        self.tables(|t| t.use_totp_step(&user_id.to_string(), step))
    }

    /// Open a web session for a user (the token is stored hashed); audited as `sign_in`.
    pub fn start_session(
        &self,
        user_id: Uuid,
        token: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        self.write(|t| {
            let id = user_id.to_string();
            t.delete_expired_sessions(now_ms)?;
            t.insert_session(&auth::hash_secret(token), &id, now_ms, expires_ms)?;
            t.audit(now_ms, &user_actor(user_id), "sign_in", &id, "web")
        })
    }

    /// Record a refused sign-in in the audit log: the name tried (control characters removed,
    /// at most 100 characters), the client address and, when the password was not the reason,
    /// why (`reason=totp`: the code was missing, wrong or used already; `reason=totp_required`:
    /// `--require-totp` and the user has no second factor); never the password or the code.
    pub fn audit_failed_signin(
        &self,
        name: &str,
        addr: Option<std::net::IpAddr>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        let name: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(crate::limits::MAX_USER_NAME)
            .collect();
        let mut detail = addr.map_or_else(|| "web".to_owned(), |a| format!("web from {a}"));
        if let Some(reason) = reason {
            detail.push_str(&format!(" reason={reason}"));
        }
        self.tables(|t| t.audit(now_ms, "web", "sign_in_failed", &name, &detail))
    }

    /// Record an access to data about people (a report shown or exported) in the audit log.
    pub fn audit_access(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.tables(|t| t.audit(now_ms, actor, action, target, detail))
    }

    /// The user of an unexpired web session.
    pub fn session_user(&self, token: &str, now_ms: i64) -> Result<Option<CommandUser>> {
        self.tables(|t| t.session_user(&auth::hash_secret(token), now_ms))
    }

    /// End a web session (sign out).
    pub fn end_session(&self, token: &str) -> Result<()> {
        self.tables(|t| t.delete_session(&auth::hash_secret(token)))
    }
}
