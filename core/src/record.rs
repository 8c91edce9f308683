//! The write API: every call validates its input, then commits its operations and their
//! effects in one durable transaction (see [`crate::store`] for what "durable" promises).
//!
//! Validation happens before anything is written, so a rejected call changes nothing. Errors
//! name the field and the accepted form, never the value.

use crate::check;
use crate::model::{
    Assist, AssistStep, Entity, FailureReason, Field, Key, Location, Outreach, OutreachKind,
    QuotaMetric, Role, RosterStatus, Session, SessionKind, UnitLevel, Value, Visit, VisitOutcome,
};
use crate::op::OpBody;
use crate::store::Store;
use crate::validate;
use crate::{Error, Result};
use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use crate::validate::{check_code, check_note, check_text};
pub use crate::validate::{MAX_NOTE_CHARS, MAX_TEXT_CHARS};

/// A visit to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    /// The household visited.
    pub household_id: Uuid,
    /// Who visited.
    pub officer_id: Uuid,
    /// When (Unix ms); `None` means now.
    pub at_ms: Option<i64>,
    /// What happened.
    pub outcome: VisitOutcome,
    /// Required for [`VisitOutcome::ComeBack`], refused otherwise.
    pub revisit_at_ms: Option<i64>,
    /// Free text.
    pub note: Option<String>,
    /// Where.
    pub location: Option<Location>,
}

/// An assistance step to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssist {
    /// The resident helped.
    pub resident_id: Uuid,
    /// Who helped.
    pub officer_id: Uuid,
    /// When (Unix ms); `None` means now.
    pub at_ms: Option<i64>,
    /// Which step.
    pub step: AssistStep,
    /// `None` if it succeeded.
    pub failure: Option<FailureReason>,
    /// Required for a successful [`AssistStep::Level2Received`].
    pub receiving_point: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// A receiving-point session to record (schema v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The commune the session served (a unit code at commune level).
    pub unit_code: String,
    /// The team lead.
    pub officer_id: Uuid,
    /// Fixed or mobile.
    pub kind: SessionKind,
    /// Where (a place name: village office, market…).
    pub place: String,
    /// Start (Unix ms).
    pub starts_at_ms: i64,
    /// End (Unix ms), not before the start and on the same local day.
    pub ends_at_ms: i64,
    /// Level-2 applications received.
    pub applications: u32,
    /// Free text.
    pub note: Option<String>,
}

/// An outreach event to record (schema v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutreach {
    /// The commune or village it was held in (a unit code).
    pub unit_code: String,
    /// Who organised it.
    pub officer_id: Uuid,
    /// Meeting, loudspeaker broadcast or volunteers' training.
    pub kind: OutreachKind,
    /// When (Unix ms); `None` means now.
    pub at_ms: Option<i64>,
    /// Where (a place name).
    pub place: String,
    /// People reached.
    pub people_reached: u32,
    /// Free text.
    pub note: Option<String>,
}

/// Most applications one receiving session can take in (a day's work of a team).
pub const MAX_SESSION_APPLICATIONS: u32 = 5_000;
/// Most people one outreach event can be said to reach.
pub const MAX_PEOPLE_REACHED: u32 = 1_000_000;

/// A change to a resident's mutable fields: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentEdit {
    /// Mobile number (normalised to 10 digits).
    pub phone: Option<Option<String>>,
    /// Free text.
    pub note: Option<Option<String>>,
}

/// A change to a household's mutable fields: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HouseholdEdit {
    /// Street address.
    pub address: Option<Option<String>>,
    /// Free text.
    pub note: Option<Option<String>>,
}

/// An administrative unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInput {
    /// Official code (GSO); villages: `<commune code>-<number>`.
    pub code: String,
    /// The parent's code; `None` only for a province.
    pub parent_code: Option<String>,
    /// Level.
    pub level: UnitLevel,
    /// Kind as the official list says (`ward`, `commune`, `township`, `thôn`…).
    pub kind: String,
    /// Official name, NFC.
    pub name: String,
}

