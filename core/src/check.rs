//! One check of every value an operation carries: [`Op::check_values`].
//!
//! [`Op::check_shape`] makes sure an operation can be merged (a `Set` names fields of its entity,
//! with values of the right type). This module makes sure every *value* is one the core's own
//! write API ([`crate::record`], [`crate::roster`]) could have written, using the same
//! validators ([`crate::validate`], the coded enums' `parse`) with the same limits. A sync
//! server calls it for every operation a device pushes and refuses the operation when it fails,
//! so that a modified or buggy client cannot store a 20,000-character name, a birth date
//! `not-a-date` or a visit dated 2017 for every other device to receive.
//!
//! # The rules
//!
//! A value must be in the **canonical form** the core stores, not merely acceptable input:
//! texts NFC, trimmed, with single spaces ([`check_text`]'s output), notes trimmed NFC
//! ([`check_note`]'s output), codes trimmed ([`check_code`]), a birth date as `YYYY-MM-DD` or
//! `YYYY` ([`parse_birth_date`] then `to_canonical`), an ID number as its digits
//! ([`parse_id_number`]), a phone as `0xxxxxxxxx` ([`normalize_phone`]), a gender as `male` or
//! `female` ([`parse_gender`] then `as_str`), ids as lowercase hyphenated UUIDs. `Null` only
//! where the write API clears a field (a unit's parent, a household's address, head and note, a
//! resident's gender, ID number, phone, relation, note and agency). Where one operation carries
//! two values that the write API checks against each other, they are checked together: a unit's
//! level and parent (only a province has none), a resident's ID number against the birth year
//! and gender, a campaign's end not before its start, an assignment's or quota's id against its
//! kind. A value the operation does not carry is not looked up: this check sees the operation
//! alone (the store's state is the caller's business, as for [`in_campaign_days`]).
//!
//! Facts are checked as the `record_*` functions check them: notes, places and receiving points
//! by the same text rules; a `come_back` visit has a revisit time after the visit and no other
//! outcome has one; a successful `level2_received` step names its receiving point; a session
//! ends on the day it starts, not before it; counts within [`MAX_SESSION_APPLICATIONS`] and
//! [`MAX_PEOPLE_REACHED`]; positions within ±90°/±180°. Every instant (and every campaign or
//! quota date) lies within [`MIN_INSTANT_MS`] (2020-01-01 in Vietnam, before any VNeID campaign)
//! and [`MAX_INSTANT_MS`] (2100-01-01 in Vietnam): a wider bound than the campaign's days
//! ([`in_campaign_days`], which needs the store) that no honest phone clock reaches.
//!
//! # Errors
//!
//! [`Error::Invalid`] naming the field and the accepted form, never the value
//! ([`Error::invalid_field`] gives the name, for a server's `invalid:<field>` reason). Field
//! names: a `Set` field is named by its stable code ([`Field::as_str`]: `full_name`,
//! `birth_date`, `roster_account`…), a unit's key is `code`; a fact's member is
//! `<fact>.<member>` as on the wire (`visit.note`, `assist.receiving_point`,
//! `session.starts_at_ms`, `outreach.people_reached`, `retract.reason`).
//!
//! # Why receiving does not check values
//!
//! [`Store::apply_ops`](crate::Store::apply_ops) keeps to [`Op::check_shape`]. The server is the
//! one gate: what it accepted, every device must take, or replicas would hold different sets of
//! operations and never converge; and a newer server may accept values an older client's rules
//! do not know (a new phone prefix, a longer limit). A client refusing what the server accepted
//! would stall its sync on that operation forever.

use crate::model::{
    AssistStep, Entity, Field, Key, Location, QuotaMetric, Role, RosterStatus, UnitLevel, Value,
    VisitOutcome,
};
use crate::op::{Op, OpBody};
use crate::record::{MAX_PEOPLE_REACHED, MAX_SESSION_APPLICATIONS};
use crate::time::{local_date, local_day};
use crate::validate::{
    check_code, check_note, check_text, normalize_phone, parse_birth_date, parse_gender,
    parse_id_number, BirthDate, Gender, EXPECTED_KIND, EXPECTED_RELATION, MAX_KIND_CHARS,
    MAX_RELATION_CHARS, MAX_TEXT_CHARS,
};
use crate::{Error, Result};
use chrono::NaiveDate;
use rusqlite::Connection;
use uuid::Uuid;

