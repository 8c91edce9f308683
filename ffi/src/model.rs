//! The domain as the bindings see it: records and enums mirroring the core's types, with
//! conversions and nothing else.
//!
//! Mirrors rather than `derive(uniffi::…)` on the core's own types keep the core free of FFI,
//! and let the foreign shape differ where a language needs it: ids cross as text (a UUID),
//! dates as `YYYY-MM-DD`, times as Unix milliseconds, and names avoid platform types (`Progress`
//! is Foundation's in Swift, so the progress record is `OfficerProgress`; a position is a
//! `GeoPoint`, not Android's `Location`).

use crate::error::{parse_id, DoorstepError};
use doorstep_core as core;

/// Mirror a core enum with the same variants, and convert both ways.
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident => $core:path { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
        impl From<$name> for $core {
            fn from(v: $name) -> Self { match v { $($name::$variant => <$core>::$variant),+ } }
        }
        impl From<$core> for $name {
            fn from(v: $core) -> Self { match v { $(<$core>::$variant => $name::$variant),+ } }
        }
    };
}

mirror_enum! {
    /// What happened at the door.
    VisitOutcome => core::VisitOutcome {
        /// Somebody was met and talked to.
        Met,
        /// Nobody opened.
        NobodyHome,
        /// The household no longer lives there.
        MovedAway,
        /// The household refused.
        Refused,
        /// Asked to come back (`revisit_at_ms` is required).
        ComeBack,
    }
}

mirror_enum! {
    /// A step of help towards an activated VNeID account.
    AssistStep => core::AssistStep {
        /// Guided through level-1 self-registration.
        Level1Guided,
        /// Level-1 account activated.
        Level1Activated,
        /// Level-2 application received at a receiving point.
        Level2Received,
        /// Level-2 account activated.
        Level2Activated,
        /// Guided to the National Public Service Portal.
        PortalGuided,
    }
}

mirror_enum! {
    /// Why a step failed.
    FailureReason => core::FailureReason {
        /// The SIM is not in the resident's own name.
        PhoneNotOwnName,
        /// The OTP never arrived.
        OtpNotReceived,
        /// No chip ID card.
        NoChipIdCard,
        /// The account is bound to another device.
        BoundToOtherDevice,
        /// Anything else (say what in the note).
        Other,
    }
}

mirror_enum! {
    /// What help a resident still needs.
    Need => core::Need {
        /// Nothing recorded yet.
        NoAccount,
        /// Level 1 started, not activated.
        Level1Pending,
        /// Level-2 application still to be taken.
        Level2ToTake,
        /// Level-2 activation still to do.
        Level2ToActivate,
        /// Still to be guided to the portal.
        PortalGuidance,
        /// Nothing left to do.
        Done,
    }
}

mirror_enum! {
    /// An officer's role.
    Role => core::Role {
        /// Area police officer or volunteer in the field.
        Field,
        /// Commune police lead at the station.
        CommuneLead,
        /// District command.
        District,
        /// Province command.
        Province,
    }
}

mirror_enum! {
    /// The level of an administrative unit.
    UnitLevel => core::UnitLevel {
        /// Province (tỉnh).
        Province,
        /// District (huyện, thị xã, thành phố).
        District,
        /// Commune, ward or township (xã, phường, thị trấn).
        Commune,
        /// Village or quarter (thôn, khu phố).
        Village,
    }
}

/// An administrative unit to add or edit (`FieldStore::put_unit`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct AdminUnit {
    /// Official code (GSO); a village: `<commune code>-<number>`, e.g. `22852-01`.
    pub code: String,
    /// The parent's code, one level up; none only for a province.
    pub parent_code: Option<String>,
    /// Level.
    pub level: UnitLevel,
    /// Kind as the official list says (`xã`, `phường`, `thôn`…).
    pub kind: String,
    /// Official name.
    pub name: String,
}

/// A position in millionths of a degree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct GeoPoint {
    /// Latitude × 10⁶.
    pub lat_e6: i32,
    /// Longitude × 10⁶.
    pub lon_e6: i32,
}

