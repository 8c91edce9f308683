//! What a field worker asks, answered with plain SQL over the materialised tables.
//!
//! Each query here is one SQL statement (documented in `docs/store.md` so an app can write its
//! own). "My area" is every non-deleted household in a village assigned to the officer, plus
//! every household assigned to them directly, while the assignment is active.

use crate::model::{FailureReason, Need, QuotaMetric, VisitOutcome};
use crate::store::Store;
use crate::time::{day_start_ms, local_day, DAY_MS};
use crate::{text, validate, Error, Result};
use rusqlite::types::{FromSqlError, ValueRef};
use rusqlite::{params, Row};
use uuid::Uuid;

/// The households of an officer's area (a CTE named `mine(id)`; `?1` is the officer id).
const MINE: &str = "mine(id) AS (
    SELECT h.id FROM assignments a
      JOIN households h ON h.village_code = a.target_id AND h.deleted = 0
     WHERE a.officer_id = ?1 AND a.active = 1 AND a.target_kind = 'village'
    UNION
    SELECT h.id FROM assignments a
      JOIN households h ON h.id = a.target_id AND h.deleted = 0
     WHERE a.officer_id = ?1 AND a.active = 1 AND a.target_kind = 'household')";

/// A household in the officer's list for the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdToday {
    /// Household id.
    pub id: Uuid,
    /// Household code.
    pub code: String,
    /// Village code.
    pub village_code: String,
    /// Address.
    pub address: Option<String>,
    /// Residents not yet done.
    pub residents_needing_help: i64,
    /// The latest non-retracted visit: when, and what happened.
    pub last_visit: Option<(i64, VisitOutcome)>,
    /// When the household asked to be visited again, if the latest visit said so.
    pub revisit_at_ms: Option<i64>,
    /// Whether a (non-retracted) visit happened on the given day.
    pub visited_today: bool,
}

impl HouseholdToday {
    /// A revisit is due by the end of `day_end_ms`.
    pub fn revisit_due(&self, day_end_ms: i64) -> bool {
        self.revisit_at_ms.is_some_and(|t| t <= day_end_ms)
    }
}

/// A resident still needing help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentNeed {
    /// Resident id.
    pub id: Uuid,
    /// Household id.
    pub household_id: Uuid,
    /// Full name.
    pub full_name: String,
    /// What help is needed next.
    pub need: Need,
    /// The reason of the latest failed step, if the latest attempt failed.
    pub last_failure: Option<FailureReason>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// Resident id.
    pub id: Uuid,
    /// Household id.
    pub household_id: Uuid,
    /// Full name.
    pub full_name: String,
    /// Birth date (`YYYY-MM-DD` or `YYYY`).
    pub birth_date: Option<String>,
    /// What help is needed next.
    pub need: Need,
    /// Whether the query matched with its diacritics (ranked first).
    pub exact: bool,
}

/// Counts per quota metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Visits made.
    pub visits: i64,
    /// Residents activated at level 1.
    pub level1_activated: i64,
    /// Residents whose level-2 application was received.
    pub level2_received: i64,
    /// Residents activated at level 2.
    pub level2_activated: i64,
    /// Residents guided to the portal.
    pub portal_guided: i64,
}

impl Counts {
    fn set(&mut self, metric: QuotaMetric, n: i64) {
        match metric {
            QuotaMetric::Visits => self.visits = n,
            QuotaMetric::Level1Activated => self.level1_activated = n,
            QuotaMetric::Level2Received => self.level2_received = n,
            QuotaMetric::Level2Activated => self.level2_activated = n,
            QuotaMetric::PortalGuided => self.portal_guided = n,
        }
    }
}

/// An officer's progress against their quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Done on the day.
    pub day: Counts,
    /// The day's quota (0 where none is set).
    pub day_quota: Counts,
    /// Done over the whole campaign.
    pub campaign: Counts,
    /// The campaign quota (0 where none is set).
    pub campaign_quota: Counts,
}

/// Failures counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockerCount {
    /// The reason.
    pub reason: FailureReason,
    /// Residents not yet done whose attempts failed for this reason.
    pub residents: i64,
    /// Failed attempts with this reason.
    pub attempts: i64,
}

fn conversion_error(
    i: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

/// A UUID column, parsed from the row's text in place (no `String` in between).
fn uuid_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    match row.get_ref(i)? {
        ValueRef::Text(s) => Uuid::try_parse_ascii(s).map_err(|e| conversion_error(i, e)),
        _ => Err(conversion_error(i, FromSqlError::InvalidType)),
    }
}

