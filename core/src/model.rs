//! The domain: what a field team records and what it is given.
//!
//! Two kinds of data, merged two ways (DESIGN.md §4):
//! - **Facts** ([`Visit`], [`Assist`]) are immutable records with a UUIDv7 id. They are only ever
//!   added; a mistake is corrected by a retraction, which is itself a fact.
//! - **Entities** ([`Entity`]: units, households, residents, campaigns, officers, assignments,
//!   quotas) are bags of last-writer-wins fields ([`Field`]), each set by its own operation.
//!
//! Every enum here has a stable text code (`as_str`/`parse`) used in SQLite, in CSV files and in
//! the documented SQL that apps query, and a stable position used on the wire. New variants go at
//! the end.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, $expected:literal { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable text code.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            /// Parse the stable text code.
            pub fn parse(s: &str) -> crate::Result<Self> {
                match s { $($code => Ok($name::$variant),)+ _ => Err(crate::Error::invalid($field, $expected)) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

coded_enum! {
    /// Level of an administrative unit.
    UnitLevel, "level", "one of province, district, commune, village" {
        Province = "province", District = "district", Commune = "commune", Village = "village",
    }
}

coded_enum! {
    /// What happened at the door.
    VisitOutcome, "outcome", "one of met, nobody_home, moved_away, refused, come_back" {
        /// Somebody was met and talked to.
        Met = "met",
        /// Nobody opened.
        NobodyHome = "nobody_home",
        /// The household no longer lives there.
        MovedAway = "moved_away",
        /// The household refused.
        Refused = "refused",
        /// Asked to come back at a given time (`revisit_at`).
        ComeBack = "come_back",
    }
}

coded_enum! {
    /// A step of help towards an activated VNeID account.
    AssistStep, "step", "one of level1_guided, level1_activated, level2_received, level2_activated, portal_guided" {
        /// Guided through level-1 self-registration in the VNeID app.
        Level1Guided = "level1_guided",
        /// Level-1 account activated.
        Level1Activated = "level1_activated",
        /// Level-2 application (photo, fingerprints, ID card) received at a receiving point.
        Level2Received = "level2_received",
        /// Level-2 account activated (SMS, OTP, password).
        Level2Activated = "level2_activated",
        /// Guided to use the account on the National Public Service Portal.
        PortalGuided = "portal_guided",
    }
}

coded_enum! {
    /// Why a step failed (the plan's common blockers).
    FailureReason, "reason", "one of phone_not_own_name, otp_not_received, no_chip_id_card, bound_to_other_device, other" {
        /// The SIM is not registered in the resident's own name.
        PhoneNotOwnName = "phone_not_own_name",
        /// The OTP never arrived.
        OtpNotReceived = "otp_not_received",
        /// The resident has no chip ID card.
        NoChipIdCard = "no_chip_id_card",
        /// The account is bound to another (often forgotten) device.
        BoundToOtherDevice = "bound_to_other_device",
        /// Anything else; say what in the note.
        Other = "other",
    }
}

coded_enum! {
    /// Account state a roster says a resident already has when it is handed out.
    RosterStatus, "account", "one of none, level1_pending, level2_pending, level1_activated, level2_activated (empty means none)" {
        /// No account.
        None = "none",
        /// Registered at level 1, not activated.
        Level1Pending = "level1_pending",
        /// Level-2 application received, not activated.
        Level2Pending = "level2_pending",
        /// Level-1 account already activated when the roster was handed out.
        Level1Activated = "level1_activated",
        /// Level-2 account already activated when the roster was handed out.
        Level2Activated = "level2_activated",
    }
}

coded_enum! {
    /// What help a resident still needs, derived from the account state.
    Need, "need", "one of no_account, level1_pending, level2_to_take, level2_to_activate, portal_guidance, done" {
        /// Nothing recorded yet.
        NoAccount = "no_account",
        /// Level 1 started, not activated.
        Level1Pending = "level1_pending",
        /// Level 1 activated; the level-2 application is still to be taken.
        Level2ToTake = "level2_to_take",
        /// Level-2 application received; activation still to do.
        Level2ToActivate = "level2_to_activate",
        /// Level 2 activated; not yet guided to the public service portal.
        PortalGuidance = "portal_guidance",
        /// Nothing left to do.
        Done = "done",
    }
}

coded_enum! {
    /// A replicated entity kind.
    Entity, "entity", "one of unit, household, resident, campaign, officer, assignment, quota" {
        Unit = "unit", Household = "household", Resident = "resident", Campaign = "campaign",
        Officer = "officer", Assignment = "assignment", Quota = "quota",
    }
}

coded_enum! {
    /// A last-writer-wins field of an entity. Which fields an entity has is [`Entity::fields`].
    Field, "field", "a field of the entity" {
        Parent = "parent_code", Level = "level", Kind = "kind", Name = "name",
        Code = "code", Village = "village_code", Address = "address", Head = "head_id",
        Note = "note", Deleted = "deleted", Household = "household_id", FullName = "full_name",
        BirthDate = "birth_date", Gender = "gender", IdNumber = "id_number", Phone = "phone",
        Relation = "relation", Account = "roster_account", Start = "start_date", End = "end_date",
        Target = "target", Unit = "unit_code", Officer = "officer_id", TargetKind = "target_kind",
        TargetId = "target_id", Active = "active", Period = "period", Metric = "metric",
        Role = "role", Campaign = "campaign_id", SubjectKind = "subject_kind", SubjectId = "subject_id",
        Agency = "agency", Retention = "retention_days",
    }
}

impl Field {
    /// Whether the field holds an integer (else text). `deleted` and `active` are 0/1 flags.
    pub fn is_int(self) -> bool {
        matches!(
            self,
            Field::Deleted | Field::Target | Field::Active | Field::Retention
        )
    }

    /// Whether a value has the field's type: the right kind, or `Null` where clearing is allowed.
    pub fn accepts(self, value: &Value) -> bool {
        match value {
            Value::Null => !matches!(self, Field::Deleted),
            Value::Int(_) => self.is_int(),
            Value::Text(_) => !self.is_int(),
        }
    }
}

impl Entity {
    /// The materialised table of the entity.
    pub fn table(self) -> &'static str {
        match self {
            Entity::Unit => "units",
            Entity::Household => "households",
            Entity::Resident => "residents",
            Entity::Campaign => "campaigns",
            Entity::Officer => "officers",
            Entity::Assignment => "assignments",
            Entity::Quota => "quotas",
        }
    }

    /// The fields of the entity; each is a column of the same name in [`Entity::table`].
    pub fn fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            Entity::Unit => &[Parent, Level, Kind, Name],
            Entity::Household => &[Code, Village, Address, Head, Note, Deleted],
            Entity::Resident => &[
                Household, FullName, BirthDate, Gender, IdNumber, Phone, Relation, Account, Note,
                Deleted, Agency,
            ],
            Entity::Campaign => &[Name, Start, End, Target, Unit, Retention],
            Entity::Officer => &[Name, Role, Unit, Deleted],
            Entity::Assignment => &[Officer, TargetKind, TargetId, Active],
            Entity::Quota => &[Campaign, SubjectKind, SubjectId, Period, Metric, Target],
        }
    }

    /// The primary-key column of [`Entity::table`].
    pub fn key_column(self) -> &'static str {
        match self {
            Entity::Unit => "code",
            _ => "id",
        }
    }

    /// Whether `field` belongs to this entity.
    pub fn has(self, field: Field) -> bool {
        self.fields().contains(&field)
    }
}