/// The earliest instant an operation may carry: 2020-01-01 00:00 in Vietnam (UTC+7), Unix ms.
pub const MIN_INSTANT_MS: i64 = 1_577_811_600_000;
/// The first instant an operation may no longer carry: 2100-01-01 00:00 in Vietnam, Unix ms.
pub const MAX_INSTANT_MS: i64 = 4_102_419_600_000;
/// The largest campaign or quota target accepted (a nation's population is about 10⁸).
pub const MAX_TARGET: i64 = 1_000_000_000;

const EXPECTED_INSTANT: &str =
    "a time from 2020-01-01 to 2099-12-31 (Vietnam), Unix milliseconds (check the phone's date and time)";
const EXPECTED_DATE: &str = "a real date YYYY-MM-DD from 2020-01-01 to 2099-12-31";
const EXPECTED_CANONICAL_TEXT: &str =
    "text as the core stores it: NFC, trimmed, single spaces between words";
const EXPECTED_CANONICAL_NOTE: &str = "text as the core stores it: NFC, trimmed, not empty";
const EXPECTED_CODE: &str = "a code of 1-32 ASCII letters, digits, '-', '_' or '.', trimmed";
const EXPECTED_UUID: &str = "a UUID, lowercase and hyphenated";
const EXPECTED_FLAG: &str = "0 or 1";
const EXPECTED_TARGET: &str = "a count from 0 to 1000000000";
const EXPECTED_NOT_NULL: &str = "a value (this field cannot be cleared)";
const EXPECTED_INT: &str = "an integer";
const EXPECTED_TEXT: &str = "a text";
const EXPECTED_IN_CAMPAIGN: &str =
    "a time within the campaign's dates (check the phone's date and time)";