/// Where a household stands in the day's list, first to last: a revisit due by `day_end` and
/// not yet visited with residents needing help; a revisit due; not yet visited with residents
/// needing help; the rest.
fn list_rank(h: &HouseholdToday, day_end: i64) -> u8 {
    let waiting = !h.visited_today && h.residents_needing_help > 0;
    (u8::from(!h.revisit_due(day_end)) << 1) | u8::from(!waiting)
}

/// The day's list in order: by rank, then as SQLite's `ORDER BY h.village_code, h.code` sorts
/// (a NULL village code first, text compared byte by byte like SQLite's BINARY collation), ties
/// in the order SQLite returned them. `keys[i]` is `(rank, village code not NULL, i)` of
/// `list[i]`. The ranks are sorted by counting, then each rank's households by a stable sort of
/// small keys (the households do not move until the end); SQLite returns a village's households
/// one village after another, mostly in code order, which that sort finishes in about one
/// comparison per household.
fn in_list_order(list: Vec<HouseholdToday>, keys: Vec<(u8, bool, usize)>) -> Vec<HouseholdToday> {
    let mut ranks: [Vec<(bool, usize)>; 4] = Default::default();
    for (rank, has_village, i) in keys {
        ranks[usize::from(rank & 3)].push((has_village, i));
    }
    let text = |i: usize| {
        list.get(i)
            .map(|h| (h.village_code.as_str(), h.code.as_str()))
    };
    for rank in &mut ranks {
        rank.sort_by(|a, b| (a.0, text(a.1)).cmp(&(b.0, text(b.1))));
    }
    let mut slots: Vec<Option<HouseholdToday>> = list.into_iter().map(Some).collect();
    ranks
        .iter()
        .flatten()
        .filter_map(|&(_, i)| slots.get_mut(i).and_then(Option::take))
        .collect()
}

fn day_bounds(day: &str) -> Result<(i64, i64)> {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| Error::invalid("day", "a date as YYYY-MM-DD"))?;
    let start = day_start_ms(d);
    Ok((start, start + DAY_MS - 1))
}

impl Store {
    /// The local (UTC+7) day of this replica's clock, `YYYY-MM-DD`.
    pub fn today(&self) -> String {
        local_day(self.now_ms())
    }

    /// The officer's households with their visit state on `day` (`YYYY-MM-DD`): due revisits
    /// first, then households not yet visited that day with residents needing help, then the rest.
    pub fn my_households(&self, officer_id: Uuid, day: &str) -> Result<Vec<HouseholdToday>> {
        self.check_lease()?;
        let (_, day_end) = day_bounds(day)?;
        // The per-household state is materialised in `households`; the only look-up left is
        // for a household whose latest visit is later than `day` (a past day's list).
        //
        // The order is `ORDER BY coalesce(h.last_outcome = 'come_back' AND h.revisit_at_ms <=
        // <end of day>, 0) DESC, (today = 0 AND h.needing > 0) DESC, h.village_code, h.code`,
        // applied below in Rust ([`in_list_order`]): SQLite's sorter carried every column of every
        // row through ~60,000 generic record comparisons, a quarter of the query's instructions
        // (callgrind, docs/benchmarks.md section 5).
        let sql = "SELECT h.id, h.code, h.village_code, h.address, h.needing, h.last_at_ms, h.last_outcome,
                    CASE WHEN h.last_outcome = 'come_back' THEN h.revisit_at_ms END,
                    CASE WHEN h.last_day = ?2 THEN 1
                         WHEN h.last_day > ?2 THEN EXISTS (
                             SELECT 1 FROM visits v WHERE v.household_id = h.id AND v.retracted = 0 AND v.day = ?2)
                         ELSE 0 END
               FROM households h
              WHERE h.deleted = 0 AND h.code IS NOT NULL
                AND (h.village_code IN (SELECT target_id FROM assignments
                                         WHERE officer_id = ?1 AND active = 1 AND target_kind = 'village')
                     OR h.id IN (SELECT target_id FROM assignments
                                  WHERE officer_id = ?1 AND active = 1 AND target_kind = 'household'))";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![officer_id.to_string(), day])?;
        let mut list: Vec<HouseholdToday> = Vec::new();
        // Each household's place in the order: (rank, village code not NULL, index in `list`).
        let mut keys: Vec<(u8, bool, usize)> = Vec::new();
        while let Some(r) = rows.next()? {
            let last_at: Option<i64> = r.get(5)?;
            let village: Option<String> = r.get(2)?;
            let has_village = village.is_some();
            let h = HouseholdToday {
                id: uuid_col(r, 0)?,
                code: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                village_code: village.unwrap_or_default(),
                address: r.get(3)?,
                residents_needing_help: r.get(4)?,
                last_visit: match r.get_ref(6)?.as_str_or_null() {
                    Ok(o) => last_at.zip(o.and_then(|o| VisitOutcome::parse(o).ok())),
                    Err(e) => return Err(conversion_error(6, e).into()),
                },
                revisit_at_ms: r.get(7)?,
                visited_today: r.get(8)?,
            };
            keys.push((list_rank(&h, day_end), has_village, list.len()));
            list.push(h);
        }
        Ok(in_list_order(list, keys))
    }