/// A field value. Text is NFC; integers are 64-bit.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Value {
    /// No value (cleared).
    Null,
    /// An integer (flags, targets).
    Int(i64),
    /// A text.
    Text(String),
}

impl Value {
    /// `Some(text)` → `Text`, `None` → `Null`.
    pub fn opt_text(s: Option<&str>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.to_owned()))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl rusqlite::types::FromSql for Value {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Ok(Value::Null),
            ValueRef::Integer(i) => Ok(Value::Int(i)),
            ValueRef::Text(t) => Ok(Value::Text(String::from_utf8_lossy(t).into_owned())),
            _ => Err(rusqlite::types::FromSqlError::InvalidType),
        }
    }
}

/// The key of an entity: a UUID, or an official code for administrative units.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Key {
    /// Households, residents, campaigns, officers, assignments, quotas.
    Uuid(Uuid),
    /// Administrative units: the GSO code (villages: the commune code, `-`, a local number).
    Code(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Uuid(u) => write!(f, "{u}"),
            Key::Code(c) => f.write_str(c),
        }
    }
}

/// A position, in millionths of a degree (about 11 cm): integers keep dumps byte-identical.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Latitude × 10⁶.
    pub lat_e6: i32,
    /// Longitude × 10⁶.
    pub lon_e6: i32,
}

