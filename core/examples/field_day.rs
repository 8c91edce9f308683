//! A field worker's day on the embedded store, end to end: load Ninh Thuận's real units, a
//! demo roster for one commune, record a morning of visits and help, and answer the questions
//! an officer asks.
//!
//! - `field_day [STORE]`: the phone on its own (a 2023 campaign day on a fixed clock).
//! - `field_day --write-units FILE --write-roster FILE [--write-roster-with-errors FILE]`: write
//!   the sample files for `doorstep units import` and `doorstep roster import` (any of the three
//!   flags, alone or together): Ninh Thuận's units with the villages the roster needs, a roster
//!   whose every row is accepted, and one with a bad row of each kind (`samples/mod.rs`).
//! - `field_day --server URL --code CODE [--store PATH]`: enrol with a server, pull the area,
//!   work, sync (the README's "Build and run the server by hand" ends with it).
//!
//! Everything is synthetic except the administrative units (`data/ninh-thuan-2023-units.csv`).

use chrono::NaiveDate;
use doorstep_core::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

mod samples;
use samples::COMMUNE;

/// 2023-07-20 08:00 in Vietnam.
const MORNING_MS: u64 = 1_689_814_800_000;

enum Mode {
    /// Everything on the phone's store, no server.
    Standalone { path: std::path::PathBuf },
    /// Write the sample files asked for and stop (for `doorstep units import` and
    /// `doorstep roster import`).
    WriteSamples {
        units: Option<std::path::PathBuf>,
        roster: Option<std::path::PathBuf>,
        roster_with_errors: Option<std::path::PathBuf>,
    },
    /// Enrol with a server, pull the area, work, sync.
    Connected {
        server: String,
        code: String,
        path: std::path::PathBuf,
    },
}

fn parse_args() -> std::result::Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| -> Option<String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let temp =
        || std::env::temp_dir().join(format!("doorstep-field-day-{}.db", std::process::id()));
    let units = value("--write-units").map(Into::into);
    let roster = value("--write-roster").map(Into::into);
    let roster_with_errors = value("--write-roster-with-errors").map(Into::into);
    if units.is_some() || roster.is_some() || roster_with_errors.is_some() {
        return Ok(Mode::WriteSamples {
            units,
            roster,
            roster_with_errors,
        });
    }
    if let Some(server) = value("--server") {
        let code =
            value("--code").ok_or("--server needs --code CODE (from `doorstep enrol-code`)")?;
        let path = value("--store").map_or_else(temp, Into::into);
        return Ok(Mode::Connected { server, code, path });
    }
    match args.first() {
        Some(a) if a.starts_with("--") => Err(format!(
            "unknown option {a}; usage: field_day [STORE] | [--write-units FILE] [--write-roster FILE] \
             [--write-roster-with-errors FILE] | --server URL --code CODE [--store PATH]"
        )),
        Some(a) => Ok(Mode::Standalone { path: a.into() }),
        None => Ok(Mode::Standalone { path: temp() }),
    }
}

fn main() -> Result<()> {
    let mode = match parse_args() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match mode {
        Mode::WriteSamples {
            units,
            roster,
            roster_with_errors,
        } => {
            let files = [
                (units, samples::units_csv(), "units with the villages"),
                (roster, samples::roster_csv(), "roster, every row accepted"),
                (
                    roster_with_errors,
                    samples::ROSTER_WITH_ERRORS.to_owned(),
                    "roster with a bad row of each kind: docs/roster-format.md, \"Sample rosters\"",
                ),
            ];
            for (file, csv, what) in files {
                if let Some(file) = file {
                    std::fs::write(&file, csv)?;
                    println!("wrote {} ({what})", file.display());
                }
            }
            Ok(())
        }
        Mode::Standalone { path } => standalone(&path),
        Mode::Connected { server, code, path } => connected(&server, &code, &path),
    }
}

