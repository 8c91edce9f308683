//! [`FieldStore`]: the exported store object, a thin wrapper over [`doorstep_core::Store`].
//!
//! # Threads: sync beside the UI
//!
//! The core's `sync` holds `&mut Store` for the whole exchange (seconds to minutes on 2G), so a
//! sync through the UI's handle would block every screen. `FieldStore` therefore keeps one core
//! `Store` for the app's calls (reads and writes, behind a mutex held per call) and opens a
//! *second* `Store` on the same file for each sync (or enrolment). SQLite in WAL mode lets the UI
//! read while the sync writes; writes of the two handles serialise on SQLite's lock (busy
//! timeout 5 s; each sync transaction is one page). Two handles of one replica are safe because
//! the core re-reads the replica's counter and latest clock stamp inside every write
//! transaction, and never lowers the saved stamp. After a sync the measured clock correction is
//! copied to the UI handle so its next writes use the corrected time. One sync runs at a time.

use crate::error::{parse_date, parse_id, DoorstepError};
use crate::model::*;
use doorstep_core::{
    AssignTarget, CampaignInput, OfficerInput, Options, ResidentEdit, Store, StoreKey,
};
use std::sync::{Arc, Mutex, MutexGuard};

type Result<T, E = DoorstepError> = std::result::Result<T, E>;

/// A phone's Doorstep store: one SQLite file.
#[derive(uniffi::Object)]
pub struct FieldStore {
    inner: Mutex<Store>,
    /// Held for the whole of a sync or an enrolment: one at a time.
    sync_lock: Mutex<()>,
    pub(crate) path: String,
    /// The store's key (`None` for an unencrypted development store), for the second handles
    /// a sync or an import opens. Held in memory only; wiped when the store is dropped.
    key: Mutex<Option<StoreKey>>,
    /// The app's HTTP client for enrolment and sync (`None`: the library's own).
    pub(crate) transport: Mutex<Option<Arc<dyn crate::http::HttpTransport>>>,
}

impl std::fmt::Debug for FieldStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FieldStore {
    /// The app's HTTP client, if it gave one ([`FieldStore::use_http_transport`]).
    pub(crate) fn http_transport(&self) -> Option<Arc<dyn crate::http::HttpTransport>> {
        self.transport
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store consistent (every write is one
        // transaction), so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a second handle on the same file for a long-running exchange, and copy the clock
    /// correction it measured to the UI handle afterwards.
    pub(crate) fn with_sync_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> doorstep_core::Result<T>,
    ) -> Result<T> {
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut sync_store = self.open_second_handle()?;
        let out = f(&mut sync_store);
        let offset = sync_store.clock_offset_ms();
        let mut ui = self.store();
        if ui.clock_offset_ms() != offset {
            ui.set_clock_offset(offset)?;
        }
        Ok(out?)
    }

    /// Another handle on the same file, opened with the same key (`PRAGMA key` first).
    pub(crate) fn open_second_handle(&self) -> doorstep_core::Result<Store> {
        let key = self.key.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match key {
            Some(key) => Store::open_encrypted(&self.path, &key, Options::default()),
            None => Store::open(&self.path, Options::default()),
        }
    }
}

#[uniffi::export]
impl FieldStore {
    /// Open the store at `path` (a file in the app's private storage), creating it if needed.
    ///
    /// `key` is the store's 32-byte encryption key. It comes from the platform's key store
    /// (on Android a random key wrapped by an AES key held in AndroidKeyStore, on iOS the
    /// Keychain) and is never stored beside the file. Production apps must pass one: `null` /
    /// `None` opens an unencrypted store, for development and tests only. A store created
    /// unencrypted is encrypted in place the first time it is opened with a key (no other
    /// handle may be open on it then). A key that does not decrypt the file (or none, for an
    /// encrypted file) is [`DoorstepError::WrongKey`]; a key that is not 32 bytes is
    /// [`DoorstepError::InvalidInput`] on `key`.
    #[uniffi::constructor]
    pub fn open(path: String, key: Option<Vec<u8>>) -> Result<Arc<Self>> {
        let key = key.map(|k| wipe_after(k, StoreKey::from_bytes));
        let key = key.transpose()?;
        let store = match &key {
            Some(key) => Store::open_encrypted(&path, key, Options::default())?,
            None => Store::open(&path, Options::default())?,
        };
        Ok(Arc::new(FieldStore {
            inner: Mutex::new(store),
            sync_lock: Mutex::new(()),
            path,
            key: Mutex::new(key),
            transport: Mutex::new(None),
        }))
    }