/// A visit to a household (a fact).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Visit {
    /// UUIDv7.
    pub id: Uuid,
    /// The household visited.
    pub household_id: Uuid,
    /// Who visited.
    pub officer_id: Uuid,
    /// When, Unix milliseconds as the device believed.
    pub at_ms: i64,
    /// What happened.
    pub outcome: VisitOutcome,
    /// For [`VisitOutcome::ComeBack`]: when to come back.
    pub revisit_at_ms: Option<i64>,
    /// Free text (no ID numbers, please).
    pub note: Option<String>,
    /// Where, if the phone knew.
    pub location: Option<Location>,
}

/// An assistance step for a resident (a fact).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assist {
    /// UUIDv7.
    pub id: Uuid,
    /// The resident helped.
    pub resident_id: Uuid,
    /// Who helped.
    pub officer_id: Uuid,
    /// When, Unix milliseconds as the device believed.
    pub at_ms: i64,
    /// Which step.
    pub step: AssistStep,
    /// `None` when the step succeeded, else why it failed.
    pub failure: Option<FailureReason>,
    /// For [`AssistStep::Level2Received`]: the receiving point (a name or code).
    pub receiving_point: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

coded_enum! {
    /// Whether a receiving point stands still or travels.
    SessionKind, "kind", "one of fixed, mobile" {
        /// A fixed receiving point (the commune police station, a village office).
        Fixed = "fixed",
        /// A mobile receiving team working in a village, a market, an apartment block.
        Mobile = "mobile",
    }
}

coded_enum! {
    /// An outreach activity the plan names.
    OutreachKind, "kind", "one of meeting, loudspeaker, training" {
        /// A residents' meeting.
        Meeting = "meeting",
        /// A loudspeaker broadcast.
        Loudspeaker = "loudspeaker",
        /// A training session for volunteers.
        Training = "training",
    }
}

/// A receiving-point session: where and when a team received level-2 applications (a fact).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Session {
    /// UUIDv7.
    pub id: Uuid,
    /// The commune (unit code) the session served.
    pub unit_code: String,
    /// The team lead.
    pub officer_id: Uuid,
    /// Fixed or mobile.
    pub kind: SessionKind,
    /// Where: a place name (village office, market…), not a resident's address.
    pub place: String,
    /// Start, Unix ms.
    pub starts_at_ms: i64,
    /// End, Unix ms (not before the start).
    pub ends_at_ms: i64,
    /// Level-2 applications received during the session.
    pub applications: u32,
    /// Free text.
    pub note: Option<String>,
}

/// An outreach event: a meeting, a broadcast or a training session (a fact).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outreach {
    /// UUIDv7.
    pub id: Uuid,
    /// The commune or village (unit code) it was held in.
    pub unit_code: String,
    /// Who organised it.
    pub officer_id: Uuid,
    /// What kind.
    pub kind: OutreachKind,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Where: a place name.
    pub place: String,
    /// People reached (attendees, or an estimate for a broadcast).
    pub people_reached: u32,
    /// Free text.
    pub note: Option<String>,
}

