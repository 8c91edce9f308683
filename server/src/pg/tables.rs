//! The shared tables in PostgreSQL: one statement a method ([`Tables`]), nothing decided here.
//!
//! A handle is a pooled client (each statement commits on its own) or a transaction on one.
//! Rows a concurrent instance could change under a check are read `FOR UPDATE`.

use super::feed::insert_feed;
use crate::backend::{AuditEntry, CommandUser, DeviceAuth, DeviceInfo};
use crate::error::Result;
use crate::model::Author;
use crate::storage::{
    uuid_blob, uuid_col, CodeRow, Counted, FeedRow, NewDevice, NewUser, Tables, DEVICE_COLUMNS,
};
use doorstep_core::Op;
use postgres::{GenericClient, Row};
use uuid::Uuid;

/// The advisory lock of the first admin's creation ("DOORADMN").
const ADMIN_LOCK: i64 = 0x444F_4F52_4144_4D4E;

/// The tables through one client or transaction.
pub(super) struct PgTables<'a, C: GenericClient>(pub(super) &'a mut C);

/// A user from columns `id, name, role, unit_code`.
fn command_user(r: &Row) -> Result<CommandUser> {
    Ok(CommandUser {
        user_id: uuid_col(r.try_get(0)?)?,
        name: r.try_get(1)?,
        role: r.try_get(2)?,
        unit_code: r.try_get(3)?,
    })
}

/// A device from [`DEVICE_COLUMNS`].
fn device_info(r: &Row) -> Result<DeviceInfo> {
    Ok(DeviceInfo {
        id: uuid_col(r.try_get(0)?)?,
        officer_id: uuid_col(r.try_get(1)?)?,
        replica: uuid_blob(r.try_get(2)?)?,
        name: r.try_get(3)?,
        enrolled_at_ms: r.try_get(4)?,
        revoked_at_ms: r.try_get(5)?,
        acked_counter: r.try_get::<_, i64>(6)? as u64,
        last_seen_ms: r.try_get(7)?,
        clock_offset_ms: r.try_get(8)?,
    })
}

