//! The campaign simulation (issue #5): Ninh Thuận's 81 days, from 27/6/2023 to 15/9/2023,
//! played by simulated officers' devices against a real `doorstep serve` process.
//!
//! - [`campaign`]: the world (the demo generator's plan at any scale), the server process, the
//!   devices (core stores with the sync client, enrolled with real codes) behind the tests'
//!   fault-injecting proxy, and the days: work offline, mistakes and retractions, two teams on
//!   the same household, irregular syncs over faulty links.
//! - [`truth`]: the simulator's own ledger of what each team recorded and retracted, and the
//!   numbers the counting rules derive from it.
//! - [`observe`]: the facts as the server's database holds them after the campaign.
//! - [`report`]: the dashboard's JSON report API, fetched and compared number by number.
//!
//! `docs/simulation.md` describes the model, the fault model and how to run it.

pub mod campaign;
pub mod observe;
pub mod report;
pub mod truth;

/// Errors of the simulator (counts, ids and paths only: no personal data).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The core failed.
    #[error(transparent)]
    Core(#[from] doorstep_core::Error),
    /// The demo generator failed.
    #[error(transparent)]
    Demo(#[from] doorstep_server::demo::DemoError),
    /// The server library failed.
    #[error(transparent)]
    Server(#[from] doorstep_server::ServerError),
    /// SQLite failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The server process did not start or answer.
    #[error("server: {0}")]
    ServerProcess(String),
    /// An HTTP call to the report API failed.
    #[error("report API: {0}")]
    Api(String),
    /// A device could not finish syncing at the end.
    #[error("device {device} could not sync at the end: {last}")]
    FinalSync {
        /// Device label.
        device: String,
        /// The last error.
        last: String,
    },
}

/// The result type of the simulator.
pub type Result<T, E = SimError> = std::result::Result<T, E>;