impl Error {
    /// The field an [`Error::Invalid`] or [`Error::NotFound`] names (`None` for other errors):
    /// what a server puts in a refusal's `invalid:<field>` reason.
    pub fn invalid_field(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { field, .. } | Error::NotFound { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl Op {
    /// Check every value the operation carries against the rules of the core's write API (see
    /// the [module documentation](crate::check)). Call it after [`Op::check_shape`]; it never
    /// panics, whatever the operation. Errors are [`Error::Invalid`] naming the first failing
    /// field, never its value.
    pub fn check_values(&self) -> Result<()> {
        match &self.body {
            OpBody::Set {
                entity,
                key,
                fields,
            } => check_set(*entity, key, fields),
            OpBody::Visit(v) => {
                instant("visit.at_ms", v.at_ms)?;
                if let Some(t) =
                    revisit_rule("visit.revisit_at_ms", v.outcome, v.at_ms, v.revisit_at_ms)?
                {
                    instant("visit.revisit_at_ms", t)?;
                }
                location_rule("visit.location", v.location)?;
                note("visit.note", v.note.as_deref())
            }
            OpBody::Assist(a) => {
                instant("assist.at_ms", a.at_ms)?;
                if let Some(p) = a.receiving_point.as_deref() {
                    text(
                        "assist.receiving_point",
                        p,
                        MAX_TEXT_CHARS,
                        EXPECTED_RECEIVING_POINT,
                    )?;
                }
                receiving_point_rule(
                    "assist.receiving_point",
                    a.step,
                    a.failure.is_some(),
                    a.receiving_point.is_some(),
                )?;
                note("assist.note", a.note.as_deref())
            }
            OpBody::Retract { reason, .. } => note("retract.reason", reason.as_deref()),
            OpBody::Session(s) => {
                code("session.unit_code", &s.unit_code)?;
                instant("session.starts_at_ms", s.starts_at_ms)?;
                session_end_rule("session.ends_at_ms", s.starts_at_ms, s.ends_at_ms)?;
                applications_rule("session.applications", s.applications)?;
                text("session.place", &s.place, MAX_TEXT_CHARS, EXPECTED_PLACE)?;
                note("session.note", s.note.as_deref())
            }
            OpBody::Outreach(o) => {
                code("outreach.unit_code", &o.unit_code)?;
                instant("outreach.at_ms", o.at_ms)?;
                people_rule("outreach.people_reached", o.people_reached)?;
                text("outreach.place", &o.place, MAX_TEXT_CHARS, EXPECTED_PLACE)?;
                note("outreach.note", o.note.as_deref())
            }
            OpBody::Redact(r) => code("redaction.area", &r.area),
        }
    }

    /// Whether the operation is a fact with an instant to check against the campaigns' days
    /// ([`Op::campaign_instants`] is not empty), without building the list.
    pub fn is_fact_with_instant(&self) -> bool {
        matches!(
            self.body,
            OpBody::Visit(_) | OpBody::Assist(_) | OpBody::Session(_) | OpBody::Outreach(_)
        )
    }

    /// The instants of a fact that must fall on a campaign's day, each with its field name:
    /// a visit's `at_ms` (and its `revisit_at_ms`), an assistance step's `at_ms`, a session's
    /// `starts_at_ms` (its end is on the same day), an outreach event's `at_ms`. None for a
    /// `Set` or a retraction. The write API checks exactly these ([`in_campaign_days`]).
    pub fn campaign_instants(&self) -> Vec<(&'static str, i64)> {
        match &self.body {
            OpBody::Visit(v) => std::iter::once(("visit.at_ms", v.at_ms))
                .chain(v.revisit_at_ms.map(|t| ("visit.revisit_at_ms", t)))
                .collect(),
            OpBody::Assist(a) => vec![("assist.at_ms", a.at_ms)],
            OpBody::Session(s) => vec![("session.starts_at_ms", s.starts_at_ms)],
            OpBody::Outreach(o) => vec![("outreach.at_ms", o.at_ms)],
            OpBody::Set { .. } | OpBody::Retract { .. } | OpBody::Redact(_) => Vec::new(),
        }
    }

    /// Refuse a fact whose [`Op::campaign_instants`] fall outside every campaign's days (when any
    /// campaign is defined in `conn`'s `campaigns` table): [`Error::Invalid`] naming the instant.
    pub fn check_campaign_days(&self, conn: &Connection) -> Result<()> {
        if !self.is_fact_with_instant() {
            return Ok(());
        }
        self.check_campaign_days_in(&CampaignDays::load(conn)?)
    }

    /// [`Op::check_campaign_days`] against campaigns read beforehand (a server checking a
    /// batch reads them once).
    pub fn check_campaign_days_in(&self, days: &CampaignDays) -> Result<()> {
        for (field, at_ms) in self.campaign_instants() {
            if !days.contains(at_ms) {
                return Err(Error::invalid(field, EXPECTED_IN_CAMPAIGN));
            }
        }
        Ok(())
    }
}

/// The campaigns' days as a store holds them, read once: [`in_campaign_days`] without a query
/// per instant.
#[derive(Debug, Clone, Default)]
pub struct CampaignDays {
    /// Whether any campaign has dates (if none, every instant is accepted).
    any: bool,
    /// `(start_date, end_date)` of each campaign with dates, `YYYY-MM-DD`, inclusive.
    ranges: Vec<(String, Option<String>)>,
}

impl CampaignDays {
    /// No campaign: every instant is accepted.
    pub const EMPTY: CampaignDays = CampaignDays {
        any: false,
        ranges: Vec::new(),
    };

    /// Read the `campaigns` table of `conn`.
    pub fn load(conn: &Connection) -> Result<CampaignDays> {
        let ranges: Vec<(String, Option<String>)> = conn
            .prepare_cached(
                "SELECT start_date, end_date FROM campaigns WHERE start_date IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(CampaignDays {
            any: !ranges.is_empty(),
            ranges,
        })
    }

    /// Whether `at_ms` falls on a local (UTC+7) day from some campaign's start to its end
    /// (inclusive), or no campaign has dates.
    pub fn contains(&self, at_ms: i64) -> bool {
        if !self.any {
            return true;
        }
        let day = local_day(at_ms);
        let day = day.as_str();
        self.ranges
            .iter()
            .any(|(start, end)| start.as_str() <= day && end.as_deref().is_some_and(|e| day <= e))
    }
}

/// The campaign rule: whether the instant `at_ms` falls on a local (UTC+7) day from some
/// campaign's `start_date` to its `end_date` (inclusive) in `conn`'s `campaigns` table, or no
/// campaign with dates is defined at all (a store that has not received its campaign yet).
///
/// It applies to a visit's and an assistance step's `at_ms` (and a `come_back` visit's
/// `revisit_at_ms`), a receiving session's `starts_at_ms` and an outreach event's `at_ms`
/// ([`Op::campaign_instants`]). The write API refuses facts outside (`record_*`), and a server
/// can ask the same on its own connection to the core tables ([`Op::check_campaign_days`]).
pub fn in_campaign_days(conn: &Connection, at_ms: i64) -> Result<bool> {
    Ok(CampaignDays::load(conn)?.contains(at_ms))
}

/// [`in_campaign_days`] as an error naming `field` when the instant is outside.
pub(crate) fn require_in_campaign(
    conn: &Connection,
    field: &'static str,
    at_ms: i64,
) -> Result<()> {
    if in_campaign_days(conn, at_ms)? {
        Ok(())
    } else {
        Err(Error::invalid(field, EXPECTED_IN_CAMPAIGN))
    }
}

// ---------------------------------------------------------------------------------------------
// Fact rules, shared with the write API (`record.rs`), each under the caller's field name
// ---------------------------------------------------------------------------------------------

/// A `come_back` visit has a revisit time after the visit; no other outcome has one. Returns the
/// revisit time, which must then fall on a campaign day too.
pub(crate) fn revisit_rule(
    field: &'static str,
    outcome: VisitOutcome,
    at_ms: i64,
    revisit_at_ms: Option<i64>,
) -> Result<Option<i64>> {
    match (outcome, revisit_at_ms) {
        (VisitOutcome::ComeBack, Some(t)) if t > at_ms => Ok(Some(t)),
        (VisitOutcome::ComeBack, _) => Err(Error::invalid(
            field,
            "a time after the visit, required when the outcome is come_back",
        )),
        (_, Some(_)) => Err(Error::invalid(
            field,
            "no revisit time unless the outcome is come_back",
        )),
        (_, None) => Ok(None),
    }
}

/// A position within ±90° latitude and ±180° longitude.
pub(crate) fn location_rule(field: &'static str, location: Option<Location>) -> Result<()> {
    match location {
        Some(l)
            if !(-90_000_000..=90_000_000).contains(&l.lat_e6)
                || !(-180_000_000..=180_000_000).contains(&l.lon_e6) =>
        {
            Err(Error::invalid(
                field,
                "latitude within ±90° and longitude within ±180°, in millionths of a degree",
            ))
        }
        _ => Ok(()),
    }
}

/// A successful `level2_received` step names its receiving point.
pub(crate) fn receiving_point_rule(
    field: &'static str,
    step: AssistStep,
    failed: bool,
    has_point: bool,
) -> Result<()> {
    if step == AssistStep::Level2Received && !failed && !has_point {
        return Err(Error::invalid(
            field,
            "the receiving point where the level-2 application was received",
        ));
    }
    Ok(())
}

/// What a receiving point must be.
pub(crate) const EXPECTED_RECEIVING_POINT: &str =
    "the receiving point's name or code, at most 300 characters";
/// What a session's or outreach event's place must be.
pub(crate) const EXPECTED_PLACE: &str = "a place name of 1-300 characters";

/// A session ends on the day it starts, not before it.
pub(crate) fn session_end_rule(
    field: &'static str,
    starts_at_ms: i64,
    ends_at_ms: i64,
) -> Result<()> {
    if ends_at_ms < starts_at_ms || local_day(ends_at_ms) != local_day(starts_at_ms) {
        return Err(Error::invalid(
            field,
            "a time not before the start, on the same day",
        ));
    }
    Ok(())
}

/// A session's applications within [`MAX_SESSION_APPLICATIONS`].
pub(crate) fn applications_rule(field: &'static str, n: u32) -> Result<()> {
    canonical(
        field,
        n <= MAX_SESSION_APPLICATIONS,
        "a count of applications from 0 to 5000",
    )
}

/// An outreach event's people reached within [`MAX_PEOPLE_REACHED`].
pub(crate) fn people_rule(field: &'static str, n: u32) -> Result<()> {
    canonical(
        field,
        n <= MAX_PEOPLE_REACHED,
        "a count of people from 0 to 1000000",
    )
}

// ---------------------------------------------------------------------------------------------
// Set operations
// ---------------------------------------------------------------------------------------------

fn check_set(entity: Entity, key: &Key, fields: &[(Field, Value)]) -> Result<()> {
    if let Key::Code(c) = key {
        code("code", c)?;
    }
    for (field, value) in fields {
        check_field(entity, *field, value)?;
    }
    let get = |f: Field| fields.iter().find(|(g, _)| *g == f).map(|(_, v)| v);
    match entity {
        Entity::Unit => {
            if let (Some(Value::Text(level)), Some(parent)) =
                (get(Field::Level), get(Field::Parent))
            {
                let province = level == UnitLevel::Province.as_str();
                if province != (*parent == Value::Null) {
                    return Err(Error::invalid(
                        "parent_code",
                        "the parent unit's code (none for a province only)",
                    ));
                }
            }
        }
        Entity::Resident => {
            if let Some(Value::Text(n)) = get(Field::IdNumber) {
                let year = match get(Field::BirthDate) {
                    Some(Value::Text(b)) => {
                        parse_birth_date("birth_date", b).ok().map(|b| b.year())
                    }
                    _ => None,
                };
                let gender = match get(Field::Gender) {
                    Some(Value::Text(g)) => parse_gender("gender", g).ok(),
                    _ => None,
                };
                id_number(n, year, gender)?;
            }
        }
        Entity::Campaign => {
            if let (Some(Value::Text(s)), Some(Value::Text(e))) =
                (get(Field::Start), get(Field::End))
            {
                if e < s {
                    return Err(Error::invalid("end_date", "a date on or after start_date"));
                }
            }
        }
        Entity::Assignment => {
            if let (Some(Value::Text(k)), Some(Value::Text(id))) =
                (get(Field::TargetKind), get(Field::TargetId))
            {
                match k.as_str() {
                    "village" => code("target_id", id)?,
                    _ => uuid("target_id", id)?,
                }
            }
        }
        Entity::Quota => {
            if let (Some(Value::Text(k)), Some(Value::Text(id))) =
                (get(Field::SubjectKind), get(Field::SubjectId))
            {
                match k.as_str() {
                    "unit" => code("subject_id", id)?,
                    _ => uuid("subject_id", id)?,
                }
            }
        }
        Entity::Household | Entity::Officer => {}
    }
    Ok(())
}

/// The longest retention after a campaign's end, in days (ten years).
pub const MAX_RETENTION_DAYS: i64 = 3650;
const EXPECTED_RETENTION: &str = "a number of days from 0 to 3650";

/// One field's value, alone. Cross-field rules are in [`check_set`].
fn check_field(entity: Entity, field: Field, value: &Value) -> Result<()> {
    let name = field.as_str();
    if field.is_int() {
        let v = match value {
            Value::Int(v) => *v,
            Value::Null => return Err(Error::invalid(name, EXPECTED_NOT_NULL)),
            Value::Text(_) => return Err(Error::invalid(name, EXPECTED_INT)),
        };
        let ok = match field {
            Field::Target => (0..=MAX_TARGET).contains(&v),
            Field::Retention => (0..=MAX_RETENTION_DAYS).contains(&v),
            _ => v == 0 || v == 1, // deleted, active
        };
        return if ok {
            Ok(())
        } else if field == Field::Retention {
            Err(Error::invalid(name, EXPECTED_RETENTION))
        } else if field == Field::Target {
            Err(Error::invalid(name, EXPECTED_TARGET))
        } else {
            Err(Error::invalid(name, EXPECTED_FLAG))
        };
    }
    let s = match value {
        Value::Text(s) => s.as_str(),
        Value::Null if clearable(entity, field) => return Ok(()),
        Value::Null => return Err(Error::invalid(name, EXPECTED_NOT_NULL)),
        Value::Int(_) => return Err(Error::invalid(name, EXPECTED_TEXT)),
    };
    use Field as F;
    match field {
        F::Parent | F::Village | F::Unit | F::Code => code(name, s),
        F::Head | F::Household | F::Officer | F::Campaign => uuid(name, s),
        F::TargetId | F::SubjectId => uuid(name, s)
            .or_else(|_| code(name, s))
            .map_err(|_| Error::invalid(name, "a UUID (lowercase, hyphenated) or a unit code")),
        F::Level => named(name, UnitLevel::parse(s)).map(drop),
        F::Role => named(name, Role::parse(s)).map(drop),
        F::Account => named(name, RosterStatus::parse(s)).map(drop),
        F::Metric => named(name, QuotaMetric::parse(s)).map(drop),
        F::TargetKind => one_of(
            name,
            s,
            &["village", "household"],
            "one of village, household",
        ),
        F::SubjectKind => one_of(name, s, &["officer", "unit"], "one of officer, unit"),
        F::Period if s == "campaign" => Ok(()),
        F::Period => date(name, s).map_err(|_| {
            Error::invalid(
                name,
                "campaign, or a real date YYYY-MM-DD from 2020 to 2099",
            )
        }),
        F::Start | F::End => date(name, s),
        F::Note => note(name, Some(s)),
        F::BirthDate => birth_date(s),
        F::Gender => gender(s),
        F::IdNumber => id_number(s, None, None),
        F::Phone => phone(s),
        F::FullName => text(name, s, MAX_TEXT_CHARS, "a full name of 1-300 characters"),
        F::Address => text(
            name,
            s,
            MAX_TEXT_CHARS,
            "an address of at most 300 characters",
        ),
        F::Relation => text(name, s, MAX_RELATION_CHARS, EXPECTED_RELATION),
        F::Agency => text(
            name,
            s,
            MAX_TEXT_CHARS,
            "an agency name of at most 300 characters",
        ),
        F::Kind => text(name, s, MAX_KIND_CHARS, EXPECTED_KIND),
        F::Name => text(
            name,
            s,
            MAX_TEXT_CHARS,
            match entity {
                Entity::Unit => "a unit name of 1-300 characters",
                Entity::Campaign => "a campaign name of 1-300 characters",
                _ => "a name of 1-300 characters",
            },
        ),
        // Integer fields were handled above.
        F::Deleted | F::Target | F::Active | F::Retention => Ok(()),
    }
}

/// Whether the write API ever clears `field` of `entity` (writes `Null`).
fn clearable(entity: Entity, field: Field) -> bool {
    use Field as F;
    match entity {
        Entity::Unit => field == F::Parent,
        Entity::Household => matches!(field, F::Address | F::Head | F::Note),
        Entity::Resident => matches!(
            field,
            F::Gender | F::IdNumber | F::Phone | F::Relation | F::Note | F::Agency
        ),
        Entity::Campaign | Entity::Officer | Entity::Assignment | Entity::Quota => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Values: the validators of `validate`, plus "already in canonical form"
// ---------------------------------------------------------------------------------------------

/// Rename an [`Error::Invalid`]'s field (the coded enums name theirs after the API argument).
fn named<T>(field: &'static str, r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Invalid { expected, .. } => Error::invalid(field, expected),
        other => other,
    })
}

fn canonical(field: &'static str, ok: bool, expected: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, expected))
    }
}

fn text(field: &'static str, s: &str, max: usize, expected: &'static str) -> Result<()> {
    let clean = check_text(field, s, max, expected)?;
    canonical(field, clean == s, EXPECTED_CANONICAL_TEXT)
}

fn note(field: &'static str, s: Option<&str>) -> Result<()> {
    let Some(s) = s else { return Ok(()) };
    let clean = check_note(field, Some(s))?;
    canonical(field, clean.as_deref() == Some(s), EXPECTED_CANONICAL_NOTE)
}

fn code(field: &'static str, s: &str) -> Result<()> {
    let clean = check_code(field, s)?;
    canonical(field, clean == s, EXPECTED_CODE)
}

fn uuid(field: &'static str, s: &str) -> Result<()> {
    let ok = Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s);
    canonical(field, ok, EXPECTED_UUID)
}

