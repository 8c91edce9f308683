//! Sync protocol v1: the messages phones, hubs and servers exchange (`docs/sync-protocol.md`).
//!
//! The types live in the core so that the server and every client serialise them from one
//! definition. Bodies are JSON (`application/json`, for debugging and third-party clients) or
//! postcard (`application/x-doorstep-postcard`, compact, what the core's client sends), either
//! of them optionally compressed (`Content-Encoding: gzip` or `zstd`).

use crate::op::Op;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 2;

/// Media type of postcard bodies.
pub const POSTCARD_MEDIA_TYPE: &str = "application/x-doorstep-postcard";

/// Exchange an enrolment code for a device token.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The one-time code an admin issued for this officer's device.
    pub code: String,
    /// A label for the device (model name), shown to admins; no personal data.
    pub device_name: String,
    /// The device's replica id (its store's).
    pub replica: Uuid,
    /// The device's clock, Unix ms, when it sent the request.
    pub device_time_ms: i64,
    /// The device's Ed25519 public key (32 bytes; protocol 2), with which it signs segments
    /// of its operations for relays. A device without one can only push its own operations
    /// itself.
    #[serde(default)]
    pub public_key: Option<Vec<u8>>,
}

/// What an enrolled device gets.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The device's id on the server.
    pub device_id: Uuid,
    /// The bearer token (shown once; the server keeps only its hash).
    pub token: String,
    /// The officer the device belongs to.
    pub officer_id: Uuid,
    /// The server's replica id.
    pub server_replica: Uuid,
    /// The server's clock, Unix ms.
    pub server_time_ms: i64,
    /// The server's Ed25519 public key (32 bytes; protocol 2): what certificates and the
    /// server's instructions are checked with.
    pub server_key: Vec<u8>,
    /// The server's certificate of the device's key, when the request carried one.
    pub certificate: Option<crate::sign::DeviceCertificate>,
    /// Until when the device may show personal data offline (Unix ms): the offline lease,
    /// renewed by every pull.
    pub lease_until_ms: i64,
}

/// Send operations the server lacks.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The device's clock, Unix ms, when it sent the request.
    pub device_time_ms: i64,
    /// Operations, in the device's counter order; at most the server's batch limit. Besides
    /// the device's own, whole signed runs of other devices' operations it relays, each run
    /// described in `segments`.
    pub ops: Vec<Op>,
    /// The signatures of the other devices' runs among `ops` (protocol 2). An operation of
    /// another replica not covered by a valid segment is refused.
    #[serde(default)]
    pub segments: Vec<crate::sign::Segment>,
}

/// Why the server refused one operation of a batch (the rest of the batch is applied).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The operation's replica.
    pub replica: Uuid,
    /// The operation's counter.
    pub counter: u64,
    /// A code: `foreign_replica` (another replica's operation not covered by a segment),
    /// `invalid:<field>` (a value the core's rules refuse, naming the field), `out_of_scope`,
    /// `forbidden`, `clock_ahead`; for a relayed run (protocol 2): `truncated_segment`,
    /// `bad_signature`, `unknown_author`, `revoked`.
    pub reason: String,
}

/// The server's answer to a push.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Operations new to the server, now applied.
    pub applied: u64,
    /// Operations the server already held.
    pub duplicates: u64,
    /// Operations refused (not stored, not forwarded), with reasons.
    pub rejected: Vec<Rejected>,
    /// The highest counter of the device's own replica the server has processed; the device
    /// need not send anything at or below it again.
    pub acked_counter: u64,
    /// The server's clock, Unix ms.
    pub server_time_ms: i64,
}

/// Ask for operations in the device's scope after its cursor.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// Must be [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The device's clock, Unix ms, when it sent the request.
    pub device_time_ms: i64,
    /// The cursor of the last page applied, `None` the first time. Opaque to the device.
    pub cursor: Option<String>,
    /// At most this many operations (the server may send fewer).
    pub limit: u32,
    /// The highest counter of the device's own replica in its log (protocol 2). When the
    /// server has processed more of this replica (`PullResponse::held`: the phone was restored
    /// from an older copy), the page first gives the device its own operations back.
    pub own: u64,
    /// Other devices' replicas whose signed runs the device carries to relay (protocol 2; at
    /// most 64 are answered): the answer says how far the server holds each
    /// (`PullResponse::held_others`), and the device sends only what lies beyond.
    pub relaying: Vec<Uuid>,
}

