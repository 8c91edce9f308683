//! Retention (#13, Decree 13/2023): when a campaign's retention has run out, `doorstep campaign
//! purge` erases its personal values — phone numbers, notes, locations, reasons — from the
//! server's tables and operation log (the PostgreSQL feed included) and, at their next sync,
//! from the phones' tables and logs; every figure of the reports stays the same. Before the
//! period ends it is refused unless `--early`. Both backends.

use doorstep_core::exchange::exchange_in_memory;
use doorstep_core::{
    AssistStep, HouseholdEdit, Location, NewAssist, NewVisit, ResidentEdit, VisitOutcome,
};
use doorstep_server::stats::Snapshot;
use doorstep_tests::harness::{pair, wall_ms, Server};

const V1: &str = "22738-01";
const OLD_PHONE: &str = "0912000001";
const NEW_PHONE: &str = "0912000002";
const NOTE: &str = "cửa sau, chó dữ";
const VISIT_NOTE: &str = "hẹn chiều thứ bảy";
const VALUES: [&str; 4] = [OLD_PHONE, NEW_PHONE, NOTE, VISIT_NOTE];

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every operation body of a store's log.
fn log_bytes(conn: &rusqlite::Connection) -> Vec<u8> {
    let mut stmt = conn.prepare("SELECT body FROM oplog").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    rows.flat_map(Result::unwrap).collect()
}

/// The province's report for today, as JSON, from the server's database.
fn report(server: &Server) -> String {
    let conn = server.reader();
    let now = wall_ms();
    let snap = Snapshot::build(&conn, now).unwrap();
    let today = chrono::DateTime::from_timestamp_millis(now)
        .unwrap()
        .date_naive();
    let campaign = snap
        .campaign(Some(server.world.campaign), Some(today))
        .unwrap();
    let r = snap.report("58", &campaign, today, &[], now).unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    // When it was made: the only thing allowed to differ.
    v.as_object_mut().unwrap().remove("as_of");
    serde_json::to_string(&v).unwrap()
}

