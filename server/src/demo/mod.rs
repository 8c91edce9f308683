//! The demo data set (issue #5): Ninh Thuận's 2023 campaign, synthesised from a seed. Behind
//! the server's `demo` cargo feature (on by default, so `doorstep serve --demo` and
//! `scripts/demo.sh` work; `--no-default-features` leaves it out of the binary).
//!
//! - `plan.rs`: what the campaign looks like. [`plan()`] is pure and deterministic:
//!   the real units (`data/ninh-thuan-2023-units.csv`), and for the chosen communes synthetic
//!   villages, households and residents whose totals match the plan's figures exactly
//!   (319,284 accounts; 13,916 level-1 and 44,950 level-2 accounts already activated at the
//!   start, carried by the roster statuses), officers with assignments and quotas, and agencies
//!   for a few percent of the residents.
//! - `names.rs`: the synthetic people (names, addresses, citizen IDs, phone numbers) and ids.
//! - `activity.rs`: weeks of field work as operations of synthetic officer replicas
//!   ([`activity_ops`]); each resident's next step is the core's
//!   [`doorstep_core::AccountState::next_step`], as in the simulator.
//! - `build.rs`: [`load_reference`] writes a plan into a core store through the
//!   core's bulk paths (the units file, one roster import per commune, the write API for
//!   officers and quotas); [`build()`] makes the whole data set, merging the activity in big
//!   batches through the server's own import path, so it reaches devices and the dashboard like
//!   synced work; [`ensure`] reuses a data set already built.
//! - `calendar.rs`: the campaign's dates and local times.
//!
//! Everything except the units is synthetic: names are drawn from lists, citizen IDs follow the
//! CCCD structure with province code 058 and serial numbers that are a permutation of the
//! resident's index, phone numbers use real mobile prefixes with random digits. Treat the data
//! as real all the same: nothing here logs a name, an ID or a phone number.

mod activity;
mod build;
mod calendar;
mod names;
mod plan;

pub use activity::{activity_ops, failure_reason, may_fail, ActivitySummary};
pub use build::{
    build, demo_marker, ensure, load_reference, refresh_devices, roster_header, BuildSummary,
    Ensured, LoadSummary, STALE_DAYS, STALE_EVERY,
};
pub use calendar::{campaign_end, campaign_start, local_ms};
pub use names::uuid7;
pub use plan::{
    apportion, plan, CommunePlan, HouseholdPlan, OfficerPlan, Plan, ResidentPlan, UnitRow,
    VillagePlan, UNITS_CSV,
};

use chrono::NaiveDate;
use std::path::PathBuf;

/// The `meta` key that marks a database as a demo database (value: a description).
pub const DEMO_MARKER_KEY: &str = "doorstep_demo";

/// The plan's figures (DESIGN.md §1).
pub const NT_ACCOUNTS: u64 = 319_284;
/// Level-1 accounts activated on 27/6/2023.
pub const NT_LEVEL1_ACTIVATED: u64 = 13_916;
/// Level-2 accounts activated on 27/6/2023.
pub const NT_LEVEL2_ACTIVATED: u64 = 44_950;
/// The campaign's activation goal.
pub const NT_TARGET: i64 = 264_720;

/// Errors of the demo builder. Messages carry counts and paths, never personal data.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The core store failed.
    #[error(transparent)]
    Core(#[from] doorstep_core::Error),
    /// The server's tables failed.
    #[error(transparent)]
    Server(#[from] crate::error::ServerError),
    /// SQLite failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read, written or renamed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database exists, holds data and is not a demo database: it is left alone.
    #[error("{0} exists and is not a demo database; choose another --db file for the demo")]
    NotDemo(PathBuf),
    /// The configuration cannot be satisfied (e.g. more activated accounts than accounts).
    #[error("invalid demo configuration: {0}")]
    Config(String),
    /// Rows of a generated roster were refused: a bug in the generator.
    #[error(
        "the generated roster of commune {commune} had {rejected} rejected rows (first: {first})"
    )]
    Rejected {
        /// The commune.
        commune: String,
        /// How many rows.
        rejected: usize,
        /// The first reason (names a field, never a value).
        first: String,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Everything is a function of this.
    pub seed: u64,
    /// How many districts to use (from the start of the official list); `None`: all 7.
    pub districts: Option<usize>,
    /// How many communes to use, taken round-robin over the chosen districts; `None`: all.
    pub communes: Option<usize>,
    /// Accounts in scope (residents on the rosters).
    pub accounts: u64,
    /// Of them, level-1 activated at the start (roster status `level1_activated`).
    pub level1_activated: u64,
    /// Of them, level-2 activated at the start (roster status `level2_activated`).
    pub level2_activated: u64,
    /// The campaign's target on the province.
    pub target: i64,
    /// First day of the campaign.
    pub start: NaiveDate,
    /// Last day of the campaign (inclusive).
    pub end: NaiveDate,
    /// Days of field activity to synthesise from the first day (0: none).
    pub activity_days: u32,
    /// Residents per village, roughly (villages per commune follow from it).
    pub residents_per_village: u64,
    /// Villages per field officer, at most.
    pub villages_per_officer: usize,
}

