//! The national roll-up (`doorstep national`, issue #15) end to end: three province servers,
//! each its own database with small, different data, and the roll-up over their report APIs.
//! The country's totals are the provinces' sums on two dates; with one province stopped the
//! roll-up says which did not answer, keeps its last figures marked stale, and counts 2 of 3;
//! the page names the missing province; nothing is shown without the roll-up's token.

use chrono::NaiveDate;
use doorstep_core::*;
use doorstep_server::national::{web, Config};
use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use serde_json::Value;
use uuid::Uuid;

mod common;
use common::{on_both_backends, open_db, Db};

const D1: &str = "2023-07-01";
const D2: &str = "2023-07-02";
const NATIONAL_TOKEN: &str = "national-test-token-0123456789";

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

/// A province's data: `residents` residents in one village; the first `l1` activated at level
/// 1 on D1, the next `l2` at level 2 on D2, one failed step on D1; a campaign target.
struct Shape {
    code: &'static str,
    name: &'static str,
    residents: usize,
    l1: usize,
    l2: usize,
    target: i64,
}

fn build(s: &mut Store, p: &Shape) {
    let district = format!("{}1", p.code);
    let commune = format!("{}11", p.code);
    let village = format!("{}11-01", p.code);
    for (code, parent, level, name) in [
        (
            p.code.to_owned(),
            None,
            UnitLevel::Province,
            p.name.to_owned(),
        ),
        (
            district.clone(),
            Some(p.code.to_owned()),
            UnitLevel::District,
            "Huyện".into(),
        ),
        (
            commune.clone(),
            Some(district),
            UnitLevel::Commune,
            "Xã".into(),
        ),
        (
            village.clone(),
            Some(commune.clone()),
            UnitLevel::Village,
            "Thôn".into(),
        ),
    ] {
        s.put_unit(UnitInput {
            code,
            parent_code: parent,
            level,
            kind: "thôn".into(),
            name,
        })
        .unwrap();
    }
    s.put_campaign(CampaignInput {
        id: Uuid::now_v7(),
        name: "80 ngày đêm".into(),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
        target: p.target,
        unit_code: p.code.into(),
    })
    .unwrap();
    let officer = Uuid::now_v7();
    s.put_officer(OfficerInput {
        id: officer,
        name: "Cán bộ".into(),
        role: Role::Field,
        unit_code: commune,
    })
    .unwrap();
    s.assign(officer, AssignTarget::Village(village.clone()))
        .unwrap();
    for i in 0..p.residents {
        let h = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: h,
            code: format!("H{i}"),
            village_code: village.clone(),
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
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
        let (step, day, failure) = if i < p.l1 {
            (AssistStep::Level1Activated, D1, None)
        } else if i < p.l1 + p.l2 {
            (AssistStep::Level2Activated, D2, None)
        } else if i == p.l1 + p.l2 {
            (
                AssistStep::Level1Activated,
                D1,
                Some(FailureReason::OtpNotReceived),
            )
        } else {
            continue;
        };
        s.record_assist(NewAssist {
            resident_id: id,
            officer_id: officer,
            at_ms: Some(noon(day, i as i64)),
            step,
            failure,
            receiving_point: None,
            note: None,
        })
        .unwrap();
    }
}

/// A province server on loopback; dropping `rt` stops it (its port then refuses).
struct Province {
    base: String,
    token: String,
    rt: Option<tokio::runtime::Runtime>,
    _db: Db,
    _dir: tempfile::TempDir,
}

fn province(p: &Shape) -> Province {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    db.with_store(|s| build(s, p)).unwrap();
    let backend = db.dyn_backend();
    let (_, token) = backend
        .bootstrap_admin("national", doorstep_server::now_ms())
        .unwrap()
        .unwrap();
    let state = doorstep_server::state(backend, 1 << 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(doorstep_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Province {
        base,
        token,
        rt: Some(rt),
        _db: db,
        _dir: dir,
    }
}

/// The roll-up over `provinces`, configured through a file as `doorstep national` is.
fn roll_up(
    shapes: &[Shape],
    provinces: &[Province],
    dir: &std::path::Path,
) -> (String, tokio::runtime::Runtime) {
    let list: Vec<_> = shapes
        .iter()
        .zip(provinces)
        .map(|(s, p)| (s.code, s.name, p.base.clone(), p.token.clone()))
        .collect();
    roll_up_over(&list, 5.0, dir)
}

/// The roll-up over `(code, name, url, token)`s with a timeout in seconds.
fn roll_up_over(
    list: &[(&str, &str, String, String)],
    timeout: f64,
    dir: &std::path::Path,
) -> (String, tokio::runtime::Runtime) {
    let mut provinces = Vec::new();
    for (code, name, url, token) in list {
        let file = dir.join(format!("{code}.token"));
        std::fs::write(&file, format!("{token}\n")).unwrap();
        provinces.push(serde_json::json!({
            "code": code, "name": name, "url": format!("{url}/"), "token_file": file,
        }));
    }
    let token_file = dir.join("national.token");
    std::fs::write(&token_file, NATIONAL_TOKEN).unwrap();
    let config = dir.join("national.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "token_file": token_file, "timeout_seconds": timeout, "provinces": provinces,
        })
        .to_string(),
    )
    .unwrap();
    let settings = Config::load(&config).unwrap().settings().unwrap();
    // The tokens are never printed.
    let shown = format!("{settings:?}");
    assert!(!shown.contains(NATIONAL_TOKEN) && !shown.contains(&list[0].3));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(web::serve(
        listener,
        web::NationalState::new(settings),
        std::future::pending(),
    ));
    (base, rt)
}

