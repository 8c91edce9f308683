//! The server's tables in SQLite: one statement a method ([`Tables`]), nothing decided here.
//!
//! A handle is a connection: the store's own (each statement commits on its own), a
//! transaction on it, or the core's transaction while it applies a batch.

use super::feed::insert_feed;
use crate::backend::{AuditEntry, CommandUser, DeviceAuth, DeviceInfo};
use crate::error::Result;
use crate::model::Author;
use crate::storage::{
    uuid_blob, uuid_col, CodeRow, Counted, FeedRow, NewDevice, NewUser, Tables, DEVICE_COLUMNS,
};
use doorstep_core::Op;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

/// The tables through one connection.
pub(super) struct SqliteTables<'a>(pub(super) &'a Connection);

/// A user from columns `id, name, role, unit_code`.
fn command_user(r: &Row<'_>) -> Result<CommandUser> {
    Ok(CommandUser {
        user_id: uuid_col(&r.get::<_, String>(0)?)?,
        name: r.get(1)?,
        role: r.get(2)?,
        unit_code: r.get(3)?,
    })
}

/// A device from [`DEVICE_COLUMNS`].
fn device_info(r: &Row<'_>) -> Result<DeviceInfo> {
    Ok(DeviceInfo {
        id: uuid_col(&r.get::<_, String>(0)?)?,
        officer_id: uuid_col(&r.get::<_, String>(1)?)?,
        replica: uuid_blob(&r.get::<_, Vec<u8>>(2)?)?,
        name: r.get(3)?,
        enrolled_at_ms: r.get(4)?,
        revoked_at_ms: r.get(5)?,
        acked_counter: r.get::<_, i64>(6)? as u64,
        last_seen_ms: r.get(7)?,
        clock_offset_ms: r.get(8)?,
    })
}