/// A page of operations.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Operations, in the server's order.
    pub ops: Vec<Op>,
    /// Store it with the page, in the same transaction; send it with the next pull.
    pub cursor: String,
    /// Whether more operations are waiting.
    pub has_more: bool,
    /// The server's clock, Unix ms.
    pub server_time_ms: i64,
    /// The highest counter of the device's own replica the server has processed (protocol 2),
    /// as its database holds it now: the device pushes from here, whatever it was told before
    /// (after a server restored from a backup this is lower, and the lost operations are sent
    /// again), and never issues a counter at or below it.
    pub held: u64,
    /// For each replica of `PullRequest::relaying` the server knows a device of: the highest
    /// counter of it the server has processed.
    pub held_others: Vec<(Uuid, u64)>,
    /// The offline lease renewed (Unix ms): the device may show personal data until then.
    pub lease_until_ms: i64,
    /// Village codes no longer in the device's scope (an assignment ended, its officer moved):
    /// the device erases the households, residents and facts it holds of them.
    pub dropped: Vec<String>,
    /// Households moved out of the device's villages to a village outside its scope (protocol
    /// 2, added later: absent from an older server's answer): the device erases them with
    /// their residents and facts.
    #[serde(default)]
    pub dropped_households: Vec<Uuid>,
    /// Residents moved to a household of a village outside the device's scope: the device
    /// erases them with their assistance steps and account state.
    #[serde(default)]
    pub dropped_residents: Vec<Uuid>,
}

/// A push and the pull after it in one request (`POST /v1/sync/push-pull`): the last push of a
/// sync carries the pull that ends it, one round trip fewer on a slow link. The server applies
/// the push, then answers the pull as `POST /v1/sync/pull` would (or, for a device revoked
/// meanwhile, gives its wipe order instead of the page).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushPullRequest {
    /// The push, as to `POST /v1/sync/push`.
    pub push: PushRequest,
    /// The pull after it, as to `POST /v1/sync/pull`.
    pub pull: PullRequest,
}

/// The answer to a [`PushPullRequest`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPullResponse {
    /// The push's answer.
    pub push: PushResponse,
    /// The pull's page; absent when the device was revoked while its push was applied.
    pub pull: Option<PullResponse>,
    /// The server's signed order to erase the device's personal data, when it was revoked
    /// while its push was applied (the push's answer still counts what was taken).
    pub wipe: Option<crate::sign::WipeOrder>,
}

/// The body of every 4xx/5xx answer.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `unsupported_protocol`, `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `too_large`, `unavailable`, `internal`.
    pub error: String,
    /// Words for a person (never personal data).
    pub message: String,
    /// For `unsupported_protocol`: the versions the server speaks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported: Vec<u32>,
    /// For a revoked device (`401`, `reason` = `revoked`): the server's signed order to erase
    /// the personal data it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wipe: Option<crate::sign::WipeOrder>,
    /// For a refused enrolment code (`401` to `POST /v1/enrol`): why, as an
    /// [`EnrolRefusal`] spelling (`unknown`, `used`, `expired`). Text, so that a reason
    /// added later still reads as an error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why `POST /v1/enrol` refused a code ([`ErrorBody::reason`]). Each asks for a new code.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolRefusal {
    /// No such code was issued (or it was mistyped).
    Unknown,
    /// Another phone enrolled with it, or this phone did and has used its token since.
    Used,
    /// Its lifetime is over.
    Expired,
}

impl EnrolRefusal {
    /// The wire spelling (`ErrorBody::reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnrolRefusal::Unknown => "unknown",
            EnrolRefusal::Used => "used",
            EnrolRefusal::Expired => "expired",
        }
    }

    /// The refusal spelled `s` on the wire, if it is one this code knows.
    pub fn from_wire(s: &str) -> Option<EnrolRefusal> {
        [
            EnrolRefusal::Unknown,
            EnrolRefusal::Used,
            EnrolRefusal::Expired,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for EnrolRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnrolRefusal::Unknown => "unknown enrolment code",
            EnrolRefusal::Used => "enrolment code already used",
            EnrolRefusal::Expired => "enrolment code expired",
        })
    }
}