/// A resident's account progress: the join of every non-retracted claim.
///
/// Each chain only moves up: a join (per-component maximum) of two states is again a state, and
/// joining is commutative, associative and idempotent. See [`AccountState::join`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AccountState {
    /// 0 none, 1 level-1 registered (guided), 2 level-1 activated.
    pub level1: u8,
    /// 0 none, 1 level-2 application received, 2 level-2 activated.
    pub level2: u8,
    /// Guided to use the public service portal.
    pub portal: bool,
}

impl AccountState {
    /// The least upper bound of two states.
    pub fn join(self, other: AccountState) -> AccountState {
        AccountState {
            level1: self.level1.max(other.level1),
            level2: self.level2.max(other.level2),
            portal: self.portal || other.portal,
        }
    }

    /// The state a single successful step claims.
    pub fn of_step(step: AssistStep) -> AccountState {
        let mut s = AccountState::default();
        match step {
            AssistStep::Level1Guided => s.level1 = 1,
            AssistStep::Level1Activated => s.level1 = 2,
            AssistStep::Level2Received => s.level2 = 1,
            AssistStep::Level2Activated => s.level2 = 2,
            AssistStep::PortalGuided => s.portal = true,
        }
        s
    }

    /// The state a roster's account column claims.
    pub fn of_roster(status: RosterStatus) -> AccountState {
        let mut s = AccountState::default();
        match status {
            RosterStatus::None => {}
            RosterStatus::Level1Pending => s.level1 = 1,
            RosterStatus::Level2Pending => s.level2 = 1,
            RosterStatus::Level1Activated => s.level1 = 2,
            RosterStatus::Level2Activated => s.level2 = 2,
        }
        s
    }

    /// What help is still needed.
    pub fn need(self) -> Need {
        match (self.level1, self.level2, self.portal) {
            (_, 2, true) => Need::Done,
            (_, 2, false) => Need::PortalGuidance,
            (_, 1, _) => Need::Level2ToActivate,
            (2, _, _) => Need::Level2ToTake,
            (1, _, _) => Need::Level1Pending,
            _ => Need::NoAccount,
        }
    }

    /// The next assistance step an officer takes for this resident: the step that answers
    /// [`AccountState::need`], or `None` when nothing is left to do.
    ///
    /// With no account yet there are two ways in: guide a level-1 registration, or take the
    /// level-2 application straight away. `guide_level1_first` chooses between them; it is
    /// called only in that case (so a caller's random draw happens only when there is a choice).
    /// A pending level 1 is activated; an activated level 1 leads to the level-2 application; a
    /// received application to its activation; an activated level 2 to portal guidance.
    pub fn next_step(self, guide_level1_first: impl FnOnce() -> bool) -> Option<AssistStep> {
        match self.need() {
            Need::NoAccount if guide_level1_first() => Some(AssistStep::Level1Guided),
            Need::NoAccount | Need::Level2ToTake => Some(AssistStep::Level2Received),
            Need::Level1Pending => Some(AssistStep::Level1Activated),
            Need::Level2ToActivate => Some(AssistStep::Level2Activated),
            Need::PortalGuidance => Some(AssistStep::PortalGuided),
            Need::Done => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state() -> impl Strategy<Value = AccountState> {
        (0u8..3, 0u8..3, any::<bool>()).prop_map(|(level1, level2, portal)| AccountState {
            level1,
            level2,
            portal,
        })
    }

    proptest! {
        #[test]
        fn join_is_commutative(a in state(), b in state()) {
            prop_assert_eq!(a.join(b), b.join(a));
        }
        #[test]
        fn join_is_associative(a in state(), b in state(), c in state()) {
            prop_assert_eq!(a.join(b).join(c), a.join(b.join(c)));
        }
        #[test]
        fn join_is_idempotent(a in state(), b in state()) {
            prop_assert_eq!(a.join(a), a);
            prop_assert_eq!(a.join(b).join(b), a.join(b));
        }
        /// A stale claim can never pull a state back: the join is above both inputs.
        #[test]
        fn join_never_goes_back(a in state(), b in state()) {
            let j = a.join(b);
            prop_assert!(j.level1 >= a.level1 && j.level2 >= a.level2 && (j.portal || !a.portal));
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in AssistStep::ALL {
            assert_eq!(AssistStep::parse(s.as_str()).unwrap(), *s);
        }
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()).unwrap(), *f);
        }
        assert!(matches!(
            VisitOutcome::parse("gone"),
            Err(crate::Error::Invalid {
                field: "outcome",
                ..
            })
        ));
    }