    /// Households of the officer whose latest visit asked to come back by the end of `day`.
    pub fn revisits_due(&self, officer_id: Uuid, day: &str) -> Result<Vec<HouseholdToday>> {
        self.check_lease()?;
        let (_, day_end) = day_bounds(day)?;
        let mut due: Vec<HouseholdToday> = self
            .my_households(officer_id, day)?
            .into_iter()
            .filter(|h| h.revisit_due(day_end))
            .collect();
        due.sort_by_key(|h| h.revisit_at_ms);
        Ok(due)
    }

    /// Residents in the officer's area who still need help, with which help, grouped by need.
    pub fn residents_needing_help(&self, officer_id: Uuid) -> Result<Vec<ResidentNeed>> {
        self.check_lease()?;
        let sql = format!(
            "WITH {MINE}
             SELECT r.id, r.household_id, r.full_name, coalesce(s.need, 'no_account'),
                    (SELECT a.failure FROM assists a WHERE a.resident_id = r.id AND a.retracted = 0
                      ORDER BY a.at_ms DESC, a.id DESC LIMIT 1)
               FROM mine JOIN residents r ON r.household_id = mine.id AND r.deleted = 0
               LEFT JOIN account_state s ON s.resident_id = r.id
              WHERE coalesce(s.need, 'no_account') != 'done'
              ORDER BY coalesce(s.need, 'no_account'), r.household_id, r.name_folded"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([officer_id.to_string()], |r| {
            let need: String = r.get(3)?;
            let failure: Option<String> = r.get(4)?;
            Ok(ResidentNeed {
                id: uuid_col(r, 0)?,
                household_id: uuid_col(r, 1)?,
                full_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                need: Need::parse(&need).unwrap_or(Need::NoAccount),
                last_failure: failure.and_then(|f| FailureReason::parse(&f).ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Search residents by name (diacritic-insensitive, đ→d; whole words, then word starts,
    /// then inside words, each with exact-diacritic matches first), or by ID number or phone
    /// number when the query is one (typed in full: that resident alone).
    pub fn search_residents(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.check_lease()?;
        let q = query.trim();
        let digits: String = q
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        let is_number = !digits.is_empty()
            && digits
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit());
        const COLS: &str =
            "r.id, r.household_id, r.full_name, r.birth_date, coalesce(s.need, 'no_account')";
        let map = |r: &Row<'_>, exact: bool| -> rusqlite::Result<SearchHit> {
            let need: String = r.get(4)?;
            Ok(SearchHit {
                id: uuid_col(r, 0)?,
                household_id: uuid_col(r, 1)?,
                full_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                birth_date: r.get(3)?,
                need: Need::parse(&need).unwrap_or(Need::NoAccount),
                exact: exact || r.get::<_, bool>(5).unwrap_or(false),
            })
        };
        if is_number {
            let (column, value) =
                if !digits.starts_with('+') && (digits.len() == 9 || digits.len() == 12) {
                    ("id_number", digits.clone())
                } else {
                    ("phone", validate::normalize_phone("query", &digits)?)
                };
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {COLS}, 1 FROM residents r LEFT JOIN account_state s ON s.resident_id = r.id
                  WHERE r.{column} = ?1 AND r.deleted = 0 ORDER BY r.name_folded LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![value, limit as i64], |r| map(r, true))?;
            return Ok(rows.collect::<rusqlite::Result<_>>()?);
        }
        let folded = text::fold(q);
        if folded.is_empty() {
            return Err(Error::invalid(
                "query",
                "a name (or part of one), an ID number or a phone number",
            ));
        }
        let escaped = folded
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        // Ranking, as a person at a door expects: the query as whole words first ("hoa" finds
        // Hòa before Hoàng), then as the start of words, then inside a word; within each, the
        // query's own diacritics (either tone placement, `text::exact_key`) before folded
        // matches, a name equal to the query before longer ones, then by name. Matching and
        // ranking read only the covering index `residents_name`; the rows of the few hits
        // shown are fetched afterwards.
        let mut stmt = self.conn.prepare_cached(&format!(
            "WITH hits AS (
               SELECT id, instr(name_exact, ?2) > 0 AS exact, name_folded = ?3 AS whole,
                      CASE WHEN ' ' || name_folded || ' ' LIKE ?5 ESCAPE '\\' THEN 0
                           WHEN ' ' || name_folded LIKE ?6 ESCAPE '\\' THEN 1
                           ELSE 2 END AS class,
                      name_folded
                 FROM residents INDEXED BY residents_name
                WHERE name_folded LIKE ?1 ESCAPE '\\' AND deleted = 0
                ORDER BY class, exact DESC, whole DESC, name_folded, id
                LIMIT ?4)
             SELECT {COLS}, hits.exact
               FROM hits JOIN residents r ON r.id = hits.id
               LEFT JOIN account_state s ON s.resident_id = r.id
              ORDER BY hits.class, hits.exact DESC, hits.whole DESC, hits.name_folded, hits.id"
        ))?;
        let rows = stmt.query_map(
            params![
                format!("%{escaped}%"),
                text::exact_key(q),
                folded,
                limit as i64,
                format!("% {escaped} %"),
                format!("% {escaped}%"),
            ],
            |r| map(r, false),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The officer's counts on `day` and over the campaign, with their quotas.
    pub fn progress(&self, officer_id: Uuid, campaign_id: Uuid, day: &str) -> Result<Progress> {
        day_bounds(day)?;
        let (start, end): (String, String) = self
            .conn
            .prepare_cached("SELECT start_date, end_date FROM campaigns WHERE id = ?1")?
            .query_row([campaign_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Error::NotFound {
                    field: "campaign_id",
                    kind: "campaign",
                },
                e => e.into(),
            })?;
        let officer = officer_id.to_string();
        let counts = |from: &str, to: &str| -> Result<Counts> {
            let mut c = Counts {
                visits: self
                    .conn
                    .prepare_cached(
                        "SELECT count(*) FROM visits WHERE officer_id = ?1 AND retracted = 0
                           AND day BETWEEN ?2 AND ?3",
                    )?
                    .query_row(params![officer, from, to], |r| r.get(0))?,
                ..Counts::default()
            };
            let mut stmt = self.conn.prepare_cached(
                "SELECT step, count(DISTINCT resident_id) FROM assists
                  WHERE officer_id = ?1 AND retracted = 0 AND failure IS NULL AND day BETWEEN ?2 AND ?3
                  GROUP BY step",
            )?;
            let mut rows = stmt.query(params![officer, from, to])?;
            while let Some(row) = rows.next()? {
                let step: String = row.get(0)?;
                if let Ok(metric) = QuotaMetric::parse(&step) {
                    c.set(metric, row.get(1)?);
                }
            }
            Ok(c)
        };
        let quota = |period: &str| -> Result<Counts> {
            let mut q = Counts::default();
            let mut stmt = self.conn.prepare_cached(
                "SELECT metric, target FROM quotas WHERE campaign_id = ?1 AND subject_kind = 'officer'
                   AND subject_id = ?2 AND period = ?3",
            )?;
            let mut rows = stmt.query(params![campaign_id.to_string(), officer, period])?;
            while let Some(row) = rows.next()? {
                let metric: String = row.get(0)?;
                if let Ok(metric) = QuotaMetric::parse(&metric) {
                    q.set(metric, row.get::<_, Option<i64>>(1)?.unwrap_or(0));
                }
            }
            Ok(q)
        };
        Ok(Progress {
            day: counts(day, day)?,
            day_quota: quota(day)?,
            campaign: counts(&start, &end)?,
            campaign_quota: quota("campaign")?,
        })
    }

    /// Failed steps counted by reason, over the officer's area (or the whole store with `None`),
    /// among residents not yet done. Every reason is listed, with zeros.
    pub fn blockers(&self, officer_id: Option<Uuid>) -> Result<Vec<BlockerCount>> {
        let sql = format!(
            "WITH {MINE},
             scope(id) AS (
               SELECT r.id FROM residents r WHERE r.deleted = 0
                  AND (?1 IS NULL OR r.household_id IN (SELECT id FROM mine)))
             SELECT a.failure, count(DISTINCT a.resident_id), count(*)
               FROM assists a JOIN scope ON scope.id = a.resident_id
               LEFT JOIN account_state s ON s.resident_id = a.resident_id
              WHERE a.retracted = 0 AND a.failure IS NOT NULL AND coalesce(s.need, 'no_account') != 'done'
              GROUP BY a.failure"
        );
        let mut out: Vec<BlockerCount> = FailureReason::ALL
            .iter()
            .map(|r| BlockerCount {
                reason: *r,
                residents: 0,
                attempts: 0,
            })
            .collect();
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([officer_id.map(|o| o.to_string())])?;
        while let Some(row) = rows.next()? {
            let reason: String = row.get(0)?;
            if let Some(b) = out.iter_mut().find(|b| b.reason.as_str() == reason) {
                b.residents = row.get(1)?;
                b.attempts = row.get(2)?;
            }
        }
        Ok(out)
    }
}