fn get(http: &Client, url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = http.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn json(http: &Client, url: &str, token: &str) -> Value {
    let resp = get(http, url, Some(token));
    assert_eq!(resp.status(), 200, "{url}");
    serde_json::from_str(&resp.text().unwrap()).unwrap()
}

const COUNTS: [&str; 7] = [
    "accounts",
    "level1_activated",
    "level2_activated",
    "activated",
    "level2_received",
    "portal",
    "campaign_activated",
];

/// Check the roll-up's totals against the sum of `reports`' totals.
fn check_sum(national: &Value, reports: &[&Value]) {
    let t = &national["totals"];
    for k in COUNTS {
        let sum: i64 = reports
            .iter()
            .map(|r| r["totals"][k].as_i64().unwrap())
            .sum();
        assert_eq!(t[k].as_i64().unwrap(), sum, "{k}");
    }
    for k in ["activated", "level2_activated", "visits"] {
        let sum: i64 = reports
            .iter()
            .map(|r| r["totals"]["today"][k].as_i64().unwrap())
            .sum();
        assert_eq!(t["today"][k].as_i64().unwrap(), sum, "today.{k}");
    }
    let target: i64 = reports
        .iter()
        .map(|r| r["totals"]["target"].as_i64().unwrap())
        .sum();
    assert_eq!(t["target"].as_i64().unwrap(), target);
    let pct = t["activated"].as_f64().unwrap() * 100.0 / target as f64;
    assert!((t["percent_of_target"].as_f64().unwrap() - pct).abs() < 1e-9);
    let blockers: i64 = reports
        .iter()
        .map(|r| r["blockers"]["otp_not_received"].as_i64().unwrap())
        .sum();
    assert_eq!(national["blockers"]["otp_not_received"], blockers);
}

fn the_roll_up() {
    let shapes = [
        Shape {
            code: "58",
            name: "Ninh Thuận",
            residents: 6,
            l1: 2,
            l2: 1,
            target: 100,
        },
        Shape {
            code: "56",
            name: "Khánh Hòa",
            residents: 9,
            l1: 3,
            l2: 4,
            target: 200,
        },
        Shape {
            code: "60",
            name: "Bình Thuận",
            residents: 4,
            l1: 0,
            l2: 2,
            target: 50,
        },
    ];
    let mut provinces: Vec<Province> = shapes.iter().map(province).collect();
    let dir = tempfile::tempdir().unwrap();
    let (base, _rt) = roll_up(&shapes, &provinces, dir.path());
    let http = Client::builder().redirect(Policy::none()).build().unwrap();

    // The country is the sum of its provinces, on two dates.
    let mut before = Vec::new();
    for (date, activated) in [(D1, 5), (D2, 12)] {
        let reports: Vec<Value> = shapes
            .iter()
            .zip(&provinces)
            .map(|(s, p)| {
                let url = format!("{}/api/v1/report?unit={}&date={date}", p.base, s.code);
                json(&http, &url, &p.token)
            })
            .collect();
        let n = json(
            &http,
            &format!("{base}/api/v1/national?date={date}"),
            NATIONAL_TOKEN,
        );
        assert_eq!(n["date"], date);
        assert_eq!(n["answered"], 3);
        assert_eq!(n["provinces_total"], 3);
        assert_eq!(n["summary"], "3 of 3 provinces answered");
        check_sum(&n, &reports.iter().collect::<Vec<_>>());
        assert_eq!(n["totals"]["activated"], activated, "{date}");
        assert_eq!(n["totals"]["accounts"], 19);
        for (i, row) in n["provinces"].as_array().unwrap().iter().enumerate() {
            assert_eq!(row["answered"], true);
            assert_eq!(row["code"], shapes[i].code);
            // The full report as fetched, and the drill-down to the province's own page.
            assert_eq!(row["fetched"]["report"]["totals"], reports[i]["totals"]);
            assert_eq!(
                row["report_url"],
                format!(
                    "{}/dash?unit={}&date={date}",
                    provinces[i].base, shapes[i].code
                )
            );
            assert!(row["fetched"]["as_of"].is_string());
            assert!(row["age_seconds"].as_i64().unwrap() >= 0);
            assert!(row["fetch_ms"].is_u64());
        }
        before.push((date, reports, n));
    }

    // Khánh Hòa's server stops.
    drop(provinces[1].rt.take());
    std::thread::sleep(std::time::Duration::from_millis(200));
    for (date, reports, earlier) in &before {
        let n = json(
            &http,
            &format!("{base}/api/v1/national?date={date}"),
            NATIONAL_TOKEN,
        );
        assert_eq!(n["answered"], 2);
        assert_eq!(
            n["summary"],
            "2 of 3 provinces answered; Khánh Hòa did not: connection refused"
        );
        check_sum(&n, &[&reports[0], &reports[2]]);
        let row = &n["provinces"][1];
        assert_eq!(row["answered"], false);
        assert_eq!(row["error"], "connection refused");
        assert!(row["fetched"].is_null());
        let stale = &row["last_good"];
        assert_eq!(stale["stale"], true);
        assert_eq!(stale["totals"], reports[1]["totals"]);
        assert_eq!(
            stale["fetched_at"],
            earlier["provinces"][1]["fetched"]["fetched_at"]
        );
        assert!(stale["fetched_age_seconds"].as_i64().unwrap() >= 0);
        assert!(stale["age_seconds"].as_i64().unwrap() >= 0);
    }
    // A date never fetched before: no stale figures to show.
    let n = json(
        &http,
        &format!("{base}/api/v1/national?date=2023-07-05"),
        NATIONAL_TOKEN,
    );
    assert_eq!(n["answered"], 2);
    assert!(n["provinces"][1]["last_good"].is_null());

    // The page names the missing province and links each one to its own server.
    let page = get(
        &http,
        &format!("{base}/national?date={D2}&lang=en"),
        Some(NATIONAL_TOKEN),
    );
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(
        html.contains("2 of 3 provinces answered; Khánh Hòa did not: connection refused"),
        "{html}"
    );
    assert!(html.contains("Stale figures, fetched"));
    assert!(html.contains(&format!(
        "href=\"{}/dash?unit=58&amp;date={D2}\"",
        provinces[0].base
    )));

    // Without the roll-up's token: nothing.
    let r = get(&http, &format!("{base}/api/v1/national?date={D2}"), None);
    assert_eq!(r.status(), 401);
    let r = get(
        &http,
        &format!("{base}/api/v1/national?date={D2}"),
        Some(&provinces[0].token),
    );
    assert_eq!(r.status(), 401, "a province's token is not the roll-up's");
    let r = get(&http, &format!("{base}/national"), None);
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/signin");
    let r = get(
        &http,
        &format!("{base}/api/v1/national?date=July"),
        Some(NATIONAL_TOKEN),
    );
    assert_eq!(r.status(), 400);

    // Signing in with the token gives a session cookie that opens the page.
    let r = http
        .post(format!("{base}/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong")
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/signin?failed=1");
    let r = http
        .post(format!("{base}/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={NATIONAL_TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/national");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && !cookie.contains(NATIONAL_TOKEN));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let r = http
        .get(format!("{base}/national?date={D1}"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Khánh Hòa"));
}

#[test]
fn the_country_is_the_sum_of_its_provinces_and_a_silent_one_is_named() {
    on_both_backends(the_roll_up);
}

/// A server on loopback that answers every request with `answer` (`None`: accepts and never
/// answers).
fn odd_server(rt: &tokio::runtime::Runtime, answer: Option<&'static str>) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            match answer {
                None => held.push(conn),
                Some(body) => {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                }
            }
        }
    });
    base
}

