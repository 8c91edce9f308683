//! Every limit the server enforces, in one place: the sync endpoints, the push check, the
//! accounts and the clocks all read them from here, so a limit is changed (and reviewed)
//! once, whatever the backend. `docs/sync-protocol.md` documents the ones clients see.

/// Default request body limit, after decompression (`serve --max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most operations one push may carry.
pub const MAX_PUSH_OPS: usize = 1000;
/// The most operations a pull page carries.
pub const MAX_PAGE: u32 = 1000;
/// How far ahead of the server's clock a last-writer-wins stamp may be (`clock_ahead`).
pub const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;
/// Default lifetime of an enrolment code.
pub const DEFAULT_CODE_TTL_MINUTES: u32 = 24 * 60;
/// Longest enrolment-code lifetime: a week.
pub const MAX_TTL_MINUTES: u32 = 7 * 24 * 60;
/// Longest device label accepted, in characters.
pub const MAX_DEVICE_NAME: usize = 100;
/// Longest user name (admin or command user) accepted, in characters.
pub const MAX_USER_NAME: usize = 100;
/// Most audit entries one request returns.
pub const MAX_AUDIT: u32 = 10_000;