fn one_of(field: &'static str, s: &str, all: &[&str], expected: &'static str) -> Result<()> {
    canonical(field, all.contains(&s), expected)
}

fn instant(field: &'static str, at_ms: i64) -> Result<()> {
    canonical(
        field,
        (MIN_INSTANT_MS..MAX_INSTANT_MS).contains(&at_ms),
        EXPECTED_INSTANT,
    )
}

fn date(field: &'static str, s: &str) -> Result<()> {
    let ok = NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok_and(|d| {
        d.format("%Y-%m-%d").to_string() == s
            && (local_date(MIN_INSTANT_MS)..local_date(MAX_INSTANT_MS)).contains(&d)
    });
    canonical(field, ok, EXPECTED_DATE)
}

fn birth_date(s: &str) -> Result<()> {
    let parsed: BirthDate = parse_birth_date("birth_date", s)?;
    canonical(
        "birth_date",
        parsed.to_canonical() == s,
        "birth date as the core stores it: YYYY-MM-DD or YYYY",
    )
}

fn gender(s: &str) -> Result<()> {
    let parsed = parse_gender("gender", s)?;
    canonical(
        "gender",
        parsed.as_str() == s,
        "gender as the core stores it: male or female",
    )
}

fn id_number(s: &str, birth_year: Option<i32>, gender: Option<Gender>) -> Result<()> {
    let parsed = parse_id_number("id_number", s, birth_year, gender)?;
    canonical(
        "id_number",
        parsed.as_str() == s,
        "ID number as the core stores it: 12 or 9 digits, no spaces",
    )
}

fn phone(s: &str) -> Result<()> {
    let national = normalize_phone("phone", s)?;
    canonical(
        "phone",
        national == s,
        "phone number as the core stores it: 10 digits starting with 0",
    )
}