    /// Every state, as (level 1, level 2, portal).
    fn all_states() -> impl Iterator<Item = AccountState> {
        (0u8..3).flat_map(|level1| {
            (0u8..3).flat_map(move |level2| {
                [false, true].map(|portal| AccountState {
                    level1,
                    level2,
                    portal,
                })
            })
        })
    }

    #[test]
    fn next_step_follows_the_need() {
        for s in all_states() {
            let (first, other) = (s.next_step(|| true), s.next_step(|| false));
            let want = match (s.level1, s.level2, s.portal) {
                (_, 2, false) => Some(AssistStep::PortalGuided),
                (_, 2, true) => None,
                (_, 1, _) => Some(AssistStep::Level2Activated),
                (2, 0, _) => Some(AssistStep::Level2Received),
                (1, 0, _) => Some(AssistStep::Level1Activated),
                _ => None, // no account: a choice, checked below
            };
            if s.need() == Need::NoAccount {
                assert_eq!(first, Some(AssistStep::Level1Guided), "{s:?}");
                assert_eq!(other, Some(AssistStep::Level2Received), "{s:?}");
            } else {
                assert_eq!(first, want, "{s:?}");
                assert_eq!(other, want, "{s:?}");
            }
        }
    }

    #[test]
    fn next_step_asks_for_a_choice_only_without_an_account() {
        for s in all_states() {
            let mut asked = false;
            s.next_step(|| {
                asked = true;
                true
            });
            assert_eq!(asked, s.need() == Need::NoAccount, "{s:?}");
        }
    }

    #[test]
    fn following_next_step_ends_done() {
        for s in all_states() {
            for level1_first in [false, true] {
                let mut s = s;
                let mut steps = 0;
                while let Some(step) = s.next_step(|| level1_first) {
                    let after = s.join(AccountState::of_step(step));
                    assert!(after > s, "{step:?} does not move {s:?}");
                    s = after;
                    steps += 1;
                }
                assert_eq!(s.need(), Need::Done);
                assert!(steps <= 5);
            }
        }
    }

    #[test]
    fn level2_activated_needs_portal_then_done() {
        let s = AccountState::of_step(AssistStep::Level2Activated);
        assert_eq!(s.need(), Need::PortalGuidance);
        assert_eq!(
            s.join(AccountState::of_step(AssistStep::PortalGuided))
                .need(),
            Need::Done
        );
        assert_eq!(
            AccountState::of_step(AssistStep::Level1Activated).need(),
            Need::Level2ToTake
        );
    }
}

coded_enum! {
    /// What a quota counts.
    QuotaMetric, "metric", "one of visits, level1_activated, level2_received, level2_activated, portal_guided" {
        /// Household visits made (any outcome).
        Visits = "visits",
        /// Residents whose level-1 account was activated.
        Level1Activated = "level1_activated",
        /// Residents whose level-2 application was received.
        Level2Received = "level2_received",
        /// Residents whose level-2 account was activated.
        Level2Activated = "level2_activated",
        /// Residents guided to the public service portal.
        PortalGuided = "portal_guided",
    }
}

coded_enum! {
    /// An officer's role, which sets what they may see and do.
    Role, "role", "one of field, commune_lead, district, province" {
        /// Area police officer or volunteer in the field.
        Field = "field",
        /// Commune police lead at the station.
        CommuneLead = "commune_lead",
        /// District command.
        District = "district",
        /// Province command.
        Province = "province",
    }
}
