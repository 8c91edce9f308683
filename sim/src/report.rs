//! The dashboard's JSON report API (`GET /api/v1/report?unit=CODE&date=YYYY-MM-DD`,
//! `docs/dashboard-api.md`), fetched for every subject and day and compared with the ground
//! truth number by number.

use crate::truth::Subject;
use crate::{Result, SimError};
use std::collections::BTreeMap;

/// Fetch the report of every `(subject, day)` in `expected` and compare. Returns how many
/// numbers were compared and every mismatch.
pub fn compare_api(
    base_url: &str,
    token: &str,
    expected: &BTreeMap<(Subject, String), BTreeMap<String, i64>>,
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
            .get(format!("{base_url}/api/v1/report?{query}"))
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
                    "{} {day} {key}: ground truth {value}, report API {}",
                    crate::campaign::describe(subject),
                    got.map_or("absent".into(), |g| g.to_string())
                ));
            }
        }
    }
    Ok((compared, mismatches))
}

/// The number the report gives for one of the ground truth's keys.
pub fn lookup(json: &serde_json::Value, key: &str) -> Option<i64> {
    let path: Vec<&str> = key.split('.').collect();
    let mut v = json;
    for p in path {
        v = v.get(p)?;
    }
    v.as_i64()
}
