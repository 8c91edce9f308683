//! The command centre end to end: the counting rules on a small hand-made store, sign-in and
//! scope (401 unsigned, 403 across communes), escaping, and the XLSX/CSV reports read back and
//! compared with the JSON API.
//!
//! The store: province 58 → districts 586, 587 → communes 22813 (586), 22814 (587) → villages
//! 22813-01, 22813-02, 22814-01. Six residents; officers A, B (22813), C (22814, whose name
//! carries a `<script>`). Days D1..D3 are 2023-07-01..03.

use chrono::NaiveDate;
use doorstep_core::*;
use doorstep_server::backend::Backend;
use doorstep_server::stats::{Report, StatsCache};
use doorstep_server::SqliteBackend;
use reqwest::blocking::{Client as Raw, RequestBuilder, Response};
use reqwest::redirect::Policy;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

mod common;
use common::{on_both_backends, open_db, Db};

const D1: &str = "2023-07-01";
const D2: &str = "2023-07-02";
const D3: &str = "2023-07-03";

fn noon(day: &str, minute: i64) -> i64 {
    // 12:00 in Vietnam is 05:00 UTC.
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(5, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        + minute * 60_000
}

struct World {
    campaign: Uuid,
    a: Uuid,
    b: Uuid,
    c: Uuid,
    r: Vec<Uuid>,
    /// A's level-1 activation of r[0] on D1 (the earliest; retracted in one test).
    a1: Uuid,
}

fn build(s: &mut Store) -> World {
    for (code, parent, level, name) in [
        ("58", None, UnitLevel::Province, "Ninh Thuận"),
        ("586", Some("58"), UnitLevel::District, "Huyện Một"),
        ("587", Some("58"), UnitLevel::District, "Huyện Hai"),
        ("22813", Some("586"), UnitLevel::Commune, "Xã Một"),
        ("22814", Some("587"), UnitLevel::Commune, "Xã Hai"),
        ("22813-01", Some("22813"), UnitLevel::Village, "Thôn 1"),
        ("22813-02", Some("22813"), UnitLevel::Village, "Thôn 2"),
        (
            "22814-01",
            Some("22814"),
            UnitLevel::Village,
            "Thôn <b>3</b>",
        ),
    ] {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "thôn".into(),
            name: name.into(),
        })
        .unwrap();
    }
    let campaign = Uuid::now_v7();
    s.put_campaign(CampaignInput {
        id: campaign,
        name: "80 ngày đêm".into(),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
        target: 1000,
        unit_code: "58".into(),
    })
    .unwrap();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for (id, name, unit, village) in [
        (a, "Cán bộ A", "22813", "22813-01"),
        (b, "Cán bộ B", "22813", "22813-02"),
        (c, "<script>alert(1)</script> C", "22814", "22814-01"),
    ] {
        s.put_officer(OfficerInput {
            id,
            name: name.into(),
            role: Role::Field,
            unit_code: unit.into(),
        })
        .unwrap();
        s.assign(id, AssignTarget::Village(village.into())).unwrap();
    }
    let mut r = Vec::new();
    for (i, (village, account, agency)) in [
        ("22813-01", RosterStatus::None, None),
        ("22813-01", RosterStatus::None, None),
        ("22813-01", RosterStatus::None, Some("Công an huyện")),
        ("22813-02", RosterStatus::Level2Pending, None),
        ("22814-01", RosterStatus::None, None),
        ("22814-01", RosterStatus::None, None),
        // Already activated when the campaign starts (schema v2 roster statuses).
        (
            "22814-01",
            RosterStatus::Level2Activated,
            Some("UBND xã Hai"),
        ),
        ("22813-02", RosterStatus::Level1Activated, None),
    ]
    .into_iter()
    .enumerate()
    {
        let h = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: h,
            code: format!("H{i}"),
            village_code: village.into(),
            address: None,
            head_id: None,
        })
        .unwrap();
        let id = Uuid::now_v7();
        s.put_resident(ResidentInput {
            id,
            household_id: h,
            full_name: "Nguyễn Văn A".into(),
            birth_date: "1990".into(),
            gender: None,
            id_number: None,
            phone: None,
            relation: None,
            account,
            agency: agency.map(Into::into),
        })
        .unwrap();
        r.push(id);
        if i == 0 {
            for m in [0, 30] {
                s.record_visit(NewVisit {
                    household_id: h,
                    officer_id: a,
                    at_ms: Some(noon(D1, m)),
                    outcome: VisitOutcome::Met,
                    revisit_at_ms: None,
                    note: None,
                    location: None,
                })
                .unwrap();
            }
        }
    }
    let mut step = |res: Uuid, officer: Uuid, at: i64, step: AssistStep, failure| {
        s.record_assist(NewAssist {
            resident_id: res,
            officer_id: officer,
            at_ms: Some(at),
            step,
            failure,
            receiving_point: (step == AssistStep::Level2Received).then(|| "Công an xã".into()),
            note: None,
        })
        .unwrap()
    };
    // Two teams activate r0 at level 1: A on D1 (earliest), B on D2.
    let a1 = step(r[0], a, noon(D1, 0), AssistStep::Level1Activated, None);
    step(r[0], b, noon(D2, 0), AssistStep::Level1Activated, None);
    // r1: level 2 by A, then again by B later the same day: counted once, for A.
    step(r[1], a, noon(D1, 10), AssistStep::Level2Activated, None);
    step(r[1], b, noon(D1, 20), AssistStep::Level2Activated, None);
    // r3 (roster: level-2 application already received): received again, then activated.
    step(r[3], b, noon(D1, 0), AssistStep::Level2Received, None);
    step(r[3], b, noon(D2, 0), AssistStep::Level2Activated, None);
    // r4: two failures.
    step(
        r[4],
        c,
        noon(D1, 0),
        AssistStep::Level1Activated,
        Some(FailureReason::OtpNotReceived),
    );
    step(
        r[4],
        c,
        noon(D1, 5),
        AssistStep::Level1Activated,
        Some(FailureReason::PhoneNotOwnName),
    );
    // r5: level 1 then level 2 on D3: activated once.
    step(r[5], c, noon(D3, 0), AssistStep::Level1Activated, None);
    step(r[5], c, noon(D3, 5), AssistStep::Level2Activated, None);
    // r7 (roster: level 1 activated) reaches level 2 on D3: a level-2 activation, but not a
    // new activated account.
    step(r[7], b, noon(D3, 10), AssistStep::Level2Activated, None);
    // Receiving sessions and outreach (schema v2).
    s.record_session(NewSession {
        unit_code: "22813".into(),
        officer_id: a,
        kind: SessionKind::Mobile,
        place: "Chợ <Một>".into(),
        starts_at_ms: noon(D2, -180),
        ends_at_ms: noon(D2, 0),
        applications: 12,
        note: None,
    })
    .unwrap();
    s.record_session(NewSession {
        unit_code: "22814".into(),
        officer_id: c,
        kind: SessionKind::Fixed,
        place: "Trụ sở công an xã".into(),
        starts_at_ms: noon(D1, -180),
        ends_at_ms: noon(D1, 0),
        applications: 5,
        note: None,
    })
    .unwrap();
    s.record_outreach(NewOutreach {
        unit_code: "22813-01".into(),
        officer_id: a,
        kind: OutreachKind::Meeting,
        at_ms: Some(noon(D1, 0)),
        place: "Nhà văn hoá thôn".into(),
        people_reached: 40,
        note: None,
    })
    .unwrap();
    World {
        campaign,
        a,
        b,
        c,
        r,
        a1,
    }
}