/// The phone's store on its own: reference data, roster, a day, the answers.
fn standalone(path: &std::path::Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let clock = Arc::new(ManualClock::new(MORNING_MS));
    let mut store = Store::open(
        path,
        Options {
            clock: clock.clone(),
            ..Options::default()
        },
    )?;
    println!(
        "Doorstep field day — store {} (replica {})",
        path.display(),
        store.replica_id()
    );

    // Reference data: the real units and the villages of one commune (the sample units file),
    // a campaign, an officer.
    let t = Instant::now();
    let units = store.import_units_csv(samples::units_csv().as_bytes())?;
    println!(
        "units: {} accepted, {} rejected ({:.0?})",
        units.accepted,
        units.rejected.len(),
        t.elapsed()
    );
    let campaign = Uuid::now_v7();
    store.put_campaign(CampaignInput {
        id: campaign,
        name: "Cao điểm 80 ngày đêm — VNeID".into(),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap_or_default(),
        end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap_or_default(),
        target: 264_720,
        unit_code: "58".into(),
    })?;
    let me = Uuid::now_v7();
    store.put_officer(OfficerInput {
        id: me,
        name: "CSKV Trần Văn Bình".into(),
        role: Role::Field,
        unit_code: COMMUNE.into(),
    })?;
    for v in 1..=2 {
        store.assign(me, AssignTarget::Village(format!("{COMMUNE}-{v:02}")))?;
    }
    let day = NaiveDate::parse_from_str(&store.today(), "%Y-%m-%d").unwrap_or_default();
    for (metric, target) in [
        (QuotaMetric::Visits, 40),
        (QuotaMetric::Level2Received, 15),
        (QuotaMetric::Level2Activated, 10),
    ] {
        store.set_quota(QuotaInput {
            campaign_id: campaign,
            subject: QuotaSubject::Officer(me),
            period: QuotaPeriod::Day(day),
            metric,
            target,
        })?;
    }

    // The roster for the commune, as a CSV file an officer is handed.
    let csv = samples::roster_csv();
    let commune_name: String =
        store
            .connection()
            .query_row("SELECT name FROM units WHERE code = ?1", [COMMUNE], |r| {
                r.get(0)
            })?;
    let t = Instant::now();
    let report = store.import_roster(campaign, csv.as_bytes(), &mut |p| {
        eprint!("\rimporting roster: {} rows", p.rows_read);
    })?;
    eprintln!();
    println!(
        "roster for {commune_name}: {} rows, {} residents and {} households written, {} rejected ({:.0?})",
        report.rows,
        report.residents_changed,
        report.households_changed,
        report.rejected.len(),
        t.elapsed()
    );
    for r in report.rejected.iter().take(3) {
        println!("  line {}: {}", r.line, r.reason);
    }
    let again = store.import_roster(campaign, csv.as_bytes(), &mut |_| {})?;
    println!(
        "same roster again: {} unchanged, {} written",
        again.unchanged, again.residents_changed
    );

    work_the_day(&mut store, me, &|| clock.advance(6 * 60_000))?;
    answers(&store, me, campaign)?;
    let vv = store.version_vector()?;
    println!(
        "\nOperation log: {} operations ready to sync",
        vv.get(&store.replica_id())
    );
    Ok(())
}

/// A phone against a server: enrol, pull the officer's area, work, sync, answer.
fn connected(server: &str, code: &str, path: &std::path::Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut store = Store::open(path, Options::default())?;
    let enrolment = sync::enrol(&mut store, server, code, "field_day example")?;
    println!(
        "enrolled: device {} for officer {} (clock offset {} ms)",
        enrolment.device_id,
        enrolment.officer_id,
        store.clock_offset_ms()
    );
    let config = sync::SyncConfig::new(server, enrolment.token.clone());
    let mut progress = |p: sync::SyncProgress| match p {
        sync::SyncProgress::Pulled { ops, more } => {
            eprint!("\rpulled {ops} operations{}", if more { "…" } else { "  " })
        }
        sync::SyncProgress::Pushed { ops, remaining } => {
            eprint!("\rpushed {ops} operations, {remaining} to go  ")
        }
    };
    let first = sync::sync(&mut store, &config, &mut progress)?;
    eprintln!();
    println!(
        "first sync: {} operations pulled, {} bytes down, {:.0?}",
        first.pulled, first.bytes_down, first.duration
    );
    let me = enrolment.officer_id;
    let campaign: String = store
        .connection()
        .query_row(
            "SELECT id FROM campaigns WHERE ?1 BETWEEN start_date AND end_date ORDER BY id LIMIT 1",
            [store.today()],
            |r| r.get(0),
        )
        .map_err(|_| Error::NotFound {
            field: "campaign_id",
            kind: "campaign running today",
        })?;
    let campaign = Uuid::parse_str(&campaign).map_err(|_| Error::Invalid {
        field: "campaign_id",
        expected: "a UUID",
    })?;
    work_the_day(&mut store, me, &|| {})?;
    answers(&store, me, campaign)?;
    let report = sync::sync(&mut store, &config, &mut progress)?;
    eprintln!();
    println!(
        "\nsync: {} pushed, {} rejected, {} pulled; {} bytes up, {} bytes down, {} requests, {:.0?}",
        report.pushed,
        report.rejected.len(),
        report.pulled,
        report.bytes_up,
        report.bytes_down,
        report.requests,
        report.duration
    );
    Ok(())
}

