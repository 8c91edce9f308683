//! The station hub (#14): five phones of a commune exchange their work with the hub over TCP
//! while the hub is cut off from the province server for three days; every phone sees the
//! others' work of its villages through the hub; when the link comes back the hub delivers
//! everything once, and the phones' own syncs then push nothing twice. On SQLite and, with
//! `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_core::exchange::ExchangeReport;
use doorstep_core::Store;
use doorstep_server::hub::{Hub, HubConfig};
use doorstep_tests::harness::{Device, Server};
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One exchange of phone `d` with the hub at `addr`, over TCP.
fn with_hub(d: &mut Device, addr: SocketAddr) -> ExchangeReport {
    let placeholder = Store::open_in_memory(Default::default()).unwrap();
    let store = Mutex::new(std::mem::replace(&mut d.store, placeholder));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = doorstep_core::peer_stream::exchange_over(&store, &mut s);
    d.store = store.into_inner().unwrap();
    let r = r.unwrap_or_else(|e| panic!("{}: {e}", d.name));
    assert!(r.refused.is_empty(), "{}: {r:?}", d.name);
    r
}

/// The facts (visits, assistance steps) a store holds.
fn facts(d: &Device) -> BTreeSet<String> {
    d.store
        .connection()
        .prepare("SELECT id FROM visits UNION SELECT id FROM assists")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_hub_cut_off_for_three_days_carries_five_phones_work_once() {
    let mut server = Server::start(&doorstep_tests::harness::pair(&["22738-01"]), 4, 2);
    let url = server.url();
    let (_, code) = server.commune_lead_code("Nguyễn Văn Trưởng");
    let mut phones: Vec<Device> = (0..5)
        .map(|i| server.enrol_device(usize::from(i >= 3), &format!("p{i}"), 0))
        .collect();
    for p in &mut phones {
        p.sync(&url).unwrap();
    }
    // The hub reaches the province server through a link the test can cut.
    let link = Proxy::start(server.addr);
    let dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(
        Hub::open(&HubConfig {
            upstream: link.url(),
            store: dir.path().join("hub.db"),
            code: Some(code),
            every: Duration::from_secs(3600),
            trusted_ca_pem: None,
            attempts: 1,
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
    let before: Vec<i64> = phones
        .iter()
        .map(|p| scope::replica_ops(&server.reader(), &p.replica()).0)
        .collect();

    // Three days without the province server.
    link.set(Fault::DropRequestAfter(0));
    let mut rng = StdRng::seed_from_u64(77);
    for day in 0..3 {
        // (The phones' clocks stand still: the server takes no work stamped in its future,
        // so a "day" here is a round of work, not 24 hours on the clocks.)
        for p in &mut phones {
            actions::random_work(p, &server.world, &mut rng, 8);
        }
        // Twice round: the first phones to come get the later ones' work the second time.
        for _ in 0..2 {
            for p in &mut phones {
                with_hub(p, addr);
            }
        }
        let all: BTreeSet<String> = phones.iter().flat_map(facts).collect();
        for p in &phones {
            assert_eq!(
                facts(p),
                all,
                "day {day}: {} lacks work of the others",
                p.name
            );
        }
        assert!(hub.sync_upstream().is_err(), "the link is cut");
    }
    for (p, n) in phones.iter().zip(&before) {
        assert_eq!(scope::replica_ops(&server.reader(), &p.replica()).0, *n);
    }

    // The link is back: the hub delivers everything, once.
    link.clear();
    let r = hub.sync_upstream().unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let made: u64 = phones
        .iter()
        .zip(&before)
        .map(|(p, n)| p.store.own_counter() - *n as u64)
        .sum();
    assert_eq!(r.relayed, made, "{r:?}");
    for p in &phones {
        assert_eq!(
            scope::replica_ops(&server.reader(), &p.replica()).0,
            p.store.own_counter() as i64
        );
    }
    // Each phone's own sync the next day: nothing pushed twice, everything in place.
    for p in &mut phones {
        let s = p.sync(&url).unwrap();
        assert_eq!((s.pushed, s.push_duplicates), (0, 0), "{}: {s:?}", p.name);
        assert!(s.rejected.is_empty(), "{}: {s:?}", p.name);
    }
    let refs: Vec<&Device> = phones.iter().collect();
    scope::assert_converged(&server, &refs);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    serving.join().unwrap().unwrap();
}
