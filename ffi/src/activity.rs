//! Field work filed under a commune or village rather than a household (schema v2): receiving-
//! point sessions and outreach events. Both are facts: correct a mistake with
//! [`FieldStore::retract`].

use crate::error::{parse_id, DoorstepError};
use crate::store::FieldStore;
use doorstep_core as core;

type Result<T> = std::result::Result<T, DoorstepError>;

mirror_enum! {
    /// Whether a receiving point stands still or travels.
    SessionKind => core::SessionKind {
        /// A fixed receiving point (the commune police station, a village office).
        Fixed,
        /// A mobile team working in a village, a market, an apartment block.
        Mobile,
    }
}

mirror_enum! {
    /// An outreach activity.
    OutreachKind => core::OutreachKind {
        /// A residents' meeting.
        Meeting,
        /// A loudspeaker broadcast.
        Loudspeaker,
        /// A training session for volunteers.
        Training,
    }
}

/// A receiving-point session to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewSession {
    /// The commune served (a unit code at commune level).
    pub unit_code: String,
    /// The team lead (UUID).
    pub officer_id: String,
    /// Fixed or mobile.
    pub kind: SessionKind,
    /// Where (a place name, not a resident's address).
    pub place: String,
    /// Start (Unix ms).
    pub starts_at_ms: i64,
    /// End (Unix ms), not before the start and on the same day.
    pub ends_at_ms: i64,
    /// Level-2 applications received.
    pub applications: i32,
    /// Free text.
    #[uniffi(default = None)]
    pub note: Option<String>,
}

/// An outreach event to record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewOutreach {
    /// The commune or village it was held in (a unit code).
    pub unit_code: String,
    /// Who organised it (UUID).
    pub officer_id: String,
    /// Meeting, loudspeaker broadcast or training.
    pub kind: OutreachKind,
    /// Where (a place name).
    pub place: String,
    /// People reached.
    pub people_reached: i32,
    /// When (Unix ms); none means now.
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
    /// Free text.
    #[uniffi(default = None)]
    pub note: Option<String>,
}

#[uniffi::export]
impl FieldStore {
    /// Record a receiving-point session. Returns its id.
    pub fn record_session(&self, session: NewSession) -> Result<String> {
        let s = core::NewSession {
            unit_code: session.unit_code,
            officer_id: parse_id("officer_id", &session.officer_id)?,
            kind: session.kind.into(),
            place: session.place,
            starts_at_ms: session.starts_at_ms,
            ends_at_ms: session.ends_at_ms,
            applications: u32::try_from(session.applications).map_err(|_| {
                DoorstepError::InvalidInput {
                    field: "applications".into(),
                    expected: "zero or more".into(),
                }
            })?,
            note: session.note,
        };
        Ok(self.store().record_session(s)?.to_string())
    }

    /// Record an outreach event. Returns its id.
    pub fn record_outreach(&self, outreach: NewOutreach) -> Result<String> {
        let o = core::NewOutreach {
            unit_code: outreach.unit_code,
            officer_id: parse_id("officer_id", &outreach.officer_id)?,
            kind: outreach.kind.into(),
            at_ms: outreach.at_ms,
            place: outreach.place,
            people_reached: u32::try_from(outreach.people_reached).map_err(|_| {
                DoorstepError::InvalidInput {
                    field: "people_reached".into(),
                    expected: "zero or more".into(),
                }
            })?,
            note: outreach.note,
        };
        Ok(self.store().record_outreach(o)?.to_string())
    }
}