/// A visit to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewVisit {
    /// The household visited (UUID).
    pub household_id: String,
    /// Who visited (UUID).
    pub officer_id: String,
    /// What happened.
    pub outcome: VisitOutcome,
    /// When (Unix ms); none means now.
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
    /// Required when the outcome is `ComeBack`, refused otherwise.
    #[uniffi(default = None)]
    pub revisit_at_ms: Option<i64>,
    /// Free text (no ID numbers, please).
    #[uniffi(default = None)]
    pub note: Option<String>,
    /// Where, if the phone knows.
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
}

impl TryFrom<NewVisit> for core::NewVisit {
    type Error = DoorstepError;
    fn try_from(v: NewVisit) -> Result<Self, DoorstepError> {
        Ok(core::NewVisit {
            household_id: parse_id("household_id", &v.household_id)?,
            officer_id: parse_id("officer_id", &v.officer_id)?,
            at_ms: v.at_ms,
            outcome: v.outcome.into(),
            revisit_at_ms: v.revisit_at_ms,
            note: v.note,
            location: v.location.map(|l| core::Location {
                lat_e6: l.lat_e6,
                lon_e6: l.lon_e6,
            }),
        })
    }
}

/// An assistance step to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewAssist {
    /// The resident helped (UUID).
    pub resident_id: String,
    /// Who helped (UUID).
    pub officer_id: String,
    /// Which step.
    pub step: AssistStep,
    /// None if the step succeeded, else why it failed.
    #[uniffi(default = None)]
    pub failure: Option<FailureReason>,
    /// Required for a successful `Level2Received`.
    #[uniffi(default = None)]
    pub receiving_point: Option<String>,
    /// When (Unix ms); none means now.
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
    /// Free text.
    #[uniffi(default = None)]
    pub note: Option<String>,
}

impl TryFrom<NewAssist> for core::NewAssist {
    type Error = DoorstepError;
    fn try_from(a: NewAssist) -> Result<Self, DoorstepError> {
        Ok(core::NewAssist {
            resident_id: parse_id("resident_id", &a.resident_id)?,
            officer_id: parse_id("officer_id", &a.officer_id)?,
            at_ms: a.at_ms,
            step: a.step.into(),
            failure: a.failure.map(Into::into),
            receiving_point: a.receiving_point,
            note: a.note,
        })
    }
}

/// A campaign to create or update.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Campaign {
    /// Its id (UUID; `new_id()` makes one).
    pub id: String,
    /// Name.
    pub name: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// Accounts to activate.
    pub target: i64,
    /// The unit it covers (a unit code).
    pub unit_code: String,
}

/// An officer to create or update.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Officer {
    /// Their id (UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Their unit (a unit code).
    pub unit_code: String,
}

/// A roster row refused by an import.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectedRow {
    /// Line number in the file (1 is the header).
    pub line: i64,
    /// Why (names the column, never echoes the value).
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: i64,
    /// Rows accepted.
    pub accepted: i64,
    /// Households created or changed.
    pub households_changed: i64,
    /// Residents (or units) created or changed.
    pub residents_changed: i64,
    /// Rows already as the store holds them.
    pub unchanged: i64,
    /// Rows refused, with reasons.
    pub rejected: Vec<RejectedRow>,
}

impl From<core::roster::ImportReport> for ImportReport {
    fn from(r: core::roster::ImportReport) -> Self {
        ImportReport {
            rows: count(r.rows as u64),
            accepted: count(r.accepted as u64),
            households_changed: count(r.households_changed as u64),
            residents_changed: count(r.residents_changed as u64),
            unchanged: count(r.unchanged as u64),
            rejected: r
                .rejected
                .into_iter()
                .map(|x| RejectedRow {
                    line: count(x.line),
                    reason: x.reason,
                })
                .collect(),
        }
    }
}

/// A household in an officer's list for the day.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HouseholdToday {
    /// Household id.
    pub id: String,
    /// Household code.
    pub code: String,
    /// Village code.
    pub village_code: String,
    /// Address.
    pub address: Option<String>,
    /// Residents not yet done.
    pub residents_needing_help: i64,
    /// When the latest (non-retracted) visit was, Unix ms.
    pub last_visit_at_ms: Option<i64>,
    /// What happened at the latest visit.
    pub last_visit_outcome: Option<VisitOutcome>,
    /// When the household asked to be visited again.
    pub revisit_at_ms: Option<i64>,
    /// Whether a visit happened on the day asked about.
    pub visited_today: bool,
}