/// Each way a province can fail is named in words, without its token, and the others still
/// add up.
#[test]
fn a_province_that_fails_is_named_with_the_reason() {
    let good = Shape {
        code: "58",
        name: "Ninh Thuận",
        residents: 3,
        l1: 1,
        l2: 1,
        target: 10,
    };
    let p = province(&good);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let silent = odd_server(&rt, None);
    let not_json = odd_server(&rt, Some("hello"));
    let wrong_token = "not-an-admin-token".to_owned();
    let dir = tempfile::tempdir().unwrap();
    let list = [
        ("58", "Ninh Thuận", p.base.clone(), p.token.clone()),
        ("56", "Khánh Hòa", p.base.clone(), wrong_token.clone()),
        ("60", "Bình Thuận", silent, "t".into()),
        ("62", "Kon Tum", not_json, "t".into()),
    ];
    let (base, _national) = roll_up_over(&list, 2.0, dir.path());
    let http = Client::new();
    let started = std::time::Instant::now();
    let n = json(
        &http,
        &format!("{base}/api/v1/national?date={D2}"),
        NATIONAL_TOKEN,
    );
    // Concurrent: the silent province's timeout bounds the whole request.
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(n["answered"], 1);
    let errors: Vec<&str> = n["provinces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(errors[0], "");
    assert_eq!(errors[1], "HTTP 401 Unauthorized");
    assert_eq!(errors[2], "no answer within 2 s");
    assert!(
        errors[3].starts_with("the answer is not JSON"),
        "{}",
        errors[3]
    );
    let text = n.to_string();
    assert!(!text.contains(&wrong_token) && !text.contains(&p.token));
    assert_eq!(n["totals"]["activated"], 2);
    assert_eq!(n["totals"]["target"], 10);
    assert!(n["summary"]
        .as_str()
        .unwrap()
        .starts_with("1 of 4 provinces answered; Khánh Hòa did not: HTTP 401"));
}
