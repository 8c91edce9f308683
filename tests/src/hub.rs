//! A station hub for the tests and benches: enrolled at a test server with a new commune
//! lead's code, serving phones on a loopback port until dropped.

use crate::harness::{Device, Server};
use doorstep_core::exchange::ExchangeReport;
use doorstep_core::Store;
use doorstep_server::hub::{Hub, HubConfig};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running hub.
pub struct TestHub {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Where phones reach it.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    serving: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// A hub of commune A reaching `server` at `upstream` (its URL, or a proxy's), each
    /// request tried `attempts` times; enrolled and synced once (it learns the commune).
    pub fn start(server: &Server, upstream: &str, attempts: u32) -> TestHub {
        let (_, code) = server.commune_lead_code("Trưởng Công an xã");
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(
            Hub::open(&HubConfig {
                upstream: upstream.to_owned(),
                store: dir.path().join("hub.db"),
                code: Some(code),
                every: Duration::from_secs(3600),
                trusted_ca_pem: None,
                attempts,
                key: None,
            })
            .unwrap(),
        );
        hub.sync_upstream().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let serving = {
            let (hub, stop) = (hub.clone(), stop.clone());
            std::thread::spawn(move || hub.serve_phones(listener, stop))
        };
        TestHub {
            hub,
            addr,
            stop,
            serving: Some(serving),
            _dir: dir,
        }
    }

    /// One exchange of phone `d` with the hub, over TCP; panics on an error or a refused run.
    pub fn exchange(&self, d: &mut Device) -> ExchangeReport {
        let placeholder = Store::open_in_memory(Default::default()).unwrap();
        let store = Mutex::new(std::mem::replace(&mut d.store, placeholder));
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = doorstep_core::peer_stream::exchange_over(&store, &mut s);
        d.store = store.into_inner().unwrap();
        let r = r.unwrap_or_else(|e| panic!("{}: {e}", d.name));
        assert!(r.refused.is_empty(), "{}: {r:?}", d.name);
        r
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.serving.take() {
            let _ = t.join();
        }
    }
}
