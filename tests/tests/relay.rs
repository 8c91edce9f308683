//! Work that travels without its author (#14): signed runs given phone to phone (in memory and
//! over a TCP socket), relayed to the server by the phone that reaches coverage, checked by the
//! server against the author; forged, altered, truncated, unknown, revoked and out-of-scope runs
//! refused with a reason and nothing of them stored. On SQLite and, with
//! `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_core::exchange::{exchange_in_memory, Exchange, PeerMessage};
use doorstep_core::wire::{PushRequest, PushResponse, PROTOCOL_VERSION};
use doorstep_core::{Op, Store};
use doorstep_tests::harness::{wall_ms, Device, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::{Read, Write};

fn spec(name: &str, villages: &[&str]) -> OfficerSpec {
    OfficerSpec {
        name: name.into(),
        commune: COMMUNE_A.into(),
        villages: villages.iter().map(|v| v.to_string()).collect(),
    }
}

/// Officer 0 and 1 share village 01; officer 2 works village 02 only.
fn team() -> Vec<OfficerSpec> {
    vec![
        spec("Trần Văn Bình", &["22738-01"]),
        spec("Lê Thị Hoa", &["22738-01"]),
        spec("Phạm Văn Cường", &["22738-02"]),
    ]
}

fn sync(d: &mut Device, url: &str) -> doorstep_core::sync::SyncReport {
    d.sync(url)
        .unwrap_or_else(|e| panic!("{}: sync failed: {e}", d.name))
}

/// What the server acknowledges of a device's own operations.
fn acked_of(server: &Server, d: &Device) -> i64 {
    server
        .reader()
        .query_row(
            "SELECT acked_counter FROM devices WHERE id = ?1",
            [d.device_id.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

fn server_ops_of(server: &Server, d: &Device) -> i64 {
    scope::replica_ops(&server.reader(), &d.replica()).0
}

#[test]
fn a_team_without_coverage_shares_its_work_and_one_phone_delivers_it() {
    let mut server = Server::start(&team(), 5, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut c = server.enrol_device(2, "c", 0);
    for d in [&mut a, &mut b, &mut c] {
        sync(d, &url);
    }
    // Three days without coverage: everyone works.
    let mut rng = StdRng::seed_from_u64(140);
    for d in [&mut a, &mut b, &mut c] {
        actions::random_work(d, &server.world, &mut rng, 40);
    }
    // A and B meet: each gets the other's work of village 01.
    let (ra, rb) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(ra.runs_sent > 0 && rb.runs_sent > 0, "{ra:?} {rb:?}");
    assert!(
        ra.refused.is_empty() && rb.refused.is_empty(),
        "{ra:?} {rb:?}"
    );
    for f in &a.facts {
        assert!(
            scope::holds_fact(b.store.connection(), f),
            "b lacks a's {f}"
        );
    }
    for f in &b.facts {
        assert!(
            scope::holds_fact(a.store.connection(), f),
            "a lacks b's {f}"
        );
    }
    // A second meeting gives nothing again.
    let (ra2, rb2) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert_eq!((ra2.runs_sent, rb2.runs_sent), (0, 0), "{ra2:?} {rb2:?}");
    // A meets C (village 02 only): nothing crosses villages.
    let (rac, rca) = exchange_in_memory(&mut a.store, &mut c.store).unwrap();
    assert_eq!((rac.runs_sent, rca.runs_sent), (0, 0), "{rac:?} {rca:?}");
    // B reaches coverage: its sync delivers A's work too.
    let before = server_ops_of(&server, &a);
    let r = sync(&mut b, &url);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert!(r.relayed > 0, "{r:?}");
    assert_eq!(
        server_ops_of(&server, &a),
        a.store.own_counter() as i64,
        "the server holds all of a's work (it had {before})"
    );
    let acked: i64 = acked_of(&server, &a);
    assert_eq!(
        acked,
        a.store.own_counter() as i64,
        "a's acknowledgement follows the relay"
    );
    // A syncs later: nothing to push, nothing pushed twice.
    // (b's runs a carries are not relayed either: the pull said the server holds them.)
    let ra = sync(&mut a, &url);
    assert_eq!(
        (ra.pushed, ra.push_duplicates, ra.relayed),
        (0, 0, 0),
        "{ra:?}"
    );
    sync(&mut c, &url);
    sync(&mut b, &url);
    scope::assert_converged(&server, &[&a, &b, &c]);
}

/// An officer who goes back and forth between two villages signs one run per village, not
/// one per change of village (a segment's 100-odd bytes are paid per run); a phone of one of
/// the villages receives only that village's run, and relays it, accepted.
#[test]
fn a_day_across_two_villages_is_one_run_per_village() {
    let team = vec![
        spec("Đỗ Thị Lan", &["22738-01", "22738-02"]),
        spec("Lê Thị Hoa", &["22738-01"]),
        spec("Phạm Văn Cường", &["22738-01", "22738-02"]),
        spec("Võ Văn Dũng", &["22738-02"]),
    ];
    let mut server = Server::start(&team, 5, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut c = server.enrol_device(2, "c", 0);
    let mut d = server.enrol_device(3, "d", 0);
    for p in [&mut a, &mut b, &mut c, &mut d] {
        sync(p, &url);
    }
    let acked_before = server_ops_of(&server, &a);
    let mut rng = StdRng::seed_from_u64(141);
    actions::random_work(&mut a, &server.world, &mut rng, 80);
    let villages_worked: std::collections::BTreeSet<String> = a
        .store
        .connection()
        .prepare(
            "SELECT DISTINCT h.village_code FROM visits v JOIN households h
             ON h.id = v.household_id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(villages_worked.len(), 2, "{villages_worked:?}");
    // Two villages' runs, and at most one of operations filed under no village.
    let runs = a.store.sign_pending().unwrap();
    assert!((2..=3).contains(&runs), "{runs} runs");
    // The run holding a's first unacknowledged counter goes first, relayed by a phone of
    // its village alone (b: 01, d: 02); the other village's run interleaves with it.
    let first_village: String = a
        .store
        .connection()
        .query_row(
            "SELECT village_code FROM segments WHERE replica = ?1 AND village_code IS NOT NULL
             ORDER BY first LIMIT 1",
            [a.replica().as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    let relayer = if first_village == "22738-01" {
        &mut b
    } else {
        &mut d
    };
    let (ra, rb) = exchange_in_memory(&mut a.store, &mut relayer.store).unwrap();
    assert!(
        ra.refused.is_empty() && rb.refused.is_empty(),
        "{ra:?} {rb:?}"
    );
    assert_eq!(
        ra.runs_sent, 1,
        "only village {first_village}'s run: {ra:?}"
    );
    let rb = sync(relayer, &url);
    assert!(rb.rejected.is_empty(), "{:?}", rb.rejected);
    assert!(rb.relayed > 0, "{rb:?}");
    // The server holds that run, not the other village's interleaved with it: a's
    // acknowledgement must not pass the first counter it lacks.
    let acked: i64 = acked_of(&server, &a);
    let lacked: i64 = a
        .store
        .connection()
        .query_row(
            "SELECT min(first) FROM segments WHERE replica = ?1 AND village_code IS NOT ?2",
            rusqlite::params![a.replica().as_bytes().as_slice(), first_village],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        acked < lacked,
        "acknowledged through {acked}, but the server lacks {lacked} (before: {acked_before})"
    );
    // c works both villages: both runs, interleaved counters, in one relayed push.
    let (ra, _) = exchange_in_memory(&mut a.store, &mut c.store).unwrap();
    assert_eq!(ra.runs_sent, 2, "{ra:?}");
    let rc = sync(&mut c, &url);
    assert!(rc.rejected.is_empty(), "{:?}", rc.rejected);
    assert!(rc.relayed > 0, "{rc:?}");
    // a's own sync brings whatever is left, nothing twice, nothing lost.
    let ra = sync(&mut a, &url);
    assert!(ra.rejected.is_empty(), "{ra:?}");
    assert_eq!(server_ops_of(&server, &a), a.store.own_counter() as i64);
    for p in [&mut b, &mut c, &mut d] {
        sync(p, &url);
    }
    scope::assert_converged(&server, &[&a, &b, &c, &d]);
}

/// A phone that synced part of its work signs the rest as runs of their own: the phone that
/// carries its work later relays only what the server lacks, not again what it holds.
#[test]
fn work_the_server_holds_is_not_relayed_again() {
    let mut server = Server::start(&team(), 5, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    sync(&mut a, &url);
    sync(&mut b, &url);
    let mut rng = StdRng::seed_from_u64(142);
    actions::random_work(&mut a, &server.world, &mut rng, 30);
    let synced = sync(&mut a, &url);
    assert!(synced.pushed > 0, "{synced:?}");
    let held = a.store.own_counter();
    actions::random_work(&mut a, &server.world, &mut rng, 30);
    let later = a.store.own_counter() - held;
    let (ra, _) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(ra.refused.is_empty() && ra.ops_sent >= later, "{ra:?}");
    let r = sync(&mut b, &url);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(
        (r.relayed, r.push_duplicates),
        (later, 0),
        "only a's work after its sync is relayed: {r:?}"
    );
    assert_eq!(server_ops_of(&server, &a), a.store.own_counter() as i64);
}

/// Length-prefixed frames over a TCP stream.
fn send(s: &mut std::net::TcpStream, m: &[u8]) {
    s.write_all(&(m.len() as u32).to_le_bytes()).unwrap();
    s.write_all(m).unwrap();
}

fn recv(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut n = [0u8; 4];
    s.read_exact(&mut n).unwrap();
    let mut m = vec![0u8; u32::from_le_bytes(n) as usize];
    s.read_exact(&mut m).unwrap();
    m
}

/// One side of an exchange over a socket: send what the library says, read until both are done.
fn run_side(
    store: &mut Store,
    mut s: std::net::TcpStream,
) -> doorstep_core::exchange::ExchangeReport {
    let mut x = Exchange::new(store).unwrap();
    let hello = x.start(store).unwrap();
    send(&mut s, &hello);
    while !x.is_done() {
        let m = recv(&mut s);
        for out in x.receive(store, &m).unwrap() {
            send(&mut s, &out);
        }
    }
    x.report().clone()
}

#[test]
fn two_phones_exchange_over_tcp_loopback() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    for d in [&mut a, &mut b] {
        sync(d, &url);
    }
    let mut rng = StdRng::seed_from_u64(141);
    actions::random_work(&mut a, &server.world, &mut rng, 30);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut store_a = std::mem::replace(
        &mut a.store,
        Store::open_in_memory(Default::default()).unwrap(),
    );
    let side_a = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let r = run_side(&mut store_a, s);
        (store_a, r)
    });
    let s = std::net::TcpStream::connect(addr).unwrap();
    let rb = run_side(&mut b.store, s);
    let (store_a, ra) = side_a.join().unwrap();
    a.store = store_a;
    assert!(
        ra.ops_sent > 0 && rb.ops_new == ra.ops_sent,
        "{ra:?} {rb:?}"
    );
    for f in &a.facts {
        assert!(
            scope::holds_fact(b.store.connection(), f),
            "b lacks a's {f}"
        );
    }
    let r = sync(&mut b, &url);
    assert!(r.relayed > 0 && r.rejected.is_empty(), "{r:?}");
    sync(&mut a, &url);
    scope::assert_converged(&server, &[&a, &b]);
}

/// Push `ops` with `segments` as device `carrier` straight to the server.
fn push_raw(
    server: &Server,
    carrier: &Device,
    ops: Vec<Op>,
    segments: Vec<doorstep_core::Segment>,
) -> PushResponse {
    let body = serde_json::to_vec(&PushRequest {
        protocol: PROTOCOL_VERSION,
        device_time_ms: wall_ms(),
        ops,
        segments,
    })
    .unwrap();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sync/push", server.url()))
        .bearer_auth(&carrier.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

fn reasons(r: &PushResponse) -> Vec<String> {
    let mut v: Vec<String> = r.rejected.iter().map(|x| x.reason.clone()).collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn forged_altered_truncated_unknown_revoked_and_out_of_scope_runs_are_refused() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    for d in [&mut a, &mut b] {
        sync(d, &url);
    }
    let mut rng = StdRng::seed_from_u64(142);
    // A's clock five minutes behind: all it records before the revocation below is stamped
    // before it (the random work moves the clock ahead as it goes, and a run is taken after
    // the revocation only if its operations, not only its signature, are older).
    a.clock
        .set((wall_ms() - a.store.clock_offset_ms() - 300_000) as u64);
    actions::random_work(&mut a, &server.world, &mut rng, 20);
    a.store.sign_pending().unwrap();
    let runs = a.store.undelivered("test", true, None, usize::MAX).unwrap();
    assert!(!runs.is_empty());
    let run = runs[0].clone();
    let stored = |s: &Server| scope::replica_ops(&s.reader(), &a.replica()).0;
    // Altered: one operation's stamp changed.
    let mut altered = run.ops.clone();
    altered[0].hlc = doorstep_core::Hlc::new(altered[0].hlc.physical_ms() + 1, 0);
    let r = push_raw(&server, &b, altered, vec![run.segment.clone()]);
    assert_eq!(reasons(&r), ["bad_signature"]);
    // Truncated: the last operation left out.
    if run.ops.len() > 1 {
        let cut = run.ops[..run.ops.len() - 1].to_vec();
        let r = push_raw(&server, &b, cut, vec![run.segment.clone()]);
        assert_eq!(reasons(&r), ["truncated_segment"]);
    }
    // Forged: signed by another key (b's store signs a's operations as if a's).
    let forged = {
        let refs: Vec<&Op> = run.ops.iter().collect();
        doorstep_core::sign::sign_segment(&doorstep_core::sign::new_key(), &refs, wall_ms())
            .unwrap()
    };
    let r = push_raw(&server, &b, run.ops.clone(), vec![forged]);
    assert_eq!(reasons(&r), ["bad_signature"]);
    // No segment at all: another replica's operations.
    let r = push_raw(&server, &b, run.ops.clone(), Vec::new());
    assert_eq!(reasons(&r), ["foreign_replica"]);
    // Unknown author: a replica no device holds.
    let mut stranger = Store::open_in_memory(Default::default()).unwrap();
    let stranger_ops: Vec<Op> = run
        .ops
        .iter()
        .map(|o| Op {
            replica: stranger.replica_id(),
            ..o.clone()
        })
        .collect();
    stranger.apply_ops(&stranger_ops).unwrap();
    stranger.sign_pending().unwrap();
    let srun = stranger.undelivered("t", true, None, 1).unwrap().remove(0);
    let r = push_raw(&server, &b, srun.ops, vec![srun.segment]);
    assert_eq!(reasons(&r), ["unknown_author"]);
    assert_eq!(stored(&server), 0, "nothing of a refused run is stored");
    // The genuine run goes through, credited to a.
    let r = push_raw(&server, &b, run.ops.clone(), vec![run.segment.clone()]);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.applied as usize, run.ops.len());
    assert_eq!(stored(&server), run.ops.len() as i64);
    // Out of a's scope: a's store writes into village 02 (a works village 01 only), signs it;
    // b relays it. The author's scope decides, not the carrier's.
    a.clock.advance(1000);
    a.store
        .put_household(doorstep_core::HouseholdInput {
            id: uuid::Uuid::now_v7(),
            code: "HX-0001".into(),
            village_code: "22738-02".into(),
            address: None,
            head_id: None,
        })
        .unwrap();
    a.store.sign_pending().unwrap();
    let late: Vec<_> = a
        .store
        .undelivered("test", true, Some(&["22738-02".to_owned()]), usize::MAX)
        .unwrap();
    assert_eq!(late.len(), 1);
    let r = push_raw(
        &server,
        &b,
        late[0].ops.clone(),
        vec![late[0].segment.clone()],
    );
    assert_eq!(reasons(&r), ["out_of_scope"]);
    // Revoked: a run a signs after its device is revoked is refused by any path; one signed
    // (and stamped) before is still taken.
    actions::random_work(&mut a, &server.world, &mut rng, 5);
    // Signed now.
    a.clock
        .set((wall_ms() - a.store.clock_offset_ms() - 1_000) as u64);
    a.store.sign_pending().unwrap();
    let before_revocation: Vec<_> = a
        .store
        .undelivered("test2", true, Some(&["22738-01".to_owned()]), usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|r| r.segment.first > run.segment.last)
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    server.revoke(a.device_id);
    a.clock
        .set((wall_ms() + 5_000 - a.store.clock_offset_ms()) as u64);
    actions::random_work(&mut a, &server.world, &mut rng, 5);
    a.store.sign_pending().unwrap();
    let after: Vec<_> = a
        .store
        .undelivered("test3", true, Some(&["22738-01".to_owned()]), usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|r| {
            before_revocation
                .iter()
                .all(|b| b.segment.first != r.segment.first)
        })
        .filter(|r| r.segment.first > run.segment.last)
        .collect();
    assert!(!after.is_empty());
    for r in &after {
        let resp = push_raw(&server, &b, r.ops.clone(), vec![r.segment.clone()]);
        assert_eq!(reasons(&resp), ["revoked"], "{:?}", r.segment);
    }
    for r in &before_revocation {
        let resp = push_raw(&server, &b, r.ops.clone(), vec![r.segment.clone()]);
        assert!(
            !reasons(&resp).contains(&"revoked".to_owned()),
            "{:?}",
            resp.rejected
        );
    }
}

/// A certificate is not an identity: certificates travel with every run and bundle, so a
/// device that presents another's (on the hub's LAN, say) but cannot sign the exchange's
/// challenge with its key gets nothing, and the runs it sends are not taken.
#[test]
fn a_borrowed_certificate_gets_nothing() {
    use ed25519_dalek::Signer;
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let b = server.enrol_device(1, "b", 0);
    sync(&mut a, &url);
    let mut rng = StdRng::seed_from_u64(143);
    actions::random_work(&mut a, &server.world, &mut rng, 10);
    let borrowed = b.store.certificate().unwrap().unwrap();
    let mut x = Exchange::new(&a.store).unwrap();
    let PeerMessage::Hello {
        challenge,
        ephemeral: a_ephemeral,
        ..
    } = PeerMessage::decode(&x.start(&a.store).unwrap()).unwrap()
    else {
        panic!("the first message is a Hello");
    };
    let x_ephemeral = [9; 32];
    let hello = PeerMessage::Hello {
        certificate: borrowed.clone(),
        vector: Vec::new(),
        challenge: [7; 32],
        ephemeral: x_ephemeral,
    };
    let out = x.receive(&mut a.store, &hello.encode()).unwrap();
    // A answers with its own proof, and nothing else.
    assert_eq!(out.len(), 1);
    assert!(matches!(
        PeerMessage::decode(&out[0]).unwrap(),
        PeerMessage::Proof { .. }
    ));
    assert!(x
        .receive(&mut a.store, &PeerMessage::Runs(Vec::new()).encode())
        .is_err());
    // The challenge signed with a key that is not the certificate's: refused, nothing given.
    let digest = doorstep_core::sign::peer_proof_digest(
        &challenge,
        borrowed.device_id,
        a.store.certificate().unwrap().unwrap().device_id,
        &x_ephemeral,
        &a_ephemeral,
    );
    let forged = PeerMessage::Proof {
        signature: doorstep_core::sign::new_key()
            .sign(&digest)
            .to_bytes()
            .to_vec(),
    };
    let e = x.receive(&mut a.store, &forged.encode()).unwrap_err();
    assert!(
        matches!(e, doorstep_core::Error::Invalid { field: "proof", .. }),
        "{e}"
    );
    assert!(!x.is_done());
    assert_eq!(x.report().runs_sent, 0, "{:?}", x.report());
}

/// What two phones give each other travels sealed: the bytes on the link (the hub's LAN, a
/// Bluetooth socket) hold no resident's value, a message altered, dropped or replayed is
/// refused, and the work still arrives whole.
#[test]
fn what_phones_exchange_is_sealed() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    sync(&mut a, &url);
    sync(&mut b, &url);
    const NOTE: &str = "Bà cụ nhờ con gái gọi lại";
    let household = server.world.households_in(&a.villages)[0];
    let visit = a
        .store
        .record_visit(doorstep_core::NewVisit {
            household_id: household,
            officer_id: a.officer,
            at_ms: None,
            outcome: doorstep_core::VisitOutcome::Met,
            revisit_at_ms: None,
            note: Some(NOTE.into()),
            location: None,
        })
        .unwrap();
    let name: String = a
        .store
        .connection()
        .query_row(
            "SELECT full_name FROM residents WHERE household_id = ?1 LIMIT 1",
            [household.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    // Pump the messages by hand, keeping every byte that crosses the link.
    let mut wire: Vec<Vec<u8>> = Vec::new();
    let mut x = Exchange::new(&a.store).unwrap();
    let mut y = Exchange::new(&b.store).unwrap();
    let mut to_y = vec![x.start(&a.store).unwrap()];
    let mut to_x = vec![y.start(&b.store).unwrap()];
    let mut tampered = false;
    while !(x.is_done() && y.is_done()) {
        assert!(
            !(to_x.is_empty() && to_y.is_empty()),
            "the exchange stalled"
        );
        let mut next_y = Vec::new();
        for m in to_x.drain(..) {
            wire.push(m.clone());
            next_y.extend(x.receive(&mut a.store, &m).unwrap());
        }
        let mut next_x = Vec::new();
        for m in to_y.drain(..) {
            wire.push(m.clone());
            if !tampered && matches!(PeerMessage::decode(&m), Ok(PeerMessage::Sealed(_))) {
                tampered = true;
                // Altered, replayed ahead of its turn: both refused, nothing taken.
                let mut bent = m.clone();
                let last = bent.len() - 1;
                bent[last] ^= 0x40;
                let mut probe = Exchange::new(&b.store).unwrap();
                assert!(probe.receive(&mut b.store, &bent).is_err());
                assert!(
                    y.receive(&mut b.store, &bent).is_err(),
                    "an altered message was read"
                );
                // The real message is still the next one expected: the exchange goes on.
            }
            next_x.extend(y.receive(&mut b.store, &m).unwrap());
        }
        to_y = next_y;
        to_x = next_x;
    }
    assert!(tampered, "no sealed message crossed");
    assert!(y.report().runs_taken > 0, "{:?}", y.report());
    assert!(scope::holds_fact(b.store.connection(), &visit));
    let bytes: Vec<u8> = wire.concat();
    for secret in [NOTE, name.as_str()] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} readable on the link"
        );
    }
    // Plain runs are refused once the channel exists.
    let mut z = Exchange::new(&a.store).unwrap();
    let mut w = Exchange::new(&b.store).unwrap();
    let hello_w = w.start(&b.store).unwrap();
    z.start(&a.store).unwrap();
    z.receive(&mut a.store, &hello_w).unwrap();
    assert!(z
        .receive(&mut a.store, &PeerMessage::Runs(Vec::new()).encode())
        .is_err());
}
