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