#[test]
fn a_purge_erases_personal_values_everywhere_and_keeps_the_reports() {
    let mut server = Server::start(&pair(&[V1]), 2, 2);
    let mut d = server.enrol_device(0, "phone 1", 0);
    d.sync(&server.url()).unwrap();
    let officer = server.world.officers[0];
    let households = server.world.households_in(&[V1.to_string()]);
    let resident = server.world.residents[&households[0]][0];
    for phone in [OLD_PHONE, NEW_PHONE] {
        d.store
            .edit_resident(
                resident,
                ResidentEdit {
                    phone: Some(Some(phone.into())),
                    note: Some(Some(NOTE.into())),
                },
            )
            .unwrap();
        d.clock.advance(1000);
    }
    d.store
        .edit_household(
            households[1],
            HouseholdEdit {
                address: None,
                note: Some(Some(NOTE.into())),
            },
        )
        .unwrap();
    d.store
        .record_visit(NewVisit {
            household_id: households[0],
            officer_id: officer,
            at_ms: None,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: Some(VISIT_NOTE.into()),
            location: Some(Location {
                lat_e6: 11_565_000,
                lon_e6: 108_988_000,
            }),
        })
        .unwrap();
    d.store
        .record_assist(NewAssist {
            resident_id: resident,
            officer_id: officer,
            at_ms: None,
            step: AssistStep::Level1Guided,
            failure: None,
            receiving_point: None,
            note: Some(VISIT_NOTE.into()),
        })
        .unwrap();
    d.sync(&server.url()).unwrap();
    let bytes = server_log(&server);
    for v in VALUES {
        assert!(holds(&bytes, v), "{v} on the server before the purge");
    }
    let before = report(&server);

    // Before the retention has run out: refused, naming the field.
    let campaign = server.world.campaign;
    let err = server
        .purge(false)
        .expect_err("a purge before the retention ran out");
    assert!(err.contains("retention_days"), "{err}");

    let done = server.purge(true).unwrap();
    assert_eq!((done.households, done.residents), (1, 1), "{done:?}");
    assert_eq!(done.facts, 2, "{done:?}");
    assert!(done.rewritten >= 3, "{done:?}");

    let reader = server.reader();
    // The server's log (on PostgreSQL, the feed phones and other instances read).
    let bytes = server_log(&server);
    for v in VALUES {
        assert!(!holds(&bytes, v), "{v} still in the server's log");
    }
    let audited: i64 = reader
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'campaign_purge' AND target = ?1",
            [campaign.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
    let after = report(&server);
    assert!(after == before, "a report changed with the purge");

    // The phone receives the purge at its next sync and compacts its own log.
    let conn = d.store.connection();
    assert!(holds(&log_bytes(conn), OLD_PHONE));
    d.sync(&server.url()).unwrap();
    let conn = d.store.connection();
    let bytes = log_bytes(conn);
    for v in VALUES {
        assert!(!holds(&bytes, v), "{v} still in the phone's log");
    }
    let (phone, lat): (Option<String>, Option<i64>) = conn
        .query_row(
            "SELECT (SELECT phone FROM residents WHERE id = ?1), (SELECT lat_e6 FROM visits)",
            [resident.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((phone, lat), (None, None));
    // Nothing more to push, and a purge again erases nothing.
    assert_eq!(d.sync(&server.url()).unwrap().pushed, 0);
    let again = server.purge(true).unwrap();
    assert_eq!((again.households, again.residents, again.facts), (0, 0, 0));
}

/// A phone carrying a teammate's signed run when the purge reaches it keeps the run's bytes
/// (rewritten, they would no longer match the signature and the server would refuse the run)
/// until the server holds it; then it compacts them.
#[test]
fn a_carried_run_is_compacted_only_once_the_server_holds_it() {
    let mut server = Server::start(&pair(&[V1]), 2, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let households = server.world.households_in(&[V1.to_string()]);
    let (r0, r1) = (
        server.world.residents[&households[0]][0],
        server.world.residents[&households[1]][0],
    );
    // Something of b's the purge erases, so that the village gets a redaction.
    b.store
        .edit_resident(
            r1,
            ResidentEdit {
                phone: None,
                note: Some(Some(NOTE.into())),
            },
        )
        .unwrap();
    b.sync(&url).unwrap();
    // a, without coverage, changes a phone number twice and gives its work to b.
    for phone in [OLD_PHONE, NEW_PHONE] {
        a.store
            .edit_resident(
                r0,
                ResidentEdit {
                    phone: Some(Some(phone.into())),
                    note: None,
                },
            )
            .unwrap();
        a.clock.advance(1000);
    }
    let (ra, _) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(ra.runs_sent > 0, "{ra:?}");
    assert!(holds(&log_bytes(b.store.connection()), OLD_PHONE));

    let done = server.purge(true).unwrap();
    assert!(done.redactions > 0, "{done:?}");
    // b's sync: the pull brings the purge (a's superseded value is in a run the server lacks:
    // kept), the push relays a's run (accepted whole), and then b compacts it.
    let r = b.sync(&url).unwrap();
    assert!(r.rejected.is_empty(), "a's run refused: {:?}", r.rejected);
    assert!(r.relayed > 0, "{r:?}");
    let bytes = log_bytes(b.store.connection());
    assert!(!holds(&bytes, OLD_PHONE), "a's old number still in b's log");
    assert!(!holds(&bytes, NOTE), "b's erased note still in b's log");
    assert!(
        holds(&bytes, NEW_PHONE),
        "a's number, written after the purge, stays"
    );
    // The server took a's old number with the run: its next maintenance compacts it (on
    // PostgreSQL, the instance that catches up with the run may already have).
    if server.database.is_none() {
        assert!(holds(&server_log(&server), OLD_PHONE));
        assert!(server.compact() >= 1);
    } else {
        server.compact();
    }
    assert!(!holds(&server_log(&server), OLD_PHONE));
    assert!(holds(&server_log(&server), NEW_PHONE));
    assert_eq!(server.compact(), 0, "nothing left pending");
}

/// The server's operation log: the SQLite store's, or PostgreSQL's feed.
fn server_log(server: &Server) -> Vec<u8> {
    match &server.database {
        None => log_bytes(&server.reader()),
        Some(url) => {
            let mut pg = postgres::Client::connect(url, postgres::NoTls).unwrap();
            pg.query("SELECT op FROM feed", &[])
                .unwrap()
                .iter()
                .flat_map(|r| r.get::<_, Vec<u8>>(0))
                .collect()
        }
    }
}

/// `serve`'s maintenance purges a campaign once its retention has run out (here the harness
/// campaign's last day plus the default 90 days), not before.
#[test]
fn the_maintenance_purges_a_campaign_when_its_retention_has_run_out() {
    let mut server = Server::start(&pair(&[V1]), 1, 2);
    let url = server.url();
    let mut d = server.enrol_device(0, "phone", 0);
    d.sync(&url).unwrap();
    let households = server.world.households_in(&[V1.to_string()]);
    let resident = server.world.residents[&households[0]][0];
    d.store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some(OLD_PHONE.into())),
                note: None,
            },
        )
        .unwrap();
    d.sync(&url).unwrap();
    let day = 86_400_000i64;
    // The harness campaign ends 400 days from now and keeps its data 90 days more.
    assert!(server.maintain_at(wall_ms()).is_empty(), "purged too early");
    assert!(
        server.maintain_at(wall_ms() + 480 * day).is_empty(),
        "purged too early"
    );
    assert_eq!(
        server.maintain_at(wall_ms() + 500 * day),
        vec![server.world.campaign]
    );
    assert!(!holds(&server_log(&server), OLD_PHONE));
    let by: String = server
        .reader()
        .query_row(
            "SELECT actor FROM audit WHERE action = 'campaign_purge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by, "retention");
    d.sync(&url).unwrap();
    assert!(!holds(&log_bytes(d.store.connection()), OLD_PHONE));
}
