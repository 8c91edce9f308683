//! The pull cursor: where a device is in the server's feed, and which areas it has been fed.
//!
//! Opaque to the device: base64url (no padding) of the postcard encoding of [`Cursor`]. The
//! server keeps nothing per device for pulls, so a device that restores an old cursor (it
//! crashed before committing a page) simply gets that page again. A cursor is not secret and
//! not signed: a device that forges one can only ask for its own scope again, which the
//! server re-checks on every pull.

use crate::error::{Result, ServerError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A position in the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every feed row with `seq` at or below this, in a fed area (or reference data), has
    /// been sent.
    pub seq: u64,
    /// The areas (village codes, sorted) the device has been fed up to `seq`.
    pub areas: Vec<String>,
    /// A backfill in progress: an area newly in scope whose rows up to `seq` are being sent,
    /// and the last feed row of it already sent.
    pub backfill: Option<Backfill>,
}

/// A newly assigned area whose history is being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    /// The village code.
    pub area: String,
    /// The last feed `seq` of this area already sent.
    pub after: u64,
}

impl Cursor {
    /// The text form sent to the device.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// Read a cursor the server made; `None` (first pull) is the start of the feed.
    pub fn decode(text: Option<&str>) -> Result<Cursor> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ServerError::BadRequest("cursor is not one this server made".into()))?;
        postcard::from_bytes(&bytes)
            .map_err(|_| ServerError::BadRequest("cursor is not one this server made".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Cursor {
            seq: 12_345,
            areas: vec!["22813-01".into(), "22813-02".into()],
            backfill: Some(Backfill {
                area: "22813-03".into(),
                after: 7,
            }),
        };
        assert_eq!(Cursor::decode(Some(&c.encode())).unwrap(), c);
        assert_eq!(Cursor::decode(None).unwrap(), Cursor::default());
        assert!(Cursor::decode(Some("!!")).is_err());
    }
}
