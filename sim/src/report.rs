//! The dashboard's JSON report API (`GET /api/v1/report?unit=CODE&date=YYYY-MM-DD`,
//! `docs/dashboard-api.md`), fetched for every subject and day and compared with the ground
//! truth number by number.

use crate::truth::{Numbers, Subject};
use crate::{Result, SimError};
use std::collections::BTreeMap;

/// Fetch the report of every `(subject, day)` in `expected` and compare. Returns how many
/// numbers were compared and every mismatch.
pub fn compare_api(
    base_url: &str,
    token: &str,
    expected: &BTreeMap<(Subject, String), Numbers>,
) -> Result<(usize, Vec<String>)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| SimError::Api(e.to_string()))?;
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for ((subject, day), want) in expected {
        let query = match subject {
            Subject::Unit(u) => format!("report?unit={u}&date={day}"),
            Subject::Officer(o) => format!("report/officer/{o}?date={day}"),
        };
        let resp = http
            .get(format!("{base_url}/api/v1/{query}"))
            .bearer_auth(token)
            .send()
            .map_err(|e| SimError::Api(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SimError::Api(format!("{query}: HTTP {status}")));
        }
        let body = resp.bytes().map_err(|e| SimError::Api(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| SimError::Api(format!("{query}: {e}")))?;
        for (key, value) in want {
            compared += 1;
            let got = lookup(&json, key);
            if got != Some(*value) {
                mismatches.push(format!(
                    "{} {day} {key}: ground truth {}, report API {}",
                    crate::campaign::describe(subject),
                    crate::campaign::show(Some(*value)),
                    crate::campaign::show(got)
                ));
            }
        }
    }
    Ok((compared, mismatches))
}

/// The number at a ground-truth key's path: `None` if the path does not exist, `Some(None)`
/// if it is `null`. An array step picks the element whose `date`, `code`, `agency` or `id` is
/// the step.
pub fn lookup(json: &serde_json::Value, key: &str) -> Option<Option<i64>> {
    let mut v = json;
    for step in key.split('.') {
        v = match v {
            serde_json::Value::Array(items) => items.iter().find(|item| {
                ["date", "code", "agency", "id"]
                    .iter()
                    .any(|k| item.get(k).and_then(|x| x.as_str()) == Some(step))
            })?,
            _ => v.get(step)?,
        };
    }
    match v {
        serde_json::Value::Null => Some(None),
        other => other.as_i64().map(Some),
    }
}

/// CSV columns and the ground-truth key suffix each one carries.
const CSV_COLUMNS: [(&str, &str); 14] = [
    ("accounts", "accounts"),
    ("level1_activated", "level1_activated"),
    ("level2_activated", "level2_activated"),
    ("activated", "activated"),
    ("level2_received", "level2_received"),
    ("portal", "portal"),
    ("target", "target"),
    ("today_activated", "today.activated"),
    ("today_level1_activated", "today.level1_activated"),
    ("today_level2_received", "today.level2_received"),
    ("today_level2_activated", "today.level2_activated"),
    ("today_portal_guided", "today.portal_guided"),
    ("today_visits", "today.visits"),
    ("campaign_activated", "campaign_activated"),
];

/// Fetch the daily CSV report (`/reports/daily.csv`) of every `(subject, day)` and compare its
/// rows (the subject's own, its children's and its officers') with the ground truth.
pub fn compare_csv(
    base_url: &str,
    token: &str,
    expected: &BTreeMap<(Subject, String), Numbers>,
) -> Result<(usize, Vec<String>)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| SimError::Api(e.to_string()))?;
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for ((subject, day), want) in expected {
        let query = match subject {
            Subject::Unit(u) => format!("unit={u}&date={day}"),
            Subject::Officer(o) => format!("officer={o}&date={day}"),
        };
        let resp = http
            .get(format!("{base_url}/reports/daily.csv?{query}"))
            .bearer_auth(token)
            .send()
            .map_err(|e| SimError::Api(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SimError::Api(format!("daily.csv?{query}: HTTP {status}")));
        }
        let body = resp.bytes().map_err(|e| SimError::Api(e.to_string()))?;
        let got = csv_numbers(subject, &body)
            .map_err(|e| SimError::Api(format!("daily.csv?{query}: {e}")))?;
        for (key, value) in want {
            let in_csv = CSV_COLUMNS.iter().any(|(_, suffix)| {
                key.ends_with(&format!(".{suffix}")) && {
                    let head = &key[..key.len() - suffix.len() - 1];
                    head == "totals"
                        || head == "row"
                        || head.starts_with("children.")
                        || head.starts_with("officers.")
                }
            });
            if !in_csv {
                continue;
            }
            compared += 1;
            let g = got.get(key).copied();
            if g != Some(*value) {
                mismatches.push(format!(
                    "{} {day} {key}: ground truth {}, CSV report {}",
                    crate::campaign::describe(subject),
                    crate::campaign::show(Some(*value)),
                    crate::campaign::show(g)
                ));
            }
        }
    }
    Ok((compared, mismatches))
}

/// The numbers of a CSV report, keyed like the ground truth.
fn csv_numbers(subject: &Subject, body: &[u8]) -> std::result::Result<Numbers, String> {
    let mut reader = csv::Reader::from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(section), Some(code)) = (col("section"), col("code")) else {
        return Err("no section or code column".into());
    };
    let mut out = Numbers::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let sec = rec.get(section).unwrap_or_default();
        let code = rec.get(code).unwrap_or_default();
        let head = match (subject, sec) {
            (Subject::Unit(_), "total") => "totals".to_owned(),
            (Subject::Unit(_), "child") => format!("children.{code}"),
            (Subject::Unit(_), "officer") => format!("officers.{code}"),
            (Subject::Officer(o), _) if code == o.to_string() => "row".to_owned(),
            _ => continue,
        };
        for (column, suffix) in CSV_COLUMNS {
            let Some(i) = col(column) else { continue };
            let cell = rec.get(i).unwrap_or_default().trim();
            let value = if cell.is_empty() {
                None
            } else {
                Some(
                    cell.parse::<i64>()
                        .map_err(|_| format!("column {column}: not an integer"))?,
                )
            };
            out.insert(format!("{head}.{suffix}"), value);
        }
    }
    Ok(out)
}

/// Wait until the dashboard's statistics snapshot was taken after `after_ms` (the report's
/// `as_of`, to the second): the command centre answers from a snapshot rebuilt in the
/// background, a few seconds behind the store (`docs/dashboard-api.md`, ADR 0005).
pub fn wait_fresh(base_url: &str, token: &str, unit: &str, day: &str, after_ms: i64) -> Result<()> {
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| SimError::Api(e.to_string()))?;
    let started = std::time::Instant::now();
    // `as_of` has whole seconds: a snapshot taken in the same second may predate `after_ms`.
    let threshold = (after_ms / 1000 + 1) * 1000;
    loop {
        let resp = http
            .get(format!("{base_url}/api/v1/report?unit={unit}&date={day}"))
            .bearer_auth(token)
            .send()
            .map_err(|e| SimError::Api(e.to_string()))?;
        let body = resp.bytes().map_err(|e| SimError::Api(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| SimError::Api(format!("as_of: {e}")))?;
        let as_of = json
            .get("as_of")
            .and_then(|v| v.as_str())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis());
        if as_of.is_some_and(|t| t >= threshold) {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            return Err(SimError::Api(
                "the statistics snapshot did not catch up within 300 s".into(),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