/// An HTTP client that keeps the session and language cookies (and follows no redirects).
#[derive(Clone)]
struct Client {
    raw: Raw,
    cookies: std::rc::Rc<std::cell::RefCell<BTreeMap<String, String>>>,
}

impl Client {
    fn new() -> Client {
        Client {
            raw: Raw::builder().redirect(Policy::none()).build().unwrap(),
            cookies: Default::default(),
        }
    }

    fn with_cookies(&self, b: RequestBuilder) -> RequestBuilder {
        let c = self.cookies.borrow();
        if c.is_empty() {
            return b;
        }
        let v: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
        b.header("cookie", v.join("; "))
    }

    fn keep(&self, resp: Response) -> Response {
        for h in resp.headers().get_all("set-cookie") {
            let s = h.to_str().unwrap();
            let kv = s.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.borrow_mut().remove(k);
            } else {
                self.cookies.borrow_mut().insert(k.into(), v.into());
            }
        }
        resp
    }

    fn get(&self, url: String) -> Req<'_> {
        Req(self, self.with_cookies(self.raw.get(url)))
    }

    fn post(&self, url: String) -> Req<'_> {
        Req(self, self.with_cookies(self.raw.post(url)))
    }
}

struct Req<'a>(&'a Client, RequestBuilder);

impl Req<'_> {
    fn header(self, k: &str, v: &str) -> Self {
        Req(self.0, self.1.header(k, v))
    }
    fn body(self, b: impl Into<reqwest::blocking::Body>) -> Self {
        Req(self.0, self.1.body(b))
    }
    fn send(self) -> reqwest::Result<Response> {
        Ok(self.0.keep(self.1.send()?))
    }
}