/// A household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdInput {
    /// Its id (see [`crate::roster::household_id`] for the deterministic one rosters use).
    pub id: Uuid,
    /// The household's code in the population register.
    pub code: String,
    /// The village or quarter (a unit code).
    pub village_code: String,
    /// Street address.
    pub address: Option<String>,
    /// The head of household (a resident id), if known.
    pub head_id: Option<Uuid>,
}

/// A resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentInput {
    /// Its id (see [`crate::roster::resident_id`]).
    pub id: Uuid,
    /// Their household.
    pub household_id: Uuid,
    /// Full name (stored NFC).
    pub full_name: String,
    /// `YYYY-MM-DD`, `DD/MM/YYYY` or `YYYY`.
    pub birth_date: String,
    /// `nam`/`nữ`/`male`/`female`, if known.
    pub gender: Option<String>,
    /// 12-digit citizen ID or 9-digit old ID, if known.
    pub id_number: Option<String>,
    /// Mobile number, if known.
    pub phone: Option<String>,
    /// Relation to the head of household (free text: `chủ hộ`, `vợ`, `con`…).
    pub relation: Option<String>,
    /// Account state the roster claims.
    pub account: RosterStatus,
    /// For officials, civil servants and armed forces: their agency's name (schema v2).
    pub agency: Option<String>,
}

/// A campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInput {
    /// Its id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// First day (local).
    pub start_date: NaiveDate,
    /// Last day (local), inclusive.
    pub end_date: NaiveDate,
    /// Accounts to activate.
    pub target: i64,
    /// The unit it covers.
    pub unit_code: String,
}

/// An officer (or volunteer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerInput {
    /// Its id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The unit they belong to.
    pub unit_code: String,
}

/// What an assignment gives an officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTarget {
    /// Every household of a village (a unit code).
    Village(String),
    /// One household.
    Household(Uuid),
}

/// Whose quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaSubject {
    /// An officer's.
    Officer(Uuid),
    /// An area's (commune, district…).
    Unit(String),
}

/// Over what period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// One local day.
    Day(NaiveDate),
    /// The whole campaign.
    Campaign,
}

impl QuotaPeriod {
    /// `YYYY-MM-DD` or `campaign`.
    pub fn as_text(&self) -> String {
        match self {
            QuotaPeriod::Day(d) => d.format("%Y-%m-%d").to_string(),
            QuotaPeriod::Campaign => "campaign".to_owned(),
        }
    }
}

/// A quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaInput {
    /// The campaign.
    pub campaign_id: Uuid,
    /// Whose.
    pub subject: QuotaSubject,
    /// Over what period.
    pub period: QuotaPeriod,
    /// What it counts.
    pub metric: QuotaMetric,
    /// How many.
    pub target: i64,
}

/// Namespace of deterministic ids derived from content (assignments, quotas).
pub const DOORSTEP_NAMESPACE: Uuid = Uuid::from_u128(0x6d2f_1f4e_54a1_4b8e_9a57_0c1d_3e5f_7a90);