impl Tables for SqliteTables<'_> {
    fn health(&mut self) -> Result<()> {
        self.0
            .query_row("SELECT count(*) FROM server_meta", [], |r| {
                r.get::<_, i64>(0)
            })?;
        Ok(())
    }

    fn insert_device(&mut self, d: &NewDevice<'_>) -> Result<bool> {
        let n = self.0.execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at,
                                  acked_counter, last_seen_ms, clock_offset_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8)
             ON CONFLICT (replica) WHERE revoked_at IS NULL DO NOTHING",
            params![
                d.id,
                d.officer_id,
                d.replica.as_bytes().as_slice(),
                d.name,
                d.token_hash,
                d.now_ms,
                d.acked_counter,
                d.clock_offset_ms,
            ],
        )?;
        Ok(n == 1)
    }

    fn device_by_token(&mut self, token_hash: &str) -> Result<Option<DeviceAuth>> {
        let row: Option<(String, String, Vec<u8>)> = self
            .0
            .prepare_cached(
                "SELECT id, officer_id, replica FROM devices
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(id, officer, replica)| {
            Ok(DeviceAuth {
                device_id: uuid_col(&id)?,
                officer_id: uuid_col(&officer)?,
                replica: uuid_blob(&replica)?,
            })
        })
        .transpose()
    }

    fn lock_device(&mut self, id: &str) -> Result<bool> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?)
    }

    fn revoke_device(&mut self, id: &str, now_ms: i64) -> Result<bool> {
        let n = self.0.execute(
            "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_ms],
        )?;
        Ok(n == 1)
    }

    fn hold_feed(&mut self) -> Result<()> {
        // Every write is `BEGIN IMMEDIATE` on the one connection: already one at a time.
        Ok(())
    }

    fn newest_stamp_of_device(&mut self, id: &str) -> Result<Option<i64>> {
        // A replica's stamps rise with its counter: the last operation has the newest.
        let hlc: Option<i64> = self
            .0
            .query_row(
                "SELECT o.hlc FROM devices d JOIN oplog o ON o.replica = d.replica
                 WHERE d.id = ?1 ORDER BY o.counter DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(hlc.map(|h| doorstep_core::Hlc::from_sql(h).physical_ms() as i64))
    }

    fn device(&mut self, id: &str) -> Result<Option<DeviceInfo>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(device_info).transpose()
    }

    fn active_device_of_replica(&mut self, replica: Uuid) -> Result<Option<String>> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM devices WHERE replica = ?1 AND revoked_at IS NULL LIMIT 1",
                [replica.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn replace_token(&mut self, id: &str, token_hash: &str, clock_offset_ms: i64) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET token_hash = ?2, clock_offset_ms = ?3 WHERE id = ?1",
            params![id, token_hash, clock_offset_ms],
        )?;
        Ok(())
    }

    fn devices(&mut self) -> Result<Vec<DeviceInfo>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(device_info(r)?);
        }
        Ok(out)
    }

    fn touch_device(&mut self, id: &str, now_ms: i64, clock_offset_ms: i64) -> Result<u64> {
        let acked: Option<i64> = self
            .0
            .prepare_cached(
                "UPDATE devices SET last_seen_ms = ?2, clock_offset_ms = ?3 WHERE id = ?1
                 RETURNING acked_counter",
            )?
            .query_row(params![id, now_ms, clock_offset_ms], |r| r.get(0))
            .optional()?;
        Ok(acked.unwrap_or(0) as u64)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .prepare_cached("SELECT CAST(value AS TEXT) FROM server_meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO server_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
        Ok(())
    }

    fn init_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO server_meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute([key, value])?;
        Ok(())
    }

    fn revoked_device_by_token(&mut self, token_hash: &str) -> Result<Option<(DeviceAuth, i64)>> {
        let row: Option<(String, String, Vec<u8>, i64)> = self
            .0
            .prepare_cached(
                "SELECT id, officer_id, replica, revoked_at FROM devices
                 WHERE token_hash = ?1 AND revoked_at IS NOT NULL",
            )?
            .query_row([token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        row.map(|(id, officer, replica, at)| {
            Ok((
                DeviceAuth {
                    device_id: uuid_col(&id)?,
                    officer_id: uuid_col(&officer)?,
                    replica: uuid_blob(&replica)?,
                },
                at,
            ))
        })
        .transpose()
    }

    fn set_public_key(&mut self, id: &str, key: &[u8]) -> Result<()> {
        self.0
            .prepare_cached("UPDATE devices SET public_key = ?2 WHERE id = ?1")?
            .execute(params![id, key])?;
        Ok(())
    }

    fn author_of_replica(&mut self, replica: Uuid) -> Result<Option<Author>> {
        let row = self
            .0
            .prepare_cached(
                "SELECT id, officer_id, public_key, revoked_at, acked_counter FROM devices
                 WHERE replica = ?1
                 ORDER BY revoked_at IS NULL DESC, enrolled_at DESC, id DESC LIMIT 1",
            )?
            .query_row([replica.as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
        let Some((id, officer, public_key, revoked_at_ms, acked)) = row else {
            return Ok(None);
        };
        Ok(Some(Author {
            device_id: uuid_col(&id)?,
            officer_id: uuid_col(&officer)?,
            public_key,
            revoked_at_ms,
            acked_counter: acked as u64,
        }))
    }

    fn raise_ack(&mut self, id: &str, counter: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE devices SET acked_counter = max(acked_counter, ?2) WHERE id = ?1",
            )?
            .execute(params![id, counter])?;
        Ok(())
    }

    fn raise_ack_held(&mut self, id: &str, replica: Uuid) -> Result<()> {
        let acked: i64 = self
            .0
            .prepare_cached("SELECT acked_counter FROM devices WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        let mut through = acked;
        {
            let mut stmt = self.0.prepare_cached(
                "SELECT counter FROM feed WHERE replica = ?1 AND counter > ?2 ORDER BY counter",
            )?;
            let mut rows = stmt.query(params![replica.as_bytes().as_slice(), acked])?;
            while let Some(r) = rows.next()? {
                let c: i64 = r.get(0)?;
                if c != through + 1 {
                    break;
                }
                through = c;
            }
        }
        if through > acked {
            self.raise_ack(id, through)?;
        }
        Ok(())
    }

    fn feed_end(&mut self) -> Result<u64> {
        let end: i64 = self
            .0
            .query_row("SELECT coalesce(max(seq), 0) FROM feed", [], |r| r.get(0))?;
        Ok(end as u64)
    }

    fn ack_device(
        &mut self,
        id: &str,
        counter: i64,
        now_ms: i64,
        clock_offset_ms: i64,
    ) -> Result<i64> {
        self.0
            .prepare_cached(
                "UPDATE devices SET acked_counter = max(acked_counter, ?2),
                        last_seen_ms = ?3, clock_offset_ms = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, counter, now_ms, clock_offset_ms])?;
        Ok(self
            .0
            .prepare_cached("SELECT acked_counter FROM devices WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, i64>(0))?)
    }

    fn clock_offsets(&mut self) -> Result<Vec<(Uuid, i64)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT id, clock_offset_ms FROM devices
             WHERE revoked_at IS NULL AND clock_offset_ms IS NOT NULL ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((uuid_col(&r.get::<_, String>(0)?)?, r.get(1)?));
        }
        Ok(out)
    }

    fn count(&mut self, what: Counted) -> Result<u64> {
        Ok(self.0.query_row(what.sql(), [], |r| r.get::<_, i64>(0))? as u64)
    }

    fn enrol_code(&mut self, code_hash: &str) -> Result<Option<CodeRow>> {
        Ok(self
            .0
            .query_row(
                "SELECT officer_id, expires_ms, used_by_device FROM enrol_codes WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
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
             VALUES (?1, ?2, ?3, NULL, ?4)",
            params![code_hash, officer_id, expires_ms, now_ms],
        )?;
        Ok(())
    }

    fn use_code(&mut self, code_hash: &str, device_id: &str) -> Result<()> {
        self.0.execute(
            "UPDATE enrol_codes SET used_by_device = ?2 WHERE code_hash = ?1",
            params![code_hash, device_id],
        )?;
        Ok(())
    }

    fn admin_exists(&mut self) -> Result<bool> {
        let users: i64 = self
            .0
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(users > 0)
    }

    fn insert_user(&mut self, u: &NewUser<'_>) -> Result<()> {
        self.0.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                u.id,
                u.name,
                u.role,
                u.unit_code,
                u.token_hash,
                u.now_ms,
                u.password_hash
            ],
        )?;
        Ok(())
    }

    fn signin_name_taken(&mut self, name: &str) -> Result<bool> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1 AND password_hash IS NOT NULL)",
            [name],
            |r| r.get(0),
        )?)
    }

    fn user_by_token(&mut self, token_hash: &str) -> Result<Option<CommandUser>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT id, name, role, unit_code FROM users WHERE token_hash = ?1")?;
        let mut rows = stmt.query([token_hash])?;
        rows.next()?.map(command_user).transpose()
    }

    fn user_by_name(&mut self, name: &str) -> Result<Option<(CommandUser, String)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT id, name, role, unit_code, password_hash FROM users
              WHERE name = ?1 AND password_hash IS NOT NULL",
        )?;
        let mut rows = stmt.query([name])?;
        rows.next()?
            .map(|r| Ok((command_user(r)?, r.get(4)?)))
            .transpose()
    }

    fn user_totp(&mut self, user_id: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .query_row(
                "SELECT totp_secret FROM users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    fn set_totp(&mut self, user_id: &str, secret: Option<&str>) -> Result<()> {
        self.0.execute(
            "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE id = ?1",
            params![user_id, secret],
        )?;
        Ok(())
    }

    fn use_totp_step(&mut self, user_id: &str, step: i64) -> Result<bool> {
        let n = self.0.execute(
            "UPDATE users SET totp_last_step = ?2
              WHERE id = ?1 AND totp_secret IS NOT NULL
                AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![user_id, step],
        )?;
        Ok(n == 1)
    }

    fn delete_expired_sessions(&mut self, now_ms: i64) -> Result<()> {
        self.0
            .execute("DELETE FROM web_sessions WHERE expires_ms < ?1", [now_ms])?;
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
             VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user_id, now_ms, expires_ms],
        )?;
        Ok(())
    }

    fn session_user(&mut self, token_hash: &str, now_ms: i64) -> Result<Option<CommandUser>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT u.id, u.name, u.role, u.unit_code FROM web_sessions s
               JOIN users u ON u.id = s.user_id
              WHERE s.token_hash = ?1 AND s.expires_ms > ?2",
        )?;
        let mut rows = stmt.query(params![token_hash, now_ms])?;
        rows.next()?.map(command_user).transpose()
    }

    fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.0.execute(
            "DELETE FROM web_sessions WHERE token_hash = ?1",
            [token_hash],
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
        self.0
            .prepare_cached(
                "INSERT INTO audit (at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![now_ms, actor, action, target, detail])?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn file(&mut self, rows: &[FeedRow<'_>]) -> Result<()> {
        for row in rows {
            insert_feed(self.0, row)?;
        }
        Ok(())
    }

    fn quarantine(&mut self, op: &Op, device_id: &str, now_ms: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO quarantine (replica, counter, device_id, reason, body, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                op.replica.0.as_bytes().as_slice(),
                op.counter as i64,
                device_id,
                "clock_ahead",
                op.encode(),
                now_ms
            ])?;
        Ok(())
    }
}