/// A morning's work: 35 households, one every few minutes.
fn work_the_day(store: &mut Store, me: Uuid, next: &dyn Fn()) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let today = store.today();
    let households = store.my_households(me, &today)?;
    let mut recorded = (0, 0);
    for h in households.iter().take(35) {
        next();
        let outcome = match rng.gen_range(0..10) {
            0..=5 => VisitOutcome::Met,
            6 | 7 => VisitOutcome::NobodyHome,
            8 => VisitOutcome::ComeBack,
            _ => VisitOutcome::Refused,
        };
        let revisit =
            (outcome == VisitOutcome::ComeBack).then(|| store.now_ms() + 26 * 3600 * 1000);
        store.record_visit(NewVisit {
            household_id: h.id,
            officer_id: me,
            at_ms: None,
            outcome,
            revisit_at_ms: revisit,
            note: None,
            location: Some(Location {
                lat_e6: 11_680_000 + rng.gen_range(0..9000),
                lon_e6: 109_110_000 + rng.gen_range(0..9000),
            }),
        })?;
        recorded.0 += 1;
        if outcome != VisitOutcome::Met {
            continue;
        }
        let residents: Vec<String> = store
            .connection()
            .prepare("SELECT id FROM residents WHERE household_id = ?1 AND deleted = 0")?
            .query_map([h.id.to_string()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for r in residents {
            let resident_id = Uuid::parse_str(&r).map_err(|_| Error::Invalid {
                field: "resident_id",
                expected: "a UUID",
            })?;
            let (step, failure) = match rng.gen_range(0..12) {
                0..=4 => (AssistStep::Level2Received, None),
                5 | 6 => (AssistStep::Level2Activated, None),
                7 => (AssistStep::Level1Activated, None),
                8 => (
                    AssistStep::Level2Activated,
                    Some(FailureReason::OtpNotReceived),
                ),
                9 => (
                    AssistStep::Level1Activated,
                    Some(FailureReason::PhoneNotOwnName),
                ),
                10 => (
                    AssistStep::Level2Received,
                    Some(FailureReason::NoChipIdCard),
                ),
                _ => continue,
            };
            store.record_assist(NewAssist {
                resident_id,
                officer_id: me,
                at_ms: None,
                step,
                failure,
                receiving_point: Some("Điểm tiếp nhận lưu động UBND xã".into()),
                note: None,
            })?;
            recorded.1 += 1;
        }
    }
    println!(
        "recorded {} visits and {} assistance steps (each its own durable transaction)\n",
        recorded.0, recorded.1
    );
    Ok(())
}

/// What the officer asks.
fn answers(store: &Store, me: Uuid, campaign: Uuid) -> Result<()> {
    let today = store.today();
    let t = Instant::now();
    let list = store.my_households(me, &today)?;
    let took = t.elapsed();
    let visited = list.iter().filter(|h| h.visited_today).count();
    println!(
        "My households today ({today}): {} in my villages, {visited} visited ({took:.1?})",
        list.len()
    );
    for h in list.iter().take(5) {
        println!(
            "  {:<8} {:<10} needing help: {}  last visit: {}",
            h.code,
            h.village_code,
            h.residents_needing_help,
            h.last_visit.map(|(_, o)| o.as_str()).unwrap_or("—")
        );
    }
    let needs = store.residents_needing_help(me)?;
    let mut by_need = String::new();
    for n in Need::ALL {
        let c = needs.iter().filter(|r| r.need == *n).count();
        if c > 0 {
            let _ = write!(by_need, "{}={c} ", n.as_str());
        }
    }
    println!("Residents still needing help: {} ({by_need})", needs.len());
    let t = Instant::now();
    let hits = store.search_residents("nguyen van", 5)?;
    println!(
        "Search \"nguyen van\": {} shown ({:.1?}) e.g. {}",
        hits.len(),
        t.elapsed(),
        hits.first().map(|h| h.full_name.as_str()).unwrap_or("—")
    );
    let p = store.progress(me, campaign, &today)?;
    println!(
        "Progress today: visits {}/{}, level-2 received {}/{}, level-2 activated {}/{}",
        p.day.visits,
        p.day_quota.visits,
        p.day.level2_received,
        p.day_quota.level2_received,
        p.day.level2_activated,
        p.day_quota.level2_activated
    );
    print!("Blockers:");
    for b in store.blockers(Some(me))? {
        print!(" {}={}", b.reason.as_str(), b.residents);
    }
    println!();
    Ok(())
}