impl DemoConfig {
    /// Ninh Thuận's plan, in full, with three weeks of field activity.
    pub fn ninh_thuan(seed: u64) -> DemoConfig {
        DemoConfig {
            seed,
            districts: None,
            communes: None,
            accounts: NT_ACCOUNTS,
            level1_activated: NT_LEVEL1_ACTIVATED,
            level2_activated: NT_LEVEL2_ACTIVATED,
            target: NT_TARGET,
            start: campaign_start(),
            end: campaign_end(),
            activity_days: 21,
            residents_per_village: 650,
            villages_per_officer: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteBackend;
    use uuid::Uuid;

    fn small(seed: u64) -> DemoConfig {
        DemoConfig {
            districts: Some(2),
            communes: Some(4),
            accounts: 900,
            level1_activated: 60,
            level2_activated: 150,
            target: 700,
            activity_days: 5,
            residents_per_village: 100,
            ..DemoConfig::ninh_thuan(seed)
        }
    }

    #[test]
    fn apportion_is_exact() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]).iter().sum::<u64>(), 10);
        assert_eq!(
            apportion(319_284, &[0.3, 2.7, 1.1]).iter().sum::<u64>(),
            319_284
        );
        assert_eq!(apportion(5, &[]), Vec::<u64>::new());
    }

    #[test]
    fn plan_is_deterministic_and_exact() {
        let a = plan(&small(3)).unwrap();
        let b = plan(&small(3)).unwrap();
        assert_eq!(a.units_csv(), b.units_csv());
        let ra: Vec<Uuid> = a.residents().map(|(_, r)| r.id).collect();
        let rb: Vec<Uuid> = b.residents().map(|(_, r)| r.id).collect();
        assert_eq!(ra, rb);
        assert_eq!(ra.len(), 900);
        assert_eq!(a.communes.len(), 4);
        let districts: std::collections::BTreeSet<_> =
            a.communes.iter().map(|c| c.unit.parent.clone()).collect();
        assert_eq!(districts.len(), 2);
        assert_eq!(
            a.communes.iter().map(|c| c.campaign_quota).sum::<i64>(),
            700
        );
        assert_ne!(plan(&small(4)).unwrap().campaign, a.campaign);
    }

    #[test]
    fn a_small_demo_builds_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let mut lines = 0;
        let built = ensure(&db, &small(9), &mut |_| lines += 1).unwrap();
        let Ensured::Built(s) = built else {
            panic!("expected a build")
        };
        assert!(lines > 3);
        assert_eq!(s.load.residents, 900);
        assert!(s.activity.visits > 0 && s.activity.assists > 0);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM residents WHERE deleted = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 900);
        let v: i64 = conn
            .query_row("SELECT count(*) FROM visits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, s.activity.visits);
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        // The activated-at-start figures come from the roster statuses, exactly.
        assert_eq!(
            count("SELECT count(*) FROM residents WHERE roster_account = 'level1_activated'"),
            60
        );
        assert_eq!(
            count("SELECT count(*) FROM residents WHERE roster_account = 'level2_activated'"),
            150
        );
        assert!(count("SELECT count(*) FROM residents WHERE agency IS NOT NULL") > 0);
        assert_eq!(
            count("SELECT count(*) FROM sessions") as usize,
            s.activity.sessions
        );
        assert_eq!(
            count("SELECT count(*) FROM outreach") as usize,
            s.activity.outreach
        );
        assert!(s.activity.sessions > 0 && s.activity.outreach > 0);
        assert_eq!(count("SELECT sum(target) FROM quotas WHERE subject_kind = 'unit' AND period = 'campaign' AND length(subject_id) = 5"), 700);
        drop(conn);
        assert!(matches!(
            ensure(&db, &small(9), &mut |_| {}).unwrap(),
            Ensured::Reused(_)
        ));
        let other = dir.path().join("other.db");
        drop(SqliteBackend::open(&other).unwrap());
        assert!(matches!(
            ensure(&other, &small(9), &mut |_| {}),
            Err(DemoError::NotDemo(_))
        ));
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;

    /// The demo has phones: one per synthetic replica, enrolled with it (its work acknowledged
    /// as the phone's own), and after a refresh some of them are past the stale limit.
    #[test]
    fn the_demo_has_phones_and_some_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let config = DemoConfig {
            districts: Some(1),
            communes: Some(2),
            accounts: 600,
            level1_activated: 30,
            level2_activated: 60,
            activity_days: 3,
            ..DemoConfig::ninh_thuan(5)
        };
        let Ensured::Built(s) = ensure(&db, &config, &mut |_| {}).unwrap() else {
            panic!("expected a build")
        };
        let phones = s.activity.replicas.len();
        assert!(phones >= 4, "{phones}");
        let now = crate::now_ms();
        let (refreshed, stale) = refresh_devices(&db, now).unwrap();
        assert_eq!(refreshed, phones);
        assert_eq!(stale, phones / STALE_EVERY);
        assert!(stale >= 1 || phones < STALE_EVERY);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM devices") as usize, phones);
        // Every phone's replica holds work the server has, acknowledged as received.
        assert_eq!(
            count("SELECT count(*) FROM devices WHERE acked_counter > 0") as usize,
            phones
        );
        let limit = now - 2 * 24 * 3_600_000;
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM devices WHERE last_seen_ms < {limit}"
            )) as usize,
            stale
        );
        // Refreshing again a day later keeps the same picture relative to then.
        let (_, again) = refresh_devices(&db, now + 24 * 3_600_000).unwrap();
        assert_eq!(again, stale);
    }
}
