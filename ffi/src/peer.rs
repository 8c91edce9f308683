//! Phone↔phone exchange for the bindings: the library makes and reads the messages, the app
//! moves them over Bluetooth, Wi-Fi Direct, Nearby or a socket (`doorstep_core::exchange`).

use crate::error::DoorstepError;
use crate::model::count;
use crate::store::FieldStore;
use doorstep_core::exchange::{Exchange, ExchangeReport};
use std::sync::{Arc, Mutex};

type Result<T, E = DoorstepError> = std::result::Result<T, E>;

/// What an exchange did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerReport {
    /// Signed runs given to the other phone.
    pub runs_sent: i64,
    /// Operations given.
    pub ops_sent: i64,
    /// Runs taken from it.
    pub runs_taken: i64,
    /// Operations taken that were new here.
    pub ops_new: i64,
    /// Runs refused, each by its reason (`bad_signature`, `unknown_author`,
    /// `truncated_segment`, `out_of_scope`).
    pub refused: Vec<String>,
    /// Bytes of the messages made.
    pub bytes_out: i64,
    /// Bytes of the messages read.
    pub bytes_in: i64,
}

impl From<&ExchangeReport> for PeerReport {
    fn from(r: &ExchangeReport) -> Self {
        PeerReport {
            runs_sent: count(r.runs_sent),
            ops_sent: count(r.ops_sent),
            runs_taken: count(r.runs_taken),
            ops_new: count(r.ops_new),
            refused: r.refused.clone(),
            bytes_out: count(r.bytes_out),
            bytes_in: count(r.bytes_in),
        }
    }
}

/// One side of an exchange with another enrolled phone of the same server. Send what
/// [`PeerExchange::start`] returns, give every message received to
/// [`PeerExchange::receive`] and send what it returns, until [`PeerExchange::is_done`]. A
/// phone gives only signed field work in the other officer's villages and takes only what its
/// server certified and signed and what lies in its own villages; what it takes, its next sync
/// delivers to the server.
#[derive(uniffi::Object)]
pub struct PeerExchange {
    store: Arc<FieldStore>,
    inner: Mutex<Exchange>,
}

impl std::fmt::Debug for PeerExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerExchange").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl PeerExchange {
    /// Begin an exchange on an enrolled store (`InvalidInput` naming `store` if it has not
    /// enrolled with a server that certifies keys).
    #[uniffi::constructor]
    pub fn new(store: Arc<FieldStore>) -> Result<Arc<Self>> {
        let inner = Exchange::new(&store.store()).map_err(DoorstepError::from)?;
        Ok(Arc::new(PeerExchange {
            store,
            inner: Mutex::new(inner),
        }))
    }

    /// The first message to send.
    pub fn start(&self) -> Result<Vec<u8>> {
        let store = self.store.store();
        let mut x = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(x.start(&store)?)
    }

    /// Read one message from the other phone; returns the messages to send back.
    pub fn receive(&self, message: Vec<u8>) -> Result<Vec<Vec<u8>>> {
        let mut store = self.store.store();
        let mut x = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(x.receive(&mut store, &message)?)
    }

    /// Whether both sides are done (close the link then).
    pub fn is_done(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_done()
    }

    /// What the exchange did so far.
    pub fn report(&self) -> PeerReport {
        PeerReport::from(
            self.inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .report(),
        )
    }
}
