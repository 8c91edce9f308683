//! The sample files a newcomer imports first (`field_day --write-units --write-roster
//! --write-roster-with-errors`, `core/examples/samples/mod.rs`): the units file holds every
//! village the rosters name, the clean roster imports with no rejected row, and the roster
//! with errors rejects exactly the lines, with exactly the reasons, that the table of
//! `docs/roster-format.md` ("Sample rosters") lists, so the document and the importer cannot
//! drift apart.

#[path = "../examples/samples/mod.rs"]
mod samples;

use chrono::NaiveDate;
use doorstep_core::roster::ImportReport;
use doorstep_core::{CampaignInput, Options, Store};
use uuid::Uuid;

const CAMPAIGN: Uuid = Uuid::from_u128(0xCA00);

/// A fresh store with the sample units file and a campaign.
fn store_with_units() -> Store {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    let units = s.import_units_csv(samples::units_csv().as_bytes()).unwrap();
    assert_eq!(units.rejected, Vec::new(), "the sample units file");
    assert_eq!(units.accepted, units.rows);
    s.put_campaign(CampaignInput {
        id: CAMPAIGN,
        name: "Cao điểm 80 ngày đêm".into(),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
        target: 264_720,
        unit_code: "58".into(),
    })
    .unwrap();
    s
}

fn import(s: &mut Store, csv: &str) -> ImportReport {
    s.import_roster(CAMPAIGN, csv.as_bytes(), &mut |_| {})
        .unwrap()
}

fn doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/roster-format.md"
    ))
    .unwrap()
}

/// The section "Sample rosters" of the format document.
fn doc_section() -> String {
    let doc = doc();
    let start = doc
        .find("\n## Sample rosters\n")
        .expect("docs/roster-format.md has a section \"Sample rosters\"");
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The (line, reason) pairs of the section's table `| what is wrong | line | reason |`.
fn documented_rejections() -> Vec<(u64, String)> {
    doc_section()
        .lines()
        .filter(|l| l.starts_with("| ") && l.ends_with("` |"))
        .map(|row| {
            let cells: Vec<&str> = row
                .trim_start_matches("| ")
                .trim_end_matches(" |")
                .split(" | ")
                .collect();
            assert_eq!(cells.len(), 3, "a row of the table: {row}");
            let line = cells[1].trim().parse().expect("a line number");
            let reason = cells[2].trim();
            assert!(reason.starts_with('`') && reason.ends_with('`'), "{row}");
            (line, reason.trim_matches('`').to_owned())
        })
        .collect()
}

fn rejections(r: &ImportReport) -> Vec<(u64, String)> {
    r.rejected
        .iter()
        .map(|x| (x.line, x.reason.clone()))
        .collect()
}

#[test]
fn the_clean_sample_imports_every_row() {
    let mut s = store_with_units();
    let csv = samples::roster_csv();
    let r = import(&mut s, &csv);
    assert_eq!(rejections(&r), Vec::new());
    assert_eq!(r.accepted, r.rows);
    assert_eq!(r.rows, csv.lines().count() - 1);
    // Every village of the sample holds households.
    for village in samples::village_codes() {
        let n: i64 = s
            .connection()
            .query_row(
                "SELECT count(*) FROM households WHERE village_code = ?1",
                [&village],
                |row| row.get(0),
            )
            .unwrap();
        assert!(n > 0, "{village}");
    }
    // The document gives the sample's size.
    let size = format!(
        "{},{:03} residents in {} households",
        r.residents_changed / 1000,
        r.residents_changed % 1000,
        r.households_changed
    );
    assert!(doc_section().contains(&size), "docs should say {size}");
    // Imported again, nothing changes.
    let again = import(&mut s, &csv);
    assert_eq!((again.unchanged, again.rejected.len()), (r.rows, 0));
}

#[test]
fn the_sample_with_errors_rejects_exactly_the_documented_lines() {
    let documented = documented_rejections();
    assert!(documented.len() >= 6, "the table lists the rejected lines");
    // Each line is wrong in its own way: no reason twice.
    let mut kinds: Vec<&str> = documented
        .iter()
        .map(|(_, r)| r.split(':').next().unwrap())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert!(kinds.len() >= 6, "{kinds:?}");

    // On its own, and after the clean sample: the same report.
    let mut alone = store_with_units();
    let r = import(&mut alone, samples::ROSTER_WITH_ERRORS);
    assert_eq!(rejections(&r), documented);
    assert_eq!(r.accepted, r.rows - documented.len());
    let mut after = store_with_units();
    import(&mut after, &samples::roster_csv());
    assert_eq!(
        rejections(&import(&mut after, samples::ROSTER_WITH_ERRORS)),
        documented
    );

    // The row count and the accepted lines the document gives.
    let rejected: Vec<u64> = documented.iter().map(|(l, _)| *l).collect();
    let accepted: Vec<String> = (2..=r.rows as u64 + 1)
        .filter(|l| !rejected.contains(l))
        .map(|l| l.to_string())
        .collect();
    let (last, rest) = accepted.split_last().unwrap();
    let said = format!(
        "{} rows, of which lines {} and {last} are accepted",
        r.rows,
        rest.join(", ")
    );
    let section = doc_section()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(section.contains(&said), "docs should say: {said}");
}