    /// Change the store's key to `new_key` (32 bytes): every page is rewritten under it. The
    /// store must be encrypted already (opened with a key). Waits for a running sync to end;
    /// after it returns, open the store with the new key only.
    pub fn rekey(&self, new_key: Vec<u8>) -> Result<()> {
        let new_key = wipe_after(new_key, StoreKey::from_bytes)?;
        let _no_sync = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.store().rekey(&new_key)?;
        *self.key.lock().unwrap_or_else(|e| e.into_inner()) = Some(new_key);
        Ok(())
    }

    /// Whether the store is encrypted (opened with a key).
    pub fn is_encrypted(&self) -> bool {
        self.store().is_encrypted()
    }

    /// This replica's id (UUID).
    pub fn replica_id(&self) -> String {
        self.store().replica_id().0.to_string()
    }

    /// Today's local (UTC+7) date by this replica's corrected clock, `YYYY-MM-DD`.
    pub fn today(&self) -> String {
        self.store().today()
    }

    /// Import administrative units (CSV: code, parent_code, level, kind, name).
    pub fn import_units_csv(&self, csv: String) -> Result<ImportReport> {
        Ok(self.store().import_units_csv(csv.as_bytes())?.into())
    }

    /// Add an administrative unit, or edit one (same code): its parent must be one level up
    /// and already in the store. Returns how many fields changed (0 if it was already so).
    pub fn put_unit(&self, unit: AdminUnit) -> Result<i32> {
        let input = doorstep_core::UnitInput {
            code: unit.code,
            parent_code: unit.parent_code,
            level: unit.level.into(),
            kind: unit.kind,
            name: unit.name,
        };
        Ok(self.store().put_unit(input)? as i32)
    }

    /// Import a roster given as text (CSV, `docs/roster-format.md`) into a campaign. For a
    /// file, prefer [`FieldStore::import_roster_file`]: the app does not hold the file, and
    /// progress is reported.
    pub fn import_roster(&self, campaign_id: String, csv: String) -> Result<ImportReport> {
        let campaign = parse_id("campaign_id", &campaign_id)?;
        Ok(self
            .store()
            .import_roster(campaign, csv.as_bytes(), &mut |_| {})?
            .into())
    }

    /// Create or update a campaign. Returns how many fields changed.
    pub fn put_campaign(&self, campaign: Campaign) -> Result<i32> {
        let input = CampaignInput {
            id: parse_id("id", &campaign.id)?,
            name: campaign.name,
            start_date: parse_date("start_date", &campaign.start_date)?,
            end_date: parse_date("end_date", &campaign.end_date)?,
            target: campaign.target,
            unit_code: campaign.unit_code,
        };
        Ok(self.store().put_campaign(input)? as i32)
    }

    /// Create or update an officer. Returns how many fields changed.
    pub fn put_officer(&self, officer: Officer) -> Result<i32> {
        let input = OfficerInput {
            id: parse_id("id", &officer.id)?,
            name: officer.name,
            role: officer.role.into(),
            unit_code: officer.unit_code,
        };
        Ok(self.store().put_officer(input)? as i32)
    }

    /// Assign a village to an officer. Returns the assignment's id.
    pub fn assign_village(&self, officer_id: String, village_code: String) -> Result<String> {
        let officer = parse_id("officer_id", &officer_id)?;
        let id = self
            .store()
            .assign(officer, AssignTarget::Village(village_code))?;
        Ok(id.to_string())
    }

    /// Record a visit. Returns its id.
    pub fn record_visit(&self, visit: NewVisit) -> Result<String> {
        let visit = visit.try_into()?;
        Ok(self.store().record_visit(visit)?.to_string())
    }

    /// Record an assistance step. Returns its id.
    pub fn record_assist(&self, assist: NewAssist) -> Result<String> {
        let assist = assist.try_into()?;
        Ok(self.store().record_assist(assist)?.to_string())
    }

    /// Retract a visit or assistance step recorded by mistake.
    pub fn retract(&self, fact_id: String, reason: Option<String>) -> Result<()> {
        let id = parse_id("fact_id", &fact_id)?;
        Ok(self.store().retract(id, reason.as_deref())?)
    }