struct Server {
    base: String,
    backend: Db,
    world: World,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn server(demo: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let world = db.with_store(build).unwrap();
    let backend = db.dyn_backend();
    let campaign = world.campaign;
    for (unit, metric, target) in [
        ("22813", QuotaMetric::Level1Activated, 5),
        ("22813", QuotaMetric::Level2Activated, 5),
    ] {
        backend
            .set_quota(
                "test",
                QuotaInput {
                    campaign_id: campaign,
                    subject: QuotaSubject::Unit(unit.into()),
                    period: QuotaPeriod::Campaign,
                    metric,
                    target,
                },
                0,
            )
            .unwrap();
    }
    backend
        .set_quota(
            "test",
            QuotaInput {
                campaign_id: campaign,
                subject: QuotaSubject::Unit("22813".into()),
                period: QuotaPeriod::Day(NaiveDate::from_ymd_opt(2023, 7, 2).unwrap()),
                metric: QuotaMetric::Visits,
                target: 3,
            },
            0,
        )
        .unwrap();
    let mut state = doorstep_server::state(
        backend.clone(),
        doorstep_server::http::DEFAULT_MAX_BODY_BYTES,
    );
    // Rebuild before answering whenever the store changed.
    state.stats = Arc::new(StatsCache::new(0));
    state.demo = demo;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(doorstep_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Server {
        base: format!("http://{addr}"),
        backend: db,
        world,
        _rt: rt,
        _dir: dir,
    }
}

impl Server {
    fn user(&self, name: &str, role: &str, unit: &str) {
        let hash = doorstep_server::auth::hash_password("password-1234").unwrap();
        self.backend
            .dyn_backend()
            .add_command_user("test", name, role, unit, &hash, 0)
            .unwrap();
    }

    /// A client signed in as `name` (cookies kept, redirects not followed).
    fn sign_in(&self, name: &str, password: &str) -> (Client, Response) {
        let http = Client::new();
        let resp = http
            .post(format!("{}/signin", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={name}&password={password}"))
            .send()
            .unwrap();
        (http, resp)
    }

    fn report(&self, http: &Client, query: &str) -> Report {
        let resp = http
            .get(format!("{}/api/v1/report?{query}", self.base))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
        resp.text()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap()
    }
}

fn row<'a>(r: &'a Report, code: &str) -> &'a doorstep_server::stats::Row {
    r.children
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no child {code}"))
}

#[test]
fn counting_rules_on_a_small_store() {
    on_both_backends(counting_rules_on_a_small_store_once);
}

fn counting_rules_on_a_small_store_once() {
    let s = server(true);
    let http = Client::new();
    let w = &s.world;
    // The campaign is over: without a date, a report opens on its last day with activity,
    // not on its empty last day.
    let last = s.report(&http, "unit=58");
    assert_eq!(last.date.to_string(), D3);
    assert!(last.totals.today.visits + last.totals.today.activated > 0);
    let r = s.report(&http, &format!("unit=58&date={D3}"));
    let t = &r.totals;
    assert_eq!(r.unit.level, "province");
    assert_eq!(r.campaign.id, w.campaign);
    assert_eq!(t.accounts, 8);
    // r0 level 1; r1, r3, r5, r6 (roster), r7 (roster level 1, then level 2) level 2.
    assert_eq!(
        (
            t.level1_activated,
            t.level2_activated,
            t.activated,
            t.level2_received
        ),
        (1, 5, 6, 5)
    );
    assert_eq!(t.target, Some(1000));
    assert_eq!(t.percent_of_target, Some(0.6));
    // D3: r5 activated (once, though both levels were reached); r7 reached level 2 but was
    // already activated on the roster.
    assert_eq!(t.today.activated, 1);
    assert_eq!(t.today.level1_activated, 1);
    assert_eq!(t.today.level2_activated, 2);
    // The trend: the roster's two activated from the start; D1 r0, r1; D2 r3; D3 r5.
    let trend: BTreeMap<String, u64> = r
        .trend
        .iter()
        .map(|p| (p.date.to_string(), p.activated))
        .collect();
    assert_eq!(r.trend.first().unwrap().date.to_string(), "2023-06-27");
    assert_eq!(trend["2023-06-27"], 2);
    assert_eq!(trend["2023-06-30"], 2);
    assert_eq!(trend[D1], 4);
    assert_eq!(trend[D2], 5);
    assert_eq!(trend[D3], 6);
    assert_eq!(r.trend.len(), 7);
    assert_eq!(t.campaign_activated, 4);
    // Blockers by reason, every reason listed.
    assert_eq!(r.blockers["otp_not_received"], 1);
    assert_eq!(r.blockers["phone_not_own_name"], 1);
    assert_eq!(r.blockers["no_chip_id_card"], 0);
    assert_eq!(r.blockers.len(), FailureReason::ALL.len());
    // Children: two districts.
    assert_eq!(r.children.len(), 2);
    assert_eq!(row(&r, "586").activated, 4);
    assert_eq!(row(&r, "587").activated, 2);
    // Agencies: per agency, count, level 2, portal.
    let agencies: Vec<(String, u64, u64)> = r
        .agencies
        .iter()
        .map(|a| (a.agency.clone(), a.accounts, a.level2_activated))
        .collect();
    assert_eq!(
        agencies,
        vec![
            ("Công an huyện".to_owned(), 1, 0),
            ("UBND xã Hai".to_owned(), 1, 1)
        ]
    );
    // Sessions and outreach up to D3, per kind and per commune (outreach in a village
    // counts for its commune).
    assert!(r.sessions.available && r.outreach.available);
    assert_eq!(r.sessions.by_kind["mobile"].count, 1);
    assert_eq!(r.sessions.by_kind["mobile"].total, 12);
    assert_eq!(r.sessions.by_kind["fixed"].total, 5);
    assert_eq!(r.sessions.per_commune["22814"]["fixed"].count, 1);
    assert_eq!(r.outreach.by_kind["meeting"].total, 40);
    assert_eq!(r.outreach.per_commune["22813"]["meeting"].count, 1);
    let d2 = s.report(&http, &format!("unit=22813&date={D2}"));
    assert_eq!(d2.sessions.today.len(), 1);
    assert_eq!(d2.sessions.today[0].applications, 12);
    assert!(
        !d2.sessions.by_kind.contains_key("fixed"),
        "22814's session"
    );
    let d0 = s.report(&http, "unit=58&date=2023-06-30");
    assert!(d0.sessions.by_kind.is_empty(), "nothing before D1");

    // D1 in commune 22813: r0 by A, r1 by A (B's later duplicate does not count); r3's
    // level-2 application was already on the roster, so it is not counted again; two visits.
    let c = s.report(&http, &format!("unit=22813&date={D1}"));
    let t = &c.totals;
    assert_eq!(t.today.activated, 2);
    assert_eq!(t.today.level1_activated, 1);
    assert_eq!(t.today.level2_activated, 1);
    assert_eq!(t.today.level2_received, 0);
    assert_eq!(t.today.visits, 2);
    // Target from the campaign quotas (5 + 5); at the end of D1, 3 activated (r0, r1 and r7
    // by the roster; r3 only on D2).
    assert_eq!(t.target, Some(10));
    assert_eq!(t.percent_of_target, Some(30.0));
    assert_eq!(t.quota_today, None);
    let officer =
        |rep: &Report, id: Uuid| rep.officers.iter().find(|o| o.id == id).unwrap().clone();
    assert_eq!(officer(&c, w.a).today.activated, 2);
    assert_eq!(officer(&c, w.b).today.activated, 0);
    assert_eq!(c.officers.len(), 2, "officers of 22813 only");
    // D2: the day quota on visits (3) is not met: a laggard.
    let c2 = s.report(&http, &format!("unit=22813&date={D2}"));
    assert_eq!(c2.totals.quota_today.as_ref().unwrap()["visits"], 3);
    assert_eq!(c2.totals.today.activated, 1);
    assert_eq!(
        doorstep_server::stats::lagging(&c2.totals.today, &c2.totals.quota_today),
        vec![("visits".to_owned(), 0, 3)]
    );

    // Retract A's earliest activation of r0: B's on D2 counts instead.
    s.backend
        .with_store(|st| st.retract(w.a1, Some("mistake")).unwrap())
        .unwrap();
    let c = s.report(&http, &format!("unit=22813&date={D1}"));
    assert_eq!(c.totals.today.activated, 1);
    assert_eq!(c.totals.today.level1_activated, 0);
    assert_eq!(officer(&c, w.a).today.activated, 1);
    let c2 = s.report(&http, &format!("unit=22813&date={D2}"));
    assert_eq!(c2.totals.today.activated, 2);
    assert_eq!(c2.totals.today.level1_activated, 1);
    assert_eq!(officer(&c2, w.b).today.activated, 2);
    assert_eq!(officer(&c2, w.b).campaign_activated, 2);
    // Still activated (B's claim stands): state unchanged.
    assert_eq!(c2.totals.activated, 4);

    // Officer report.
    let resp = http
        .get(format!(
            "{}/api/v1/report/officer/{}?date={D3}",
            s.base, w.c
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let o: doorstep_server::stats::OfficerReport = resp
        .text()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(o.row.activated, 1);
    assert_eq!(o.row.accounts, 3);
    assert_eq!(o.blockers["otp_not_received"], 1);
    assert_eq!(o.unit.code, "22814");
    let _ = &w.r;
}

#[test]
fn sign_in_and_scope() {
    on_both_backends(sign_in_and_scope_once);
}

fn sign_in_and_scope_once() {
    let s = server(false);
    s.user("lead1", "commune_lead", "22813");
    s.user("dist2", "district", "587");
    // A role and a unit of different levels is refused.
    let hash = doorstep_server::auth::hash_password("password-1234").unwrap();
    assert!(s
        .backend
        .dyn_backend()
        .add_command_user("test", "x", "district", "22813", &hash, 0)
        .is_err());
    let anon = Client::new();
    // Unsigned: 401 JSON on the API, a redirect to the sign-in page on pages.
    let resp = anon
        .get(format!("{}/api/v1/report?unit=22813", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp
        .text()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(body["error"], "unauthorized");
    let resp = anon.get(format!("{}/dash", s.base)).send().unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/signin");
    for path in ["/reports/daily.xlsx?unit=22813", "/admin/quotas"] {
        let resp = anon.get(format!("{}{path}", s.base)).send().unwrap();
        assert!(
            resp.status() == 401 || resp.status() == 303,
            "{path}: {}",
            resp.status()
        );
    }

    // Wrong password: back to the sign-in page, no session.
    let (http, resp) = s.sign_in("lead1", "wrong-password");
    assert_eq!(resp.headers()["location"], "/signin?failed=1");
    let resp = http
        .get(format!("{}/api/v1/report?unit=22813", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);

    let (http, resp) = s.sign_in("lead1", "password-1234");
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Own commune and its villages: yes. The default unit is the user's own.
    let r = s.report(&http, "date=2023-07-01");
    assert_eq!(r.unit.code, "22813");
    s.report(&http, "unit=22813-01");
    // Another commune, the district, the province, an officer elsewhere: 403.
    for q in ["unit=22814", "unit=586", "unit=58", "unit=22814-01"] {
        let resp = http
            .get(format!("{}/api/v1/report?{q}", s.base))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 403, "{q}");
        let body: serde_json::Value = resp
            .text()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        assert_eq!(body["error"], "forbidden");
    }
    // Who looked at what: each report shown or exported is an audit row (how, and the day);
    // refused ones are not reports shown.
    let page = http.get(format!("{}/dash", s.base)).send().unwrap();
    assert_eq!(page.status(), 200);
    let file = http
        .get(format!(
            "{}/reports/daily.csv?unit=22813-01&date=2023-07-01",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(file.status(), 200);
    let views: Vec<(String, String)> = s
        .backend
        .audit(200)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "view_report")
        .map(|a| {
            assert!(a.actor.contains("user:"), "{}", a.actor);
            (a.target, a.detail)
        })
        .collect();
    for (target, how) in [
        ("unit:22813", "api date=2023-07-01"),
        ("unit:22813-01", "api "),
        ("unit:22813", "page "),
        ("unit:22813-01", "file date=2023-07-01"),
    ] {
        assert!(
            views.iter().any(|(t, d)| t == target && d.starts_with(how)),
            "{target} {how}: {views:?}"
        );
    }
    assert!(views
        .iter()
        .all(|(t, _)| !t.contains("22814") && t != "unit:586"));
    let resp = http
        .get(format!("{}/api/v1/report/officer/{}", s.base, s.world.c))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = http
        .get(format!("{}/api/v1/report/officer/{}", s.base, s.world.a))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .get(format!("{}/dash?unit=22814", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = http
        .get(format!("{}/reports/daily.csv?unit=22814", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);

    // A district user sees its commune, not the other district's.
    let (http2, _) = s.sign_in("dist2", "password-1234");
    s.report(&http2, "unit=22814");
    let resp = http2
        .get(format!("{}/api/v1/report?unit=22813", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Sign out ends the session.
    let resp = http.post(format!("{}/signout", s.base)).send().unwrap();
    assert_eq!(resp.status(), 303);
    let resp = http
        .get(format!("{}/api/v1/report?unit=22813", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Sign-in is audited.
    let audit = s.backend.audit(50).unwrap();
    assert!(audit.iter().any(|e| e.action == "sign_in"));
    assert!(audit.iter().any(|e| e.action == "user_add"));
}

#[test]
fn pages_escape_store_text_and_switch_language() {
    let s = server(true);
    let http = Client::new();
    let page = http
        .get(format!("{}/dash?unit=22814&date={D3}", s.base))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(
        !html.contains("<script>alert(1)"),
        "officer name not escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; C"));
    assert!(!html.contains("Thôn <b>3</b>"));
    assert!(html.contains("id=\"demo-banner\""));
    assert!(html.contains("Đã kích hoạt"), "Vietnamese by default");
    assert!(html.contains("<svg id=\"trend\""));
    assert!(html.contains("id=\"sessions\""));
    let html2 = http
        .get(format!("{}/dash?unit=22813&date={D2}", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html2.contains("Chợ &lt;Một&gt;"), "session place escaped");
    // English, remembered by cookie.
    let html = http
        .get(format!("{}/dash?unit=22814&lang=en", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("Activated"));
    let html = http
        .get(format!("{}/dash/officer/{}", s.base, s.world.c))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("Officer"), "language kept by the cookie");
    assert!(!html.contains("<script>alert(1)"));
}

fn num(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Number(n) => n.as_f64().unwrap().to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The rows of a report as the JSON API gives them, in the report files' columns.
fn json_rows(r: &serde_json::Value) -> Vec<Vec<String>> {
    let unit_row = |section: &str, x: &serde_json::Value| -> Vec<String> {
        let mut v = vec![
            section.to_owned(),
            num(&x["code"]),
            num(&x["name"]),
            num(&x["level"]),
        ];
        for k in [
            "accounts",
            "level1_activated",
            "level2_activated",
            "activated",
            "level2_received",
            "portal",
            "target",
            "percent_of_target",
        ] {
            v.push(num(&x[k]));
        }
        for k in [
            "activated",
            "level1_activated",
            "level2_received",
            "level2_activated",
            "portal_guided",
            "visits",
        ] {
            v.push(num(&x["today"][k]));
        }
        v.push(num(&x["campaign_activated"]));
        v
    };
    let mut out = vec![unit_row("total", &r["totals"])];
    for c in r["children"].as_array().unwrap() {
        out.push(unit_row("child", c));
    }
    for o in r["officers"].as_array().unwrap() {
        let mut o = o.clone();
        o["code"] = o["id"].clone();
        o["level"] = o["unit_code"].clone();
        out.push(unit_row("officer", &o));
    }
    out
}

#[test]
fn xlsx_and_csv_equal_the_json() {
    on_both_backends(xlsx_and_csv_equal_the_json_once);
}

fn xlsx_and_csv_equal_the_json_once() {
    use calamine::{Data, Reader};
    let s = server(true);
    let http = Client::new();
    for unit in ["58", "22813"] {
        let q = format!("unit={unit}&date={D2}");
        let json: serde_json::Value = http
            .get(format!("{}/api/v1/report?{q}", s.base))
            .send()
            .unwrap()
            .text()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        let want = json_rows(&json);
        assert!(want.len() >= 3);

        let csv = http
            .get(format!("{}/reports/daily.csv?{q}", s.base))
            .send()
            .unwrap();
        assert_eq!(csv.status(), 200);
        let text = csv.text().unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            doorstep_server::reports::COLUMNS.join(",")
        );
        let got: Vec<Vec<String>> = lines
            .map(|l| {
                l.split(',')
                    .map(|c| match c.parse::<f64>() {
                        Ok(x) => x.to_string(),
                        Err(_) => c.to_owned(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(got, want, "CSV of {unit}");

        let resp = http
            .get(format!("{}/reports/daily.xlsx?{q}", s.base))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".xlsx"));
        let bytes = resp.bytes().unwrap().to_vec();
        let mut wb: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = wb.worksheet_range("Rows").unwrap();
        let got: Vec<Vec<String>> = range
            .rows()
            .skip(1)
            .map(|r| {
                let mut v: Vec<String> = r
                    .iter()
                    .map(|c| match c {
                        Data::Float(x) => x.to_string(),
                        Data::Int(x) => (*x as f64).to_string(),
                        Data::String(s) => s.clone(),
                        Data::Empty => String::new(),
                        c => c.to_string(),
                    })
                    .collect();
                v.resize(doorstep_server::reports::COLUMNS.len(), String::new());
                v
            })
            .collect();
        assert_eq!(got, want, "XLSX of {unit}");
        let trend = wb.worksheet_range("Trend").unwrap();
        assert_eq!(
            trend.rows().count() - 1,
            json["trend"].as_array().unwrap().len()
        );
    }
    // The end-of-campaign report is the report on the campaign's last day.
    let resp = http
        .get(format!("{}/reports/final.csv?unit=22813", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("2023-09-15"));
    // An officer's report.
    let resp = http
        .get(format!(
            "{}/reports/daily.csv?officer={}&date={D1}",
            s.base, s.world.a
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("Cán bộ A"));
    // Bad query values are named.
    let resp = http
        .get(format!("{}/api/v1/report?unit=58&date=01/07/2023", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().unwrap().contains("date: expected YYYY-MM-DD"));
    let _ = s.world.b;
}

#[test]
fn admin_quota_and_assignment_are_audited_and_scoped() {
    let s = server(false);
    s.user("lead1", "commune_lead", "22813");
    let (http, _) = s.sign_in("lead1", "password-1234");
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
    };
    // A quota for an officer of the lead's commune: saved and audited.
    let resp = post(
        "/admin/quotas",
        format!(
            "campaign={}&subject_kind=officer&officer={}&period={D2}&metric=level1_activated&target=7",
            s.world.campaign, s.world.a
        ),
    );
    assert_eq!(resp.status(), 303, "{:?}", resp.text());
    let r = s.report(&http, &format!("unit=22813&date={D2}"));
    let a = r.officers.iter().find(|o| o.id == s.world.a).unwrap();
    assert_eq!(a.quota_today.as_ref().unwrap()["level1_activated"], 7);
    // Accountability lists the officer below the day's quota (the commune's children, its
    // villages, have no quotas), in the JSON and on the page.
    let lag = r
        .below_quota
        .iter()
        .find(|x| x.kind == "officer" && x.id == s.world.a.to_string())
        .expect("officer A below the quota");
    assert_eq!(lag.lags[0].metric, "level1_activated");
    assert_eq!(lag.lags[0].quota, 7);
    assert_eq!(lag.lags[0].done, a.today.level1_activated);
    let page = http
        .get(format!("{}/dash?unit=22813&date={D2}", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let laggards = &page[page.find("id=\"laggards\"").unwrap()..];
    let laggards = &laggards[..laggards.find("</ul>").unwrap()];
    assert!(
        laggards.contains(&format!("/dash/officer/{}", s.world.a)),
        "{laggards}"
    );
    // …and in the XLSX report file, sheet "Below quota", as in the JSON.
    let bytes = http
        .get(format!(
            "{}/reports/daily.xlsx?unit=22813&date={D2}",
            s.base
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    use calamine::Reader;
    let sheet = wb.worksheet_range("Below quota").unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .skip(1)
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let want: Vec<Vec<String>> = r
        .below_quota
        .iter()
        .flat_map(|x| {
            x.lags.iter().map(move |l| {
                vec![
                    x.kind.clone(),
                    x.id.clone(),
                    x.name.clone(),
                    l.metric.clone(),
                    l.done.to_string(),
                    l.quota.to_string(),
                    x.missing_share.to_string(),
                ]
            })
        })
        .collect();
    assert_eq!(rows, want);
    assert!(rows.iter().any(|r| r[1] == s.world.a.to_string()));
    // For an officer of another commune: 403.
    let resp = post(
        "/admin/quotas",
        format!(
            "campaign={}&subject_kind=officer&officer={}&period=campaign&metric=visits&target=7",
            s.world.campaign, s.world.c
        ),
    );
    assert_eq!(resp.status(), 403);
    // Move village 22813-01 from A to B.
    let resp = post(
        "/admin/assign",
        format!(
            "action=move&officer={}&from={}&kind=village&target=22813-01",
            s.world.b, s.world.a
        ),
    );
    assert_eq!(resp.status(), 303);
    let r = s.report(&http, &format!("unit=22813&date={D2}"));
    let b = r.officers.iter().find(|o| o.id == s.world.b).unwrap();
    assert_eq!(b.accounts, 5, "B now has villages 22813-01 and 22813-02");
    let audit = s.backend.audit(50).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "quota_set" && e.actor.starts_with("user:")));
    assert!(audit.iter().any(|e| e.action == "unassign"));
    // Roster import is for admins and province command.
    let resp = http
        .post(format!(
            "{}/admin/roster?campaign={}",
            s.base, s.world.campaign
        ))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[test]
fn console_commands_user_quota_and_reports() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let world = {
        let b = SqliteBackend::open(&db).unwrap();
        b.with_store(build).unwrap()
    };
    let bin = env!("CARGO_BIN_EXE_doorstep");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(bin)
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    // A user whose password comes on stdin; a short password is refused.
    let out = run(
        &[
            "user",
            "add",
            "--name",
            "lead",
            "--role",
            "commune_lead",
            "--unit",
            "22813",
        ],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password: expected at least 8"));
    let out = run(
        &[
            "user",
            "add",
            "--name",
            "lead",
            "--role",
            "commune_lead",
            "--unit",
            "22813",
        ],
        Some("a-long-password\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let campaign = world.campaign.to_string();
    let out = run(
        &[
            "quota",
            "set",
            "--campaign",
            &campaign,
            "--unit",
            "22813",
            "--period",
            D2,
            "--metric",
            "visits",
            "--target",
            "9",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let b = SqliteBackend::open(&db).unwrap();
        let (u, hash) = b.command_user_by_name("lead").unwrap().unwrap();
        assert_eq!(u.unit_code.as_deref(), Some("22813"));
        assert!(doorstep_server::auth::verify_password(
            "a-long-password",
            &hash
        ));
        assert!(b.audit(20).unwrap().iter().any(|e| e.action == "quota_set"));
    }
    // Reports: the CSV rows equal the JSON's, and the quota just set is in them.
    let csv = dir.path().join("r.csv");
    let json = dir.path().join("r.json");
    let xlsx = dir.path().join("r.xlsx");
    for (f, p) in [("csv", &csv), ("json", &json), ("xlsx", &xlsx)] {
        let out = run(
            &[
                "report",
                "daily",
                "--unit",
                "22813",
                "--date",
                D2,
                "--format",
                f,
                "--out",
                p.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(j["totals"]["quota_today"]["visits"], 9);
    let want = json_rows(&j);
    let text = std::fs::read_to_string(&csv).unwrap();
    let got: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|c| match c.parse::<f64>() {
                    Ok(x) => x.to_string(),
                    Err(_) => c.to_owned(),
                })
                .collect()
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(&std::fs::read(&xlsx).unwrap()[..2], b"PK");
    // A bad format is named.
    let out = run(
        &["report", "daily", "--format", "pdf", "--out", "/dev/null"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("format: expected one of xlsx, csv, json")
    );
}

/// The snapshot is rebuilt in the background when the store changed: a request right after a
/// write still gets the previous numbers, and the new ones arrive without a request waiting.
#[test]
fn snapshot_rebuilds_in_the_background_after_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("s.db")).unwrap());
    let w = backend.with_store(build).unwrap();
    let dyn_backend: Arc<Backend> = backend.clone();
    let cache = Arc::new(StatsCache::new(1));
    let first = cache.get(&dyn_backend).unwrap();
    let day = NaiveDate::from_ymd_opt(2023, 7, 3).unwrap();
    let campaign = first.campaign(None, Some(day)).unwrap();
    let activated =
        |s: &doorstep_server::stats::Snapshot| s.row("22813", &campaign, day).unwrap().activated;
    assert_eq!(activated(&first), 4);
    // r2 activated at level 2 on D3.
    backend
        .with_store(|s| {
            s.record_assist(NewAssist {
                resident_id: w.r[2],
                officer_id: w.a,
                at_ms: Some(noon(D3, 30)),
                step: AssistStep::Level2Activated,
                failure: None,
                receiving_point: None,
                note: None,
            })
            .unwrap()
        })
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let stale = cache.get(&dyn_backend).unwrap();
    assert_eq!(activated(&stale), 4, "the old snapshot answers at once");
    let mut fresh = None;
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let s = cache.get(&dyn_backend).unwrap();
        if s.fingerprint != first.fingerprint {
            fresh = Some(s);
            break;
        }
    }
    let fresh = fresh.expect("rebuilt in the background");
    assert_eq!(activated(&fresh), 5);
    assert!(fresh.built_at_ms >= first.built_at_ms);
}

/// The admin page's roster import: upload, poll the job's progress, read its report with the
/// rejected rows; audited; the new residents show in the numbers.
#[test]
fn roster_upload_reports_progress_and_rejected_rows() {
    let s = server(false);
    let (_, token) = s
        .backend
        .dyn_backend()
        .bootstrap_admin("root", 0)
        .unwrap()
        .unwrap();
    let raw = Raw::new();
    let csv = "household_code,village_code,full_name,birth_date,account\n\
               N1,22813-01,Trần Thị B,1985,none\n\
               N1,22813-01,Trần Văn C,1987,level1_activated\n\
               N2,99999-99,Lê Văn D,1990,none\n";
    let resp = raw
        .post(format!(
            "{}/admin/roster?campaign={}",
            s.base, s.world.campaign
        ))
        .bearer_auth(&token)
        .body(csv)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    let id = job["job"].as_str().unwrap().to_owned();
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        let j: serde_json::Value = serde_json::from_str(
            &raw.get(format!("{}/admin/roster/jobs/{id}", s.base))
                .bearer_auth(&token)
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
        .unwrap();
        if j["done"] == true {
            report = j;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(report["done"], true, "import finished");
    assert_eq!(report["bytes_read"], report["total_bytes"]);
    let r = &report["report"];
    assert_eq!(r["rows"], 3);
    assert_eq!(r["accepted"], 2);
    let rejected = r["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0][0], 4, "line of the unknown village");
    assert!(
        !rejected[0][1].as_str().unwrap().contains("Lê Văn D"),
        "no names in reasons"
    );
    assert!(s
        .backend
        .audit(20)
        .unwrap()
        .iter()
        .any(|e| e.action.contains("roster") && e.actor.starts_with("user:")));
    let http = Client::new();
    let resp = http
        .get(format!("{}/api/v1/report?unit=22813-01&date={D1}", s.base))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let rep: Report = serde_json::from_str(
        &raw.get(format!("{}/api/v1/report?unit=22813-01&date={D1}", s.base))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    // Three residents before, two more now; one of them already activated.
    assert_eq!(rep.totals.accounts, 5);
    assert_eq!(rep.trend.first().unwrap().activated, 1);
}

/// Demo mode is open to anyone as province command, to look: its admin pages show, but no
/// change goes through without signing in as a command user.
#[test]
fn demo_mode_admin_pages_are_read_only() {
    let s = server(true);
    let http = Client::new();
    let resp = http.get(format!("{}/admin/quotas", s.base)).send().unwrap();
    assert_eq!(resp.status(), 200);
    let quota_rows = || {
        s.backend
            .audit(1000)
            .unwrap()
            .iter()
            .filter(|a| a.action.contains("quota"))
            .count()
    };
    let before = quota_rows();
    let resp = http
        .post(format!("{}/admin/quotas", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "campaign={}&subject_kind=officer&officer={}&period={D2}&metric=level1_activated&target=7",
            s.world.campaign, s.world.a
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().unwrap().contains("read-only"));
    assert_eq!(quota_rows(), before, "nothing changed");
    let r = s.report(&http, &format!("unit=22813&date={D2}"));
    let a = r.officers.iter().find(|o| o.id == s.world.a).unwrap();
    assert!(a.quota_today.is_none() || a.quota_today.as_ref().unwrap()["level1_activated"] != 7);
}

/// A report for a past day is that day's report (`docs/dashboard-api.md`, counting rules 2,
/// 5 and 10): its totals are as they stood at the end of the day, so from one day to the next
/// they move by exactly what the day's steps did.
#[test]
fn a_past_days_totals_are_as_they_stood_that_evening() {
    on_both_backends(a_past_days_totals_are_as_they_stood_that_evening_once);
}

fn a_past_days_totals_are_as_they_stood_that_evening_once() {
    let s = server(true);
    let http = Client::new();
    let days = ["2023-06-30", D1, D2, D3, "2023-07-04"];
    for unit in ["58", "586", "22813", "22814"] {
        let reports: Vec<Report> = days
            .iter()
            .map(|d| s.report(&http, &format!("unit={unit}&date={d}")))
            .collect();
        for w in reports.windows(2) {
            let (before, after) = (&w[0].totals, &w[1].totals);
            let day = w[1].date;
            // Every activation credited on the day, and nothing else, moved the totals.
            assert_eq!(
                after.activated - before.activated,
                after.today.activated,
                "{unit} {day}: activated"
            );
            assert_eq!(
                after.level2_activated - before.level2_activated,
                after.today.level2_activated,
                "{unit} {day}: level 2"
            );
            assert_eq!(after.accounts, before.accounts, "{unit}: the roster now");
        }
        // Nothing was done before D1: the evening before shows the roster's claims only.
        let first = &reports[0];
        assert!(
            first.blockers.values().all(|n| *n == 0),
            "{unit}: no failure yet"
        );
        assert_eq!(first.totals.campaign_activated, 0);
        // After the last day with work, the totals are the store's now.
        let now = |t: &doorstep_server::stats::Row| {
            (
                t.level1_activated,
                t.level2_activated,
                t.level2_received,
                t.portal,
            )
        };
        assert_eq!(now(&reports[4].totals), now(&reports[3].totals));
    }
    // The province on D2: r0, r1 (D1), r3 (D2) activated by steps, r6 and r7 by the roster;
    // r5's activations come on D3 and r7's level 2 too, so level 1 still counts r0 and r7.
    let d2 = s.report(&http, &format!("unit=58&date={D2}"));
    let d3 = s.report(&http, &format!("unit=58&date={D3}"));
    assert_eq!(d2.totals.level1_activated, 2, "r0, r7");
    assert_eq!(
        d3.totals.level1_activated, 1,
        "r0 (r7 and r5 are at level 2)"
    );
    assert_eq!(d3.totals.activated - d2.totals.activated, 1, "r5");
    // Failures of D1 count from D1 on.
    let d1 = s.report(&http, &format!("unit=58&date={D1}"));
    assert_eq!(d1.blockers["otp_not_received"], 1);
    assert_eq!(d1.blockers["phone_not_own_name"], 1);
}
