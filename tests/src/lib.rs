//! End-to-end tests of Doorstep: a real `doorstep serve` process, core stores as devices
//! syncing with the core's client, and a fault-injecting proxy between them.
//!
//! - [`proxy`]: the fault-injecting TCP/HTTP proxy on loopback.
//! - [`harness`]: the server process, the reference world, the devices.
//! - [`setup`]: preparing a server database through the server library before it serves.
//! - [`scope`]: comparing a device's villages with the server's, with plain SQL.
//! - [`actions`]: random offline work of a field officer.
//! - [`pgmirror`]: reading a PostgreSQL-backed server's state with the SQLite tests' SQL.

pub mod actions;
pub mod harness;
pub mod hub;
pub mod pgmirror;
pub mod proxy;
pub mod scope;
pub mod setup;