    /// Set (or, with none or empty, clear) a resident's mobile number. Returns how many fields
    /// changed (0 if it was already so).
    pub fn edit_resident_phone(&self, resident_id: String, phone: Option<String>) -> Result<i32> {
        let id = parse_id("resident_id", &resident_id)?;
        let edit = ResidentEdit {
            phone: Some(phone),
            note: None,
        };
        Ok(self.store().edit_resident(id, edit)? as i32)
    }

    /// The officer's households with their visit state on `day` (`YYYY-MM-DD`), due revisits
    /// first.
    pub fn my_households(&self, officer_id: String, day: String) -> Result<Vec<HouseholdToday>> {
        let officer = parse_id("officer_id", &officer_id)?;
        let list = self.store().my_households(officer, &day)?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Residents of the officer's area who still need help.
    pub fn residents_needing_help(&self, officer_id: String) -> Result<Vec<ResidentNeed>> {
        let officer = parse_id("officer_id", &officer_id)?;
        let list = self.store().residents_needing_help(officer)?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Search residents by name, with or without diacritics (exact matches first).
    pub fn search_residents(&self, query: String, limit: i32) -> Result<Vec<SearchHit>> {
        let limit = non_negative("limit", limit.into())? as usize;
        let hits = self.store().search_residents(&query, limit)?;
        Ok(hits.into_iter().map(Into::into).collect())
    }

    /// The officer's progress on `day` and over the campaign, against their quotas.
    pub fn progress(
        &self,
        officer_id: String,
        campaign_id: String,
        day: String,
    ) -> Result<OfficerProgress> {
        let officer = parse_id("officer_id", &officer_id)?;
        let campaign = parse_id("campaign_id", &campaign_id)?;
        Ok(self.store().progress(officer, campaign, &day)?.into())
    }

    /// Campaigns running on `day` (`YYYY-MM-DD`, start and end inclusive), by id: what a phone
    /// passes to `progress` after it has pulled its area. A read of the `campaigns` table
    /// (`docs/store.md`), nothing more.
    pub fn campaigns_running(&self, day: String) -> Result<Vec<Campaign>> {
        let day = parse_date("day", &day)?.format("%Y-%m-%d").to_string();
        let store = self.store();
        let mut stmt = store
            .connection()
            .prepare(
                "SELECT id, COALESCE(name, ''), start_date, end_date, COALESCE(target, 0), \
                 COALESCE(unit_code, '') FROM campaigns \
                 WHERE ?1 BETWEEN start_date AND end_date ORDER BY id",
            )
            .map_err(doorstep_core::Error::from)?;
        let rows = stmt
            .query_map([day], |r| {
                Ok(Campaign {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    start_date: r.get(2)?,
                    end_date: r.get(3)?,
                    target: r.get(4)?,
                    unit_code: r.get(5)?,
                })
            })
            .map_err(doorstep_core::Error::from)?;
        let list = rows
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(doorstep_core::Error::from)?;
        Ok(list)
    }

    /// Failed attempts by reason, for one officer or (none) the whole store.
    pub fn blockers(&self, officer_id: Option<String>) -> Result<Vec<BlockerCount>> {
        let officer = officer_id.map(|o| parse_id("officer_id", &o)).transpose()?;
        let list = self.store().blockers(officer)?;
        Ok(list.into_iter().map(Into::into).collect())
    }
}

/// The kind of a failure, for a log line (no server words, no data).
pub(crate) fn kind(e: &DoorstepError) -> &'static str {
    match e {
        DoorstepError::InvalidInput { .. } => "invalid input",
        DoorstepError::NotFound { .. } => "not found",
        DoorstepError::Storage { .. } => "storage",
        DoorstepError::WrongKey { .. } => "wrong store key",
        DoorstepError::ReEnrol { .. } => "re-enrol",
        DoorstepError::UpdateApp { .. } => "update app",
        DoorstepError::Network { .. } => "network",
        DoorstepError::UntrustedServer { .. } => "untrusted server certificate",
        DoorstepError::CodeRefused { .. } => "enrolment code refused",
        DoorstepError::Cancelled => "cancelled",
        DoorstepError::Closed { .. } => "closed",
        DoorstepError::LeaseExpired { .. } => "offline lease over",
        DoorstepError::Other { .. } => "other",
    }
}

/// Run `f` on the key bytes the caller passed, then overwrite them with zeros.
fn wipe_after<T>(mut bytes: Vec<u8>, f: impl FnOnce(&[u8]) -> T) -> T {
    let out = f(&bytes);
    for b in bytes.iter_mut() {
        // SAFETY: a valid, exclusive reference; volatile so the write is not optimised away.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    out
}