impl Store {
    fn exists(&self, sql: &str, key: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row([key], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn require(&self, sql: &str, key: &str, field: &'static str, kind: &'static str) -> Result<()> {
        if self.exists(sql, key)? {
            Ok(())
        } else {
            Err(Error::NotFound { field, kind })
        }
    }

    fn require_household(&self, id: &Uuid, field: &'static str) -> Result<()> {
        self.require(
            // `code` is NULL while only facts about the household have arrived.
            "SELECT 1 FROM households WHERE id = ?1 AND deleted = 0 AND code IS NOT NULL",
            &id.to_string(),
            field,
            "household",
        )
    }

    fn require_resident(&self, id: &Uuid) -> Result<()> {
        self.require(
            "SELECT 1 FROM residents WHERE id = ?1 AND deleted = 0",
            &id.to_string(),
            "resident_id",
            "resident",
        )
    }

    fn require_officer(&self, id: &Uuid) -> Result<()> {
        self.require(
            "SELECT 1 FROM officers WHERE id = ?1 AND deleted = 0",
            &id.to_string(),
            "officer_id",
            "officer",
        )
    }

    fn require_unit(&self, code: &str, field: &'static str) -> Result<()> {
        self.require("SELECT 1 FROM units WHERE code = ?1", code, field, "unit")
    }

    /// Refuse an instant outside every campaign's days (when any campaign is defined): the
    /// rule of [`crate::check::in_campaign_days`].
    fn require_in_campaign(&self, field: &'static str, at_ms: i64) -> Result<()> {
        crate::check::require_in_campaign(&self.conn, field, at_ms)
    }

    /// A `Set` operation for the fields whose value differs from what the store holds (none
    /// if nothing differs), so that putting the same data twice makes no operation at all.
    /// On a new entity, empty fields and `deleted = 0` are left out: they are the defaults.
    pub(crate) fn changed_fields(
        &self,
        entity: Entity,
        key: &Key,
        fields: Vec<(Field, Value)>,
    ) -> Result<Vec<OpBody>> {
        let key_text = key.to_string();
        let table = entity.table();
        let key_col = entity.key_column();
        let cols: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        let current: Option<Vec<Value>> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM {table} WHERE {key_col} = ?1",
                cols.join(", ")
            ))?
            .query_row([&key_text], |r| {
                (0..cols.len()).map(|i| r.get::<_, Value>(i)).collect()
            })
            .optional()?;
        let changed: Vec<(Field, Value)> = match current {
            None => fields
                .into_iter()
                .filter(|(f, v)| {
                    !(v == &Value::Null || (*f == Field::Deleted && v == &Value::Int(0)))
                })
                .collect(),
            Some(current) => fields
                .into_iter()
                .zip(current)
                .filter(|((_, v), c)| v != c)
                .map(|(fv, _)| fv)
                .collect(),
        };
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![OpBody::Set {
            entity,
            key: key.clone(),
            fields: changed,
        }])
    }

    /// Record a visit. Returns its id.
    pub fn record_visit(&mut self, v: NewVisit) -> Result<Uuid> {
        self.write(|s| s.visit_op(v)).map(|(_, id)| id)
    }

    fn visit_op(&self, v: NewVisit) -> Result<(Vec<OpBody>, Uuid)> {
        let at_ms = v.at_ms.unwrap_or_else(|| self.now_ms());
        self.require_household(&v.household_id, "household_id")?;
        self.require_officer(&v.officer_id)?;
        self.require_in_campaign("at", at_ms)?;
        if let Some(t) = check::revisit_rule("revisit_at", v.outcome, at_ms, v.revisit_at_ms)? {
            self.require_in_campaign("revisit_at", t)?;
        }
        check::location_rule("location", v.location)?;
        let note = check_note("note", v.note.as_deref())?;
        let id = Uuid::now_v7();
        let body = OpBody::Visit(Visit {
            id,
            household_id: v.household_id,
            officer_id: v.officer_id,
            at_ms,
            outcome: v.outcome,
            revisit_at_ms: v.revisit_at_ms,
            note,
            location: v.location,
        });
        Ok((vec![body], id))
    }

    /// Record an assistance step. Returns its id.
    pub fn record_assist(&mut self, a: NewAssist) -> Result<Uuid> {
        self.write(|s| s.assist_op(a)).map(|(_, id)| id)
    }

    fn assist_op(&self, a: NewAssist) -> Result<(Vec<OpBody>, Uuid)> {
        let at_ms = a.at_ms.unwrap_or_else(|| self.now_ms());
        self.require_resident(&a.resident_id)?;
        self.require_officer(&a.officer_id)?;
        self.require_in_campaign("at", at_ms)?;
        let point = match a.receiving_point.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(check_text(
                "receiving_point",
                p,
                MAX_TEXT_CHARS,
                check::EXPECTED_RECEIVING_POINT,
            )?),
        };
        check::receiving_point_rule(
            "receiving_point",
            a.step,
            a.failure.is_some(),
            point.is_some(),
        )?;
        let note = check_note("note", a.note.as_deref())?;
        let id = Uuid::now_v7();
        let body = OpBody::Assist(Assist {
            id,
            resident_id: a.resident_id,
            officer_id: a.officer_id,
            at_ms,
            step: a.step,
            failure: a.failure,
            receiving_point: point,
            note,
        });
        Ok((vec![body], id))
    }

    /// Record a receiving-point session. Returns its id.
    pub fn record_session(&mut self, x: NewSession) -> Result<Uuid> {
        self.write(|s| s.session_op(x)).map(|(_, id)| id)
    }

    fn session_op(&self, x: NewSession) -> Result<(Vec<OpBody>, Uuid)> {
        let unit_code = check_code("unit_code", &x.unit_code)?;
        self.require(
            "SELECT 1 FROM units WHERE code = ?1 AND level = 'commune'",
            &unit_code,
            "unit_code",
            "commune",
        )?;
        self.require_officer(&x.officer_id)?;
        self.require_in_campaign("starts_at", x.starts_at_ms)?;
        check::session_end_rule("ends_at", x.starts_at_ms, x.ends_at_ms)?;
        check::applications_rule("applications", x.applications)?;
        let place = check_text("place", &x.place, MAX_TEXT_CHARS, check::EXPECTED_PLACE)?;
        let note = check_note("note", x.note.as_deref())?;
        let id = Uuid::now_v7();
        let body = OpBody::Session(Session {
            id,
            unit_code,
            officer_id: x.officer_id,
            kind: x.kind,
            place,
            starts_at_ms: x.starts_at_ms,
            ends_at_ms: x.ends_at_ms,
            applications: x.applications,
            note,
        });
        Ok((vec![body], id))
    }

    /// Record an outreach event. Returns its id.
    pub fn record_outreach(&mut self, x: NewOutreach) -> Result<Uuid> {
        self.write(|s| s.outreach_op(x)).map(|(_, id)| id)
    }

    fn outreach_op(&self, x: NewOutreach) -> Result<(Vec<OpBody>, Uuid)> {
        let at_ms = x.at_ms.unwrap_or_else(|| self.now_ms());
        let unit_code = check_code("unit_code", &x.unit_code)?;
        self.require(
            "SELECT 1 FROM units WHERE code = ?1 AND level IN ('commune', 'village')",
            &unit_code,
            "unit_code",
            "commune or village",
        )?;
        self.require_officer(&x.officer_id)?;
        self.require_in_campaign("at", at_ms)?;
        check::people_rule("people_reached", x.people_reached)?;
        let place = check_text("place", &x.place, MAX_TEXT_CHARS, check::EXPECTED_PLACE)?;
        let note = check_note("note", x.note.as_deref())?;
        let id = Uuid::now_v7();
        let body = OpBody::Outreach(Outreach {
            id,
            unit_code,
            officer_id: x.officer_id,
            kind: x.kind,
            at_ms,
            place,
            people_reached: x.people_reached,
            note,
        });
        Ok((vec![body], id))
    }

    /// Retract a fact recorded by mistake: a visit, an assistance step, a receiving session or
    /// an outreach event. Retracting twice is harmless.
    pub fn retract(&mut self, fact_id: Uuid, reason: Option<&str>) -> Result<()> {
        let id = fact_id.to_string();
        if !self.exists("SELECT 1 FROM visits WHERE id = ?1", &id)?
            && !self.exists("SELECT 1 FROM assists WHERE id = ?1", &id)?
            && !self.exists("SELECT 1 FROM sessions WHERE id = ?1", &id)?
            && !self.exists("SELECT 1 FROM outreach WHERE id = ?1", &id)?
        {
            return Err(Error::NotFound {
                field: "fact_id",
                kind: "visit, assistance step, receiving session or outreach event",
            });
        }
        if self.exists("SELECT 1 FROM retractions WHERE fact_id = ?1", &id)? {
            return Ok(());
        }
        let reason = check_note("reason", reason)?;
        self.commit_local(vec![OpBody::Retract { fact_id, reason }])?;
        Ok(())
    }

    /// Edit a resident's phone or note. Returns how many fields changed.
    pub fn edit_resident(&mut self, id: Uuid, edit: ResidentEdit) -> Result<usize> {
        self.require_resident(&id)?;
        let mut fields = Vec::new();
        if let Some(phone) = edit.phone {
            let v = match phone.as_deref().map(str::trim) {
                None | Some("") => Value::Null,
                Some(p) => Value::Text(validate::normalize_phone("phone", p)?),
            };
            fields.push((Field::Phone, v));
        }
        if let Some(note) = edit.note {
            fields.push((
                Field::Note,
                Value::opt_text(check_note("note", note.as_deref())?.as_deref()),
            ));
        }
        let ops = self.changed_fields(Entity::Resident, &Key::Uuid(id), fields)?;
        Ok(self.commit_local(ops)?.len())
    }

    /// Edit a household's address or note. Returns how many fields changed.
    pub fn edit_household(&mut self, id: Uuid, edit: HouseholdEdit) -> Result<usize> {
        self.require_household(&id, "household_id")?;
        let mut fields = Vec::new();
        if let Some(address) = edit.address {
            let v = match address.as_deref().map(str::trim) {
                None | Some("") => Value::Null,
                Some(a) => Value::Text(check_text(
                    "address",
                    a,
                    MAX_TEXT_CHARS,
                    "an address of at most 300 characters",
                )?),
            };
            fields.push((Field::Address, v));
        }
        if let Some(note) = edit.note {
            fields.push((
                Field::Note,
                Value::opt_text(check_note("note", note.as_deref())?.as_deref()),
            ));
        }
        let ops = self.changed_fields(Entity::Household, &Key::Uuid(id), fields)?;
        Ok(self.commit_local(ops)?.len())
    }

    /// Create or update an administrative unit. Returns how many fields changed.
    ///
    /// Its parent must be in the store already, one level up (a village's parent is a commune):
    /// [`Error::NotFound`] (`parent_code`) if it is missing, [`Error::Invalid`] if it is of
    /// another level.
    pub fn put_unit(&mut self, u: UnitInput) -> Result<usize> {
        let ops = self.unit_ops(&u)?;
        if let Some(parent) = &u.parent_code {
            let found: Option<String> = self
                .conn
                .prepare_cached("SELECT level FROM units WHERE code = ?1")?
                .query_row([parent.trim()], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten();
            let Some(found) = found else {
                return Err(Error::NotFound {
                    field: "parent_code",
                    kind: "unit",
                });
            };
            let (want, expected) = match u.level {
                UnitLevel::District => (UnitLevel::Province, "the code of a province"),
                UnitLevel::Commune => (UnitLevel::District, "the code of a district"),
                _ => (UnitLevel::Commune, "the code of a commune"),
            };
            if UnitLevel::parse(&found).ok() != Some(want) {
                return Err(Error::invalid("parent_code", expected));
            }
        }
        Ok(self.commit_local(ops)?.len())
    }

    pub(crate) fn unit_ops(&self, u: &UnitInput) -> Result<Vec<OpBody>> {
        let code = check_code("code", &u.code)?;
        let parent = match (&u.parent_code, u.level) {
            (None, UnitLevel::Province) => None,
            (Some(p), level) if level != UnitLevel::Province => Some(check_code("parent_code", p)?),
            _ => {
                return Err(Error::invalid(
                    "parent_code",
                    "the parent unit's code (none for a province only)",
                ))
            }
        };
        let name = check_text(
            "name",
            &u.name,
            MAX_TEXT_CHARS,
            "a unit name of 1-300 characters",
        )?;
        let kind = check_text(
            "kind",
            &u.kind,
            validate::MAX_KIND_CHARS,
            validate::EXPECTED_KIND,
        )?;
        self.changed_fields(
            Entity::Unit,
            &Key::Code(code),
            vec![
                (Field::Parent, Value::opt_text(parent.as_deref())),
                (Field::Level, u.level.as_str().into()),
                (Field::Kind, kind.into()),
                (Field::Name, name.into()),
            ],
        )
    }

    /// Create or update a household. Returns how many fields changed.
    pub fn put_household(&mut self, h: HouseholdInput) -> Result<usize> {
        let ops = self.household_ops(&h)?;
        Ok(self.commit_local(ops)?.len())
    }

    pub(crate) fn household_ops(&self, h: &HouseholdInput) -> Result<Vec<OpBody>> {
        let code = check_code("household_code", &h.code)?;
        let village = check_code("village_code", &h.village_code)?;
        self.require_unit(&village, "village_code")?;
        let address = match h.address.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(check_text(
                "address",
                a,
                MAX_TEXT_CHARS,
                "an address of at most 300 characters",
            )?),
        };
        self.changed_fields(
            Entity::Household,
            &Key::Uuid(h.id),
            vec![
                (Field::Code, code.into()),
                (Field::Village, village.into()),
                (Field::Address, Value::opt_text(address.as_deref())),
                (
                    Field::Head,
                    Value::opt_text(h.head_id.map(|u| u.to_string()).as_deref()),
                ),
                (Field::Deleted, Value::Int(0)),
            ],
        )
    }

    /// Create or update a resident. Returns how many fields changed.
    pub fn put_resident(&mut self, r: ResidentInput) -> Result<usize> {
        let ops = self.resident_ops(&r)?;
        Ok(self.commit_local(ops)?.len())
    }

    pub(crate) fn resident_ops(&self, r: &ResidentInput) -> Result<Vec<OpBody>> {
        let name = check_text(
            "full_name",
            &r.full_name,
            MAX_TEXT_CHARS,
            "a full name of 1-300 characters",
        )?;
        let birth = validate::parse_birth_date("birth_date", &r.birth_date)?;
        let gender = match r.gender.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(g) => Some(validate::parse_gender("gender", g)?),
        };
        let id_number = match r.id_number.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(n) => Some(validate::parse_id_number(
                "id_number",
                n,
                Some(birth.year()),
                gender,
            )?),
        };
        if let Some(validate::IdNumber::Cccd(n)) = &id_number {
            let other: Option<String> = self
                .conn
                .prepare_cached(
                    "SELECT id FROM residents WHERE id_number = ?1 AND id != ?2 AND deleted = 0",
                )?
                .query_row(params![n, r.id.to_string()], |row| row.get(0))
                .optional()?;
            if other.is_some() {
                return Err(Error::invalid(
                    "id_number",
                    "a 12-digit citizen ID not already held by another resident",
                ));
            }
        }
        let phone = match r.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(validate::normalize_phone("phone", p)?),
        };
        let relation = match r.relation.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(x) => Some(check_text(
                "relation",
                x,
                validate::MAX_RELATION_CHARS,
                validate::EXPECTED_RELATION,
            )?),
        };
        let agency = match r.agency.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(x) => Some(check_text(
                "agency",
                x,
                MAX_TEXT_CHARS,
                "an agency name of at most 300 characters",
            )?),
        };
        self.require_household(&r.household_id, "household_id")?;
        self.changed_fields(
            Entity::Resident,
            &Key::Uuid(r.id),
            vec![
                (Field::Household, r.household_id.to_string().into()),
                (Field::FullName, name.into()),
                (Field::BirthDate, birth.to_canonical().into()),
                (Field::Gender, Value::opt_text(gender.map(|g| g.as_str()))),
                (
                    Field::IdNumber,
                    Value::opt_text(id_number.as_ref().map(|n| n.as_str())),
                ),
                (Field::Phone, Value::opt_text(phone.as_deref())),
                (Field::Relation, Value::opt_text(relation.as_deref())),
                (Field::Account, r.account.as_str().into()),
                (Field::Deleted, Value::Int(0)),
                (Field::Agency, Value::opt_text(agency.as_deref())),
            ],
        )
    }

    /// Erase a resident (the person's right to deletion, Decree 13/2023): every personal field
    /// — name, birth date, gender, ID number, phone, relation, note, agency — set to nothing,
    /// and the resident deleted, as operations every replica receives at its next sync.
    /// Returns how many fields changed (0 for one erased already). Their visits and steps stay (the counts do not depend
    /// on who the person was); the values that earlier operations carried stay in operation
    /// logs until those are compacted.
    pub fn erase_resident(&mut self, id: Uuid) -> Result<usize> {
        // A resident deleted before still holds their values: erasing them is the point.
        self.require(
            "SELECT 1 FROM residents WHERE id = ?1",
            &id.to_string(),
            "resident_id",
            "resident",
        )?;
        let fields = [
            Field::FullName,
            Field::BirthDate,
            Field::Gender,
            Field::IdNumber,
            Field::Phone,
            Field::Relation,
            Field::Note,
            Field::Agency,
        ]
        .into_iter()
        .map(|f| (f, Value::Null))
        .chain([(Field::Deleted, Value::Int(1))])
        .collect();
        let mut ops = self.changed_fields(Entity::Resident, &Key::Uuid(id), fields)?;
        let changed = ops.len();
        // Their assistance steps' notes and reasons too, and every replica of the village
        // compacts its log (`crate::redact`): the values earlier operations carried go.
        let id_text = id.to_string();
        let village: Option<String> = self
            .conn
            .query_row(
                "SELECT h.village_code FROM residents r JOIN households h ON h.id = r.household_id
                 WHERE r.id = ?1",
                [&id_text],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let facts: Vec<Uuid> = self
            .conn
            .prepare("SELECT id FROM assists WHERE resident_id = ?1 ORDER BY id")?
            .query_map([&id_text], |r| r.get::<_, String>(0))?
            .filter_map(|r| r.ok().and_then(|s| Uuid::parse_str(&s).ok()))
            .collect();
        match village {
            Some(area) => {
                let chunks: Vec<&[Uuid]> = if facts.is_empty() {
                    vec![&[]]
                } else {
                    facts.chunks(crate::op::Redaction::MAX_FACTS).collect()
                };
                for chunk in chunks {
                    ops.push(OpBody::Redact(crate::op::Redaction {
                        area: area.clone(),
                        facts: chunk.to_vec(),
                    }));
                }
                self.commit_local(ops)?;
            }
            None => {
                self.commit_local(ops)?;
                self.compact_log()?;
            }
        }
        Ok(changed)
    }

    /// Mark a household deleted (a tombstone: it disappears from queries, its history stays).
    pub fn delete_household(&mut self, id: Uuid) -> Result<()> {
        self.require_household(&id, "household_id")?;
        let ops = self.changed_fields(
            Entity::Household,
            &Key::Uuid(id),
            vec![(Field::Deleted, Value::Int(1))],
        )?;
        self.commit_local(ops)?;
        Ok(())
    }

    /// Mark a resident deleted (a tombstone).
    pub fn delete_resident(&mut self, id: Uuid) -> Result<()> {
        self.require_resident(&id)?;
        let ops = self.changed_fields(
            Entity::Resident,
            &Key::Uuid(id),
            vec![(Field::Deleted, Value::Int(1))],
        )?;
        self.commit_local(ops)?;
        Ok(())
    }

    /// Create or update a campaign. Returns how many fields changed.
    pub fn put_campaign(&mut self, c: CampaignInput) -> Result<usize> {
        let name = check_text(
            "name",
            &c.name,
            MAX_TEXT_CHARS,
            "a campaign name of 1-300 characters",
        )?;
        if c.end_date < c.start_date {
            return Err(Error::invalid("end_date", "a date on or after start_date"));
        }
        if c.target < 0 {
            return Err(Error::invalid("target", "a number of accounts, 0 or more"));
        }
        let unit = check_code("unit_code", &c.unit_code)?;
        self.require_unit(&unit, "unit_code")?;
        let ops = self.changed_fields(
            Entity::Campaign,
            &Key::Uuid(c.id),
            vec![
                (Field::Name, name.into()),
                (
                    Field::Start,
                    c.start_date.format("%Y-%m-%d").to_string().into(),
                ),
                (Field::End, c.end_date.format("%Y-%m-%d").to_string().into()),
                (Field::Target, c.target.into()),
                (Field::Unit, unit.into()),
            ],
        )?;
        Ok(self.commit_local(ops)?.len())
    }

    /// Create or update an officer. Returns how many fields changed.
    pub fn put_officer(&mut self, o: OfficerInput) -> Result<usize> {
        let name = check_text(
            "name",
            &o.name,
            MAX_TEXT_CHARS,
            "a name of 1-300 characters",
        )?;
        let unit = check_code("unit_code", &o.unit_code)?;
        self.require_unit(&unit, "unit_code")?;
        let ops = self.changed_fields(
            Entity::Officer,
            &Key::Uuid(o.id),
            vec![
                (Field::Name, name.into()),
                (Field::Role, o.role.as_str().into()),
                (Field::Unit, unit.into()),
                (Field::Deleted, Value::Int(0)),
            ],
        )?;
        Ok(self.commit_local(ops)?.len())
    }

    fn assignment_key(officer: Uuid, target: &AssignTarget) -> (Uuid, &'static str, String) {
        let (kind, id) = match target {
            AssignTarget::Village(code) => ("village", code.trim().to_owned()),
            AssignTarget::Household(h) => ("household", h.to_string()),
        };
        let key = Uuid::new_v5(
            &DOORSTEP_NAMESPACE,
            format!("assignment:{officer}:{kind}:{id}").as_bytes(),
        );
        (key, kind, id)
    }

    /// Assign a village or a household to an officer (or re-activate the assignment).
    /// Two replicas making the same assignment make the same record.
    pub fn assign(&mut self, officer_id: Uuid, target: AssignTarget) -> Result<Uuid> {
        self.set_assignment(officer_id, target, true)
    }

    /// End an assignment.
    pub fn unassign(&mut self, officer_id: Uuid, target: AssignTarget) -> Result<Uuid> {
        self.set_assignment(officer_id, target, false)
    }

    fn set_assignment(
        &mut self,
        officer_id: Uuid,
        target: AssignTarget,
        active: bool,
    ) -> Result<Uuid> {
        self.require_officer(&officer_id)?;
        match &target {
            AssignTarget::Village(code) => self.require_unit(code.trim(), "village_code")?,
            AssignTarget::Household(h) => self.require_household(h, "household_id")?,
        }
        let (key, kind, id) = Self::assignment_key(officer_id, &target);
        let ops = self.changed_fields(
            Entity::Assignment,
            &Key::Uuid(key),
            vec![
                (Field::Officer, officer_id.to_string().into()),
                (Field::TargetKind, kind.into()),
                (Field::TargetId, id.into()),
                (Field::Active, active.into()),
            ],
        )?;
        self.commit_local(ops)?;
        Ok(key)
    }

    /// Set a quota. One quota per (campaign, subject, period, metric): setting it again
    /// replaces the target.
    pub fn set_quota(&mut self, q: QuotaInput) -> Result<Uuid> {
        let c = q.campaign_id.to_string();
        self.require(
            "SELECT 1 FROM campaigns WHERE id = ?1",
            &c,
            "campaign_id",
            "campaign",
        )?;
        if q.target < 0 {
            return Err(Error::invalid("target", "a count, 0 or more"));
        }
        let (kind, subject) = match &q.subject {
            QuotaSubject::Officer(o) => {
                self.require_officer(o)?;
                ("officer", o.to_string())
            }
            QuotaSubject::Unit(code) => {
                self.require_unit(code.trim(), "unit_code")?;
                ("unit", code.trim().to_owned())
            }
        };
        if let QuotaPeriod::Day(d) = q.period {
            let day = d.format("%Y-%m-%d").to_string();
            let inside: bool = self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = ?1 AND ?2 BETWEEN start_date AND end_date)",
                params![c, day],
                |r| r.get(0),
            )?;
            if !inside {
                return Err(Error::invalid(
                    "period",
                    "a day within the campaign's dates",
                ));
            }
        }
        let period = q.period.as_text();
        let key = Uuid::new_v5(
            &DOORSTEP_NAMESPACE,
            format!("quota:{c}:{kind}:{subject}:{period}:{}", q.metric).as_bytes(),
        );
        let ops = self.changed_fields(
            Entity::Quota,
            &Key::Uuid(key),
            vec![
                (Field::Campaign, c.into()),
                (Field::SubjectKind, kind.into()),
                (Field::SubjectId, subject.into()),
                (Field::Period, period.into()),
                (Field::Metric, q.metric.as_str().into()),
                (Field::Target, q.target.into()),
            ],
        )?;
        self.commit_local(ops)?;
        Ok(key)
    }
}