impl From<core::query::HouseholdToday> for HouseholdToday {
    fn from(h: core::query::HouseholdToday) -> Self {
        HouseholdToday {
            id: h.id.to_string(),
            code: h.code,
            village_code: h.village_code,
            address: h.address,
            residents_needing_help: h.residents_needing_help,
            last_visit_at_ms: h.last_visit.map(|(t, _)| t),
            last_visit_outcome: h.last_visit.map(|(_, o)| o.into()),
            revisit_at_ms: h.revisit_at_ms,
            visited_today: h.visited_today,
        }
    }
}

/// A resident still needing help.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ResidentNeed {
    /// Resident id.
    pub id: String,
    /// Household id.
    pub household_id: String,
    /// Full name.
    pub full_name: String,
    /// What help is needed next.
    pub need: Need,
    /// Why the latest attempt failed, if it did.
    pub last_failure: Option<FailureReason>,
}

impl From<core::query::ResidentNeed> for ResidentNeed {
    fn from(r: core::query::ResidentNeed) -> Self {
        ResidentNeed {
            id: r.id.to_string(),
            household_id: r.household_id.to_string(),
            full_name: r.full_name,
            need: r.need.into(),
            last_failure: r.last_failure.map(Into::into),
        }
    }
}

/// A search result.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SearchHit {
    /// Resident id.
    pub id: String,
    /// Household id.
    pub household_id: String,
    /// Full name.
    pub full_name: String,
    /// Birth date (`YYYY-MM-DD` or `YYYY`).
    pub birth_date: Option<String>,
    /// What help is needed next.
    pub need: Need,
    /// Whether the query matched with its diacritics (these come first).
    pub exact: bool,
}

impl From<core::query::SearchHit> for SearchHit {
    fn from(h: core::query::SearchHit) -> Self {
        SearchHit {
            id: h.id.to_string(),
            household_id: h.household_id.to_string(),
            full_name: h.full_name,
            birth_date: h.birth_date,
            need: h.need.into(),
            exact: h.exact,
        }
    }
}

/// Counts per quota metric.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct Counts {
    /// Visits made.
    pub visits: i64,
    /// Residents activated at level 1.
    pub level1_activated: i64,
    /// Level-2 applications received.
    pub level2_received: i64,
    /// Residents activated at level 2.
    pub level2_activated: i64,
    /// Residents guided to the portal.
    pub portal_guided: i64,
}

impl From<core::query::Counts> for Counts {
    fn from(c: core::query::Counts) -> Self {
        Counts {
            visits: c.visits,
            level1_activated: c.level1_activated,
            level2_received: c.level2_received,
            level2_activated: c.level2_activated,
            portal_guided: c.portal_guided,
        }
    }
}

/// An officer's progress against their quotas.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct OfficerProgress {
    /// Done on the day.
    pub day: Counts,
    /// The day's quota (0 where none is set).
    pub day_quota: Counts,
    /// Done over the campaign.
    pub campaign: Counts,
    /// The campaign's quota (0 where none is set).
    pub campaign_quota: Counts,
}

impl From<core::query::Progress> for OfficerProgress {
    fn from(p: core::query::Progress) -> Self {
        OfficerProgress {
            day: p.day.into(),
            day_quota: p.day_quota.into(),
            campaign: p.campaign.into(),
            campaign_quota: p.campaign_quota.into(),
        }
    }
}

/// Failures counted by reason.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct BlockerCount {
    /// The reason.
    pub reason: FailureReason,
    /// Residents not yet done whose attempts failed for it.
    pub residents: i64,
    /// Failed attempts.
    pub attempts: i64,
}

impl From<core::query::BlockerCount> for BlockerCount {
    fn from(b: core::query::BlockerCount) -> Self {
        BlockerCount {
            reason: b.reason.into(),
            residents: b.residents,
            attempts: b.attempts,
        }
    }
}

/// A count as the bindings pass it: a signed 64-bit integer (Kotlin's `Long`, Swift's `Int64`;
/// unsigned types are awkward in Kotlin and absent from Java). Saturates, never wraps.
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count the caller passed: refused if negative, `field` named.
pub(crate) fn non_negative(field: &str, n: i64) -> Result<u64, DoorstepError> {
    u64::try_from(n).map_err(|_| DoorstepError::InvalidInput {
        field: field.into(),
        expected: "zero or more".into(),
    })
}