impl<C: GenericClient> Tables for PgTables<'_, C> {
    fn health(&mut self) -> Result<()> {
        self.0.query_one("SELECT count(*) FROM server_meta", &[])?;
        Ok(())
    }

    fn insert_device(&mut self, d: &NewDevice<'_>) -> Result<bool> {
        let n = self.0.execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at,
                                  acked_counter, last_seen_ms, clock_offset_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)
             ON CONFLICT (replica) WHERE revoked_at IS NULL DO NOTHING",
            &[
                &d.id,
                &d.officer_id,
                &d.replica.as_bytes().as_slice(),
                &d.name,
                &d.token_hash,
                &d.now_ms,
                &d.acked_counter,
                &d.clock_offset_ms,
            ],
        )?;
        Ok(n == 1)
    }

    fn device_by_token(&mut self, token_hash: &str) -> Result<Option<DeviceAuth>> {
        let row = self.0.query_opt(
            "SELECT id, officer_id, replica FROM devices
             WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&token_hash],
        )?;
        row.map(|r| {
            Ok(DeviceAuth {
                device_id: uuid_col(r.try_get(0)?)?,
                officer_id: uuid_col(r.try_get(1)?)?,
                replica: uuid_blob(r.try_get(2)?)?,
            })
        })
        .transpose()
    }

    fn lock_device(&mut self, id: &str) -> Result<bool> {
        Ok(self
            .0
            .query_opt("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", &[&id])?
            .is_some())
    }

    fn revoke_device(&mut self, id: &str, now_ms: i64) -> Result<bool> {
        let n = self.0.execute(
            "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now_ms],
        )?;
        Ok(n == 1)
    }

    fn hold_feed(&mut self) -> Result<()> {
        super::feed::lock_feed(self.0)
    }

    fn newest_stamp_of_device(&mut self, id: &str) -> Result<Option<i64>> {
        // A replica's stamps rise with its counter: the last operation has the newest.
        let row = self.0.query_opt(
            "SELECT f.op FROM devices d JOIN feed f ON f.replica = d.replica
             WHERE d.id = $1 ORDER BY f.counter DESC LIMIT 1",
            &[&id],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let op = Op::decode(row.try_get::<_, &[u8]>(0)?)?;
        Ok(Some(op.hlc.physical_ms() as i64))
    }

    fn device(&mut self, id: &str) -> Result<Option<DeviceInfo>> {
        self.0
            .query_opt(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(device_info)
            .transpose()
    }

    fn active_device_of_replica(&mut self, replica: Uuid) -> Result<Option<String>> {
        Ok(self
            .0
            .query_opt(
                "SELECT id FROM devices WHERE replica = $1 AND revoked_at IS NULL LIMIT 1",
                &[&replica.as_bytes().as_slice()],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn replace_token(&mut self, id: &str, token_hash: &str, clock_offset_ms: i64) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET token_hash = $2, clock_offset_ms = $3 WHERE id = $1",
            &[&id, &token_hash, &clock_offset_ms],
        )?;
        Ok(())
    }

    fn devices(&mut self) -> Result<Vec<DeviceInfo>> {
        let rows = self.0.query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, id"),
            &[],
        )?;
        rows.iter().map(device_info).collect()
    }

    fn touch_device(&mut self, id: &str, now_ms: i64, clock_offset_ms: i64) -> Result<u64> {
        let row = self.0.query_opt(
            "UPDATE devices SET last_seen_ms = $2, clock_offset_ms = $3 WHERE id = $1
             RETURNING acked_counter",
            &[&id, &now_ms, &clock_offset_ms],
        )?;
        Ok(match row {
            Some(r) => r.try_get::<_, i64>(0)? as u64,
            None => 0,
        })
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        let row = self
            .0
            .query_opt("SELECT value FROM server_meta WHERE key = $1", &[&key])?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO server_meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn init_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO server_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn revoked_device_by_token(&mut self, token_hash: &str) -> Result<Option<(DeviceAuth, i64)>> {
        let row = self.0.query_opt(
            "SELECT id, officer_id, replica, revoked_at FROM devices
             WHERE token_hash = $1 AND revoked_at IS NOT NULL",
            &[&token_hash],
        )?;
        row.map(|r| {
            Ok((
                DeviceAuth {
                    device_id: uuid_col(r.try_get(0)?)?,
                    officer_id: uuid_col(r.try_get(1)?)?,
                    replica: uuid_blob(r.try_get(2)?)?,
                },
                r.try_get(3)?,
            ))
        })
        .transpose()
    }

    fn set_public_key(&mut self, id: &str, key: &[u8]) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET public_key = $2 WHERE id = $1",
            &[&id, &key],
        )?;
        Ok(())
    }

    fn author_of_replica(&mut self, replica: Uuid) -> Result<Option<Author>> {
        let row = self.0.query_opt(
            "SELECT id, officer_id, public_key, revoked_at, acked_counter FROM devices
             WHERE replica = $1
             ORDER BY revoked_at IS NULL DESC, enrolled_at DESC, id DESC LIMIT 1",
            &[&replica.as_bytes().as_slice()],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Author {
            device_id: uuid_col(&r.try_get::<_, String>(0)?)?,
            officer_id: uuid_col(&r.try_get::<_, String>(1)?)?,
            public_key: r.try_get(2)?,
            revoked_at_ms: r.try_get(3)?,
            acked_counter: r.try_get::<_, i64>(4)? as u64,
        }))
    }

    fn raise_ack(&mut self, id: &str, counter: i64) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET acked_counter = greatest(acked_counter, $2) WHERE id = $1",
            &[&id, &counter],
        )?;
        Ok(())
    }

    fn raise_ack_held(&mut self, id: &str, replica: Uuid) -> Result<()> {
        let acked: i64 = self
            .0
            .query_one("SELECT acked_counter FROM devices WHERE id = $1", &[&id])?
            .try_get(0)?;
        let rows = self.0.query(
            "SELECT counter FROM feed WHERE replica = $1 AND counter > $2 ORDER BY counter",
            &[&replica.as_bytes().as_slice(), &acked],
        )?;
        let mut through = acked;
        for r in rows {
            let c: i64 = r.try_get(0)?;
            if c != through + 1 {
                break;
            }
            through = c;
        }
        if through > acked {
            self.raise_ack(id, through)?;
        }
        Ok(())
    }

    fn feed_end(&mut self) -> Result<u64> {
        let end: i64 = self
            .0
            .query_one("SELECT coalesce(max(seq), 0) FROM feed", &[])?
            .try_get(0)?;
        Ok(end as u64)
    }

    fn ack_device(
        &mut self,
        id: &str,
        counter: i64,
        now_ms: i64,
        clock_offset_ms: i64,
    ) -> Result<i64> {
        let row = self.0.query_one(
            "UPDATE devices SET acked_counter = greatest(acked_counter, $2),
                    last_seen_ms = $3, clock_offset_ms = $4
             WHERE id = $1 RETURNING acked_counter",
            &[&id, &counter, &now_ms, &clock_offset_ms],
        )?;
        Ok(row.try_get::<_, i64>(0)?)
    }

    fn clock_offsets(&mut self) -> Result<Vec<(Uuid, i64)>> {
        let rows = self.0.query(
            "SELECT id, clock_offset_ms FROM devices
             WHERE revoked_at IS NULL AND clock_offset_ms IS NOT NULL ORDER BY id",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((uuid_col(r.try_get(0)?)?, r.try_get(1)?)))
            .collect()
    }

    fn count(&mut self, what: Counted) -> Result<u64> {
        Ok(self.0.query_one(what.sql(), &[])?.try_get::<_, i64>(0)? as u64)
    }

    fn enrol_code(&mut self, code_hash: &str) -> Result<Option<CodeRow>> {
        let row = self.0.query_opt(
            "SELECT officer_id, expires_ms, used_by_device FROM enrol_codes
             WHERE code_hash = $1 FOR UPDATE",
            &[&code_hash],
        )?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    fn insert_code(
        &mut self,
        code_hash: &str,
        officer_id: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO enrol_codes (code_hash, officer_id, expires_ms, used_by_device, created_ms)
             VALUES ($1, $2, $3, NULL, $4)",
            &[&code_hash, &officer_id, &expires_ms, &now_ms],
        )?;
        Ok(())
    }

    fn use_code(&mut self, code_hash: &str, device_id: &str) -> Result<()> {
        self.0.execute(
            "UPDATE enrol_codes SET used_by_device = $2 WHERE code_hash = $1",
            &[&code_hash, &device_id],
        )?;
        Ok(())
    }

    fn admin_exists(&mut self) -> Result<bool> {
        self.0
            .execute("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])?;
        let users: i64 = self
            .0
            .query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[])?
            .try_get(0)?;
        Ok(users > 0)
    }

    fn insert_user(&mut self, u: &NewUser<'_>) -> Result<()> {
        self.0.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &u.id,
                &u.name,
                &u.role,
                &u.unit_code,
                &u.token_hash,
                &u.now_ms,
                &u.password_hash,
            ],
        )?;
        Ok(())
    }

    fn signin_name_taken(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1 AND password_hash IS NOT NULL)",
                &[&name],
            )?
            .try_get(0)?)
    }

    fn user_by_token(&mut self, token_hash: &str) -> Result<Option<CommandUser>> {
        self.0
            .query_opt(
                "SELECT id, name, role, unit_code FROM users WHERE token_hash = $1",
                &[&token_hash],
            )?
            .map(|r| command_user(&r))
            .transpose()
    }

    fn user_by_name(&mut self, name: &str) -> Result<Option<(CommandUser, String)>> {
        self.0
            .query_opt(
                "SELECT id, name, role, unit_code, password_hash FROM users
                  WHERE name = $1 AND password_hash IS NOT NULL",
                &[&name],
            )?
            .map(|r| Ok((command_user(&r)?, r.try_get(4)?)))
            .transpose()
    }

    fn user_totp(&mut self, user_id: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .query_opt("SELECT totp_secret FROM users WHERE id = $1", &[&user_id])?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    fn set_totp(&mut self, user_id: &str, secret: Option<&str>) -> Result<()> {
        self.0.execute(
            "UPDATE users SET totp_secret = $2, totp_last_step = NULL WHERE id = $1",
            &[&user_id, &secret],
        )?;
        Ok(())
    }

    fn use_totp_step(&mut self, user_id: &str, step: i64) -> Result<bool> {
        // One statement: two instances checking the same code at once cannot both pass.
        let n = self.0.execute(
            "UPDATE users SET totp_last_step = $2
              WHERE id = $1 AND totp_secret IS NOT NULL
                AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[&user_id, &step],
        )?;
        Ok(n == 1)
    }

    fn delete_expired_sessions(&mut self, now_ms: i64) -> Result<()> {
        self.0
            .execute("DELETE FROM web_sessions WHERE expires_ms < $1", &[&now_ms])?;
        Ok(())
    }

    fn insert_session(
        &mut self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO web_sessions (token_hash, user_id, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4)",
            &[&token_hash, &user_id, &now_ms, &expires_ms],
        )?;
        Ok(())
    }

    fn session_user(&mut self, token_hash: &str, now_ms: i64) -> Result<Option<CommandUser>> {
        self.0
            .query_opt(
                "SELECT u.id, u.name, u.role, u.unit_code FROM web_sessions s
                   JOIN users u ON u.id = s.user_id
                  WHERE s.token_hash = $1 AND s.expires_ms > $2",
                &[&token_hash, &now_ms],
            )?
            .map(|r| command_user(&r))
            .transpose()
    }

    fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.0.execute(
            "DELETE FROM web_sessions WHERE token_hash = $1",
            &[&token_hash],
        )?;
        Ok(())
    }

    fn audit(
        &mut self,
        now_ms: i64,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO audit (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
            &[&now_ms, &actor, &action, &target, &detail],
        )?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = self.0.query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT $1",
            &[&i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// One statement for the whole batch; the caller holds the feed lock.
    fn file(&mut self, rows: &[FeedRow<'_>]) -> Result<()> {
        insert_feed(self.0, rows)?;
        Ok(())
    }

    fn quarantine(&mut self, op: &Op, device_id: &str, now_ms: i64) -> Result<()> {
        self.0.execute(
            "INSERT INTO quarantine (replica, counter, device_id, reason, body, at_ms)
             VALUES ($1, $2, $3, 'clock_ahead', $4, $5) ON CONFLICT DO NOTHING",
            &[
                &op.replica.0.as_bytes().as_slice(),
                &(op.counter as i64),
                &device_id,
                &op.encode(),
                &now_ms,
            ],
        )?;
        Ok(())
    }
}
