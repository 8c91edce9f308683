//! The command centre's statistics: the counting rules of `docs/dashboard-api.md` over the
//! core store's materialised tables.
//!
//! A request never scans the store. The ledger (`ledger.rs`) reads the tables once and keeps
//! what each resident and household adds to the per-village, per-household and per-officer
//! sums with per-day counts, rolled up the unit tree. A report is then a few map look-ups and a
//! sum over at most a campaign's days ([`Snapshot::report`]). [`StatsCache`] keeps the latest
//! snapshot up to date from the storage's journal of what each batch touched
//! (`crate::journal`): a touched resident's contribution is taken back, read again and added
//! (`incremental.rs`); it rebuilds from the whole store only when it must (ADR 0009; a storage
//! without a journal: when the store's [`fingerprint`] changed, ADR 0005).
//!
//! | file | what it holds |
//! | --- | --- |
//! | `read.rs` | reading the store: one function per table or query, plain rows |
//! | `count.rs` | the counting rules applied to those rows: what each resident (with their steps), household's visits, session adds to its village and officers (a `Contribution`) |
//! | `ledger.rs` | the ledger: every resident's and household's record, the sums they add up to, the full build |
//! | `incremental.rs` | the update from what a batch touched: take back, read again, add |
//! | `rollup.rs` | the sums (`Agg`) and the unit tree they climb |
//! | `snapshot.rs` | [`Snapshot`]: the build, and look-ups of units, officers, campaigns |
//! | `report.rs` | report assembly: rows, trend, blockers, devices… of a unit or officer |
//! | `types.rs` | the report API's types ([`Report`], [`Row`], [`OfficerReport`]…) |
//! | `cache.rs` | [`StatsCache`]: the latest snapshot, kept up to date, checked against a rebuild ([`StatsCache::check`]), repaired ([`StatsCache::rebuild`]) |
//! | `export.rs` | report files: XLSX, CSV, JSON, from the same [`Report`] (also `crate::reports`) |
//! | `time.rs` | local (UTC+7) days and clock times |
//!
//! ## Where each counting rule is computed
//!
//! The rules are numbered as in `docs/dashboard-api.md` ("Counting rules").
//!
//! 1. `accounts` (residents not deleted in a household not deleted, under the unit):
//!    `read::account_states` reads who is in scope, `rollup::roll_up` adds each village to
//!    every unit above it. An officer's `accounts` (their assigned villages and households):
//!    `Ledger::publish_officers` (in `ledger.rs`).
//! 2. State (`level2_activated`, `level1_activated`, `activated`, `level2_received`,
//!    `portal`): now, `count::resident_state`; the days each resident's counts changed,
//!    `count::state_changes`; at the end of the report's day, `Agg::state_at` (in `rollup.rs`).
//! 3. `today.M`: the earliest non-retracted successful step per resident and metric,
//!    `count::keep_earliest` (streamed by `Ledger::build`, per resident by
//!    `incremental.rs`); unless the roster already included it,
//!    `count::roster_included`; credited on its day to the village and the step's officer,
//!    `count::credit_steps`. `today.activated`: `count::first_activation`. `today.visits`:
//!    `count::visits_contribution`. The report's day: `report::on_day`; an officer's counts up to
//!    the day: `report::credited_up_to`.
//! 4. `trend`: `report::trend`, from the roster's base, `report::roster_base`.
//! 5. `blockers`: `count::resident_contribution` (per day); up to the day, `Agg::blockers_upto`; every
//!    reason listed: `report::blockers`.
//! 6. `target`: `Snapshot::target` (in `report.rs`); `percent_of_target`:
//!    `report::percent_of_target`.
//! 7. `quota_today`: `Snapshot::quota_today` (in `report.rs`).
//! 8. `campaign_activated`: `report::campaign_activated`; pages' order: [`ranking`];
//!    accountability, `below_quota` (child units and officers below their day quota, worst
//!    first): [`below_quota`], from [`lagging`].
//! 9. `devices`: [`Snapshot::device_rows`]; `stale`: `Snapshot::is_stale` (in `report.rs`).
//! 10. `agencies`: `count::resident_contribution` (now), `count::state_changes` and `Agg::agencies_at`
//!     (at the end of the day), `report::agency_rows`.
//! 11. `sessions`: `count::session_event` (its commune: `rollup::commune_of`), summed by
//!     `Snapshot::sessions` and `Snapshot::events_in` (in `report.rs`).
//! 12. `outreach`: `count::outreach_event`, summed by `Snapshot::outreach` (in `report.rs`).
//!
//! A unit's row (a province's totals as a village's) is [`Snapshot::row`]: its rolled-up sums
//! (rules 1-3) plus rules 6-8; an officer's is [`Snapshot::officer_row`].
//!
//! Everything here takes a plain `&rusqlite::Connection`: any backend that keeps a core store
//! as its materialised view reaches it through [`crate::Backend::read_view`].

mod cache;
mod count;
pub mod export;
mod incremental;
mod ledger;
mod read;
mod report;
mod rollup;
mod snapshot;
mod time;
mod types;

pub use cache::{Refreshed, StatsCache, StatsCheck, DEFAULT_DEBOUNCE_MS};
pub use read::fingerprint;
pub use report::{below_quota, lagging, ranking};
pub use snapshot::{Snapshot, DEFAULT_STALE_MS};
pub use time::{day_date, day_num, day_of_ms, local_rfc3339, local_time, today, DayNum};
pub use types::{
    AgencyRow, CampaignInfo, DayCounts, DeviceRow, KindCount, Lag, OfficerRef, OfficerReport,
    OfficerRow, Outreach, Report, Row, SessionRow, Sessions, Shortfall, TrendPoint, UnitRef,
};
