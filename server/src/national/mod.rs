//! The national roll-up (`doorstep national`, issue #15): a command centre above the province
//! servers. Each province runs its own `doorstep serve` on its own database (docs/scaling.md);
//! this one reads their report APIs (`/api/v1/report?unit=<province>&date=D`) concurrently,
//! adds up the totals that add up, and says which province did not answer and how old each
//! figure is. It holds no database and no residents' data: only the provinces' reports, which
//! carry none.
//!
//! Here: the configuration file ([`Config`]), fetching ([`fetch`]) and adding up
//! ([`roll_up`]); the HTTP side (routes, access token, sign-in) in [`web`]; the page in
//! [`page`]. Nothing else in the crate imports this module.

pub mod page;
pub mod web;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The configuration file (JSON). Secrets are never in it: each is read from a file or an
/// environment variable it names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The token that callers of this roll-up present (`Authorization: Bearer …`, or typed in
    /// at `/signin`): read from this file…
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// …or from this environment variable.
    #[serde(default)]
    pub token_env: Option<String>,
    /// How long one province may take to answer, in seconds (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// The provinces, in the order shown.
    pub provinces: Vec<ProvinceConfig>,
}

fn default_timeout() -> f64 {
    10.0
}

/// One province server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvinceConfig {
    /// The province's unit code on its server (`58`).
    pub code: String,
    /// Its name as shown (`Ninh Thuận`).
    pub name: String,
    /// The base URL of its server (`https://ninhthuan.example.vn`).
    pub url: String,
    /// A bearer token its report API accepts (an admin token of that server, `doorstep admin
    /// bootstrap`): read from this file…
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// …or from this environment variable.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// A province ready to fetch: its configuration and its token.
#[derive(Clone)]
pub struct Province {
    pub code: String,
    pub name: String,
    /// The base URL without a trailing `/`.
    pub url: String,
    token: String,
}

impl std::fmt::Debug for Province {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "Province({} {} {})", self.code, self.name, self.url)
    }
}

/// Read a secret from a file (first line) or an environment variable; `what` names it in errors.
fn secret(file: &Option<PathBuf>, env: &Option<String>, what: &str) -> anyhow::Result<String> {
    let raw = match (file, env) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("{what}: reading {}: {e}", f.display()))?,
        (None, Some(v)) => std::env::var(v)
            .map_err(|_| anyhow::anyhow!("{what}: the environment variable {v} is not set"))?,
        (None, None) => anyhow::bail!("{what}: give token_file or token_env"),
    };
    let token = raw.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        anyhow::bail!("{what}: the token is empty");
    }
    Ok(token)
}

/// The roll-up's settings, secrets read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub provinces: Vec<Province>,
    pub timeout: Duration,
    /// The access token of this roll-up (not shown by `Debug`).
    pub(crate) token: Token,
}

/// A secret that `Debug` does not print.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Config {
    /// Read a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Check it and read its secrets.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if self.provinces.is_empty() {
            anyhow::bail!("provinces: expected at least one");
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 600.0) {
            anyhow::bail!("timeout_seconds: expected a number of seconds in (0, 600]");
        }
        let mut provinces = Vec::new();
        for p in &self.provinces {
            let url = p.url.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("province {}: url: expected http:// or https://", p.code);
            }
            if provinces.iter().any(|q: &Province| q.code == p.code) {
                anyhow::bail!("province {}: listed twice", p.code);
            }
            provinces.push(Province {
                code: p.code.trim().to_owned(),
                name: p.name.trim().to_owned(),
                url,
                token: secret(&p.token_file, &p.token_env, &format!("province {}", p.code))?,
            });
        }
        Ok(Settings {
            provinces,
            timeout: Duration::from_secs_f64(self.timeout_seconds),
            token: Token(secret(&self.token_file, &self.token_env, "token")?),
        })
    }
}

/// One province's report as fetched.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    /// When the fetch finished (RFC 3339, UTC+7).
    pub fetched_at: String,
    pub fetched_at_ms: i64,
    /// The report's `as_of`: when the province's figures were read there.
    pub as_of: Option<String>,
    /// The report's `totals`.
    pub totals: Value,
    /// The whole report, as the province sent it.
    pub report: Value,
}

/// What one province answered this time.
#[derive(Debug, Clone, Serialize)]
pub struct ProvinceRow {
    pub code: String,
    pub name: String,
    /// Its server's base URL.
    pub url: String,
    /// Its own dashboard page for the same date (the drill-down).
    pub report_url: String,
    /// Whether it answered.
    pub answered: bool,
    /// Why not, in words (`connection refused`, `HTTP 401`, `no answer within 10 s`…).
    pub error: Option<String>,
    /// How long the fetch took, in ms.
    pub fetch_ms: u64,
    /// Seconds from the figures' `as_of` to now (how old they are).
    pub age_seconds: Option<i64>,
    /// The figures, when it answered.
    pub fetched: Option<Fetched>,
    /// When it did not: the last figures of the same date that did come, marked stale, with
    /// their age in seconds (from their fetch).
    pub last_good: Option<Stale>,
}

/// Figures of an earlier successful fetch, shown for a province that did not answer.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub stale: bool,
    /// Seconds since they were fetched.
    pub fetched_age_seconds: i64,
    /// Seconds from their `as_of` to now.
    pub age_seconds: Option<i64>,
    #[serde(flatten)]
    pub fetched: Fetched,
}

/// The country's figures for one date.
#[derive(Debug, Clone, Serialize)]
pub struct National {
    pub date: String,
    /// When this roll-up was made (RFC 3339, UTC+7).
    pub generated_at: String,
    /// Provinces whose figures are in `totals`.
    pub answered: usize,
    pub provinces_total: usize,
    /// `2 of 3 provinces answered; Ninh Thuận did not: connection refused`.
    pub summary: String,
    /// The sums over the provinces that answered (stale figures are not in them).
    pub totals: Value,
    /// Failed steps by reason, summed the same way.
    pub blockers: BTreeMap<String, i64>,
    pub provinces: Vec<ProvinceRow>,
}

/// The local (UTC+7) offset of the reports.
fn local() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7")
}

/// A Unix-ms instant as RFC 3339 in UTC+7.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&local()).to_rfc3339())
        .unwrap_or_default()
}

/// Today in UTC+7, `YYYY-MM-DD`.
pub fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&local())
        .format("%Y-%m-%d")
        .to_string()
}

/// Seconds from an RFC 3339 instant to `now_ms`.
fn age(at: Option<&str>, now_ms: i64) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(at?).ok()?;
    Some((now_ms - t.timestamp_millis()) / 1000)
}

/// Why a fetch failed, in words: never the token, never a body.
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::TimedOut => {
                format!("no answer within {} s", timeout.as_secs_f64())
            }
            kind => format!("network error ({kind})"),
        },
        other => format!("request failed ({other})"),
    }
}

/// The largest report read, a bound against a broken peer.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Fetch one province's report of `date` (blocking: run it off the async threads).
fn fetch_blocking(p: &Province, date: &str, timeout: Duration) -> Result<Fetched, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::WebPki)
                .build(),
        )
        .build()
        .into();
    let url = format!(
        "{}/api/v1/report?unit={}&date={}",
        p.url,
        crate::html::qv(&p.code),
        crate::html::qv(date)
    );
    let mut resp = agent
        .get(&url)
        .header("authorization", &format!("Bearer {}", p.token))
        .header("accept", "application/json")
        .call()
        .map_err(|e| describe(&e, timeout))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "HTTP {}{}",
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ));
    }
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_REPORT_BYTES)
        .read_to_string()
        .map_err(|e| format!("the answer could not be read ({})", describe(&e, timeout)))?;
    let report: Value =
        serde_json::from_str(&text).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let totals = match report.get("totals") {
        Some(t @ Value::Object(_)) => t.clone(),
        _ => return Err("the answer is not a report (no totals)".into()),
    };
    let now = crate::now_ms();
    Ok(Fetched {
        fetched_at: rfc3339(now),
        fetched_at_ms: now,
        as_of: report.get("as_of").and_then(Value::as_str).map(Into::into),
        totals,
        report,
    })
}

/// Fetch one province, bounded by `timeout` even if the client's own bound fails.
pub async fn fetch(p: Province, date: String, timeout: Duration) -> (Result<Fetched, String>, u64) {
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || fetch_blocking(&p, &date, timeout));
    let out = match tokio::time::timeout(timeout + Duration::from_secs(1), task).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the fetch failed inside the roll-up".into()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
    };
    (out, started.elapsed().as_millis() as u64)
}

/// The last successful fetch per (province code, date), kept in memory.
#[derive(Default)]
pub struct Cache {
    last: std::sync::Mutex<BTreeMap<(String, String), Fetched>>,
}

/// The count fields of a report's `Row` that add up across provinces.
const SUMMED: [&str; 7] = [
    "accounts",
    "level1_activated",
    "level2_activated",
    "activated",
    "level2_received",
    "portal",
    "campaign_activated",
];

/// `today`'s fields.
const TODAY: [&str; 6] = [
    "activated",
    "level1_activated",
    "level2_received",
    "level2_activated",
    "portal_guided",
    "visits",
];

/// The country's totals from the provinces' `totals` and `blockers`.
pub fn add_up<'a>(reports: impl Iterator<Item = &'a Fetched>) -> (Value, BTreeMap<String, i64>) {
    // Every count present, 0 when no province answered.
    let mut sums: BTreeMap<&str, i64> = SUMMED.iter().map(|k| (*k, 0)).collect();
    let mut today: BTreeMap<&str, i64> = TODAY.iter().map(|k| (*k, 0)).collect();
    let mut blockers: BTreeMap<String, i64> = BTreeMap::new();
    let mut target: Option<i64> = Some(0);
    let mut n = 0;
    for f in reports {
        n += 1;
        let t = &f.totals;
        for k in SUMMED {
            *sums.entry(k).or_default() += t.get(k).and_then(Value::as_i64).unwrap_or(0);
        }
        for k in TODAY {
            *today.entry(k).or_default() += t
                .get("today")
                .and_then(|d| d.get(k))
                .and_then(Value::as_i64)
                .unwrap_or(0);
        }
        target = match (target, t.get("target").and_then(Value::as_i64)) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        if let Some(Value::Object(b)) = f.report.get("blockers") {
            for (reason, count) in b {
                *blockers.entry(reason.clone()).or_default() += count.as_i64().unwrap_or(0);
            }
        }
    }
    if n == 0 {
        target = None;
    }
    let mut out = Map::new();
    for (k, v) in &sums {
        out.insert((*k).into(), (*v).into());
    }
    out.insert(
        "today".into(),
        Value::Object(
            today
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        ),
    );
    out.insert("target".into(), target.map_or(Value::Null, Into::into));
    let percent = target
        .filter(|t| *t > 0)
        .map(|t| sums.get("activated").copied().unwrap_or(0) as f64 * 100.0 / t as f64);
    out.insert(
        "percent_of_target".into(),
        percent.map_or(Value::Null, Into::into),
    );
    (Value::Object(out), blockers)
}

/// Fetch every province's report of `date` at once and add them up.
pub async fn roll_up(settings: &Settings, cache: &Arc<Cache>, date: &str) -> National {
    let tasks: Vec<_> = settings
        .provinces
        .iter()
        .map(|p| tokio::spawn(fetch(p.clone(), date.to_owned(), settings.timeout)))
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(
            t.await
                .unwrap_or_else(|_| (Err("the fetch failed inside the roll-up".into()), 0)),
        );
    }
    let now = crate::now_ms();
    let mut rows = Vec::new();
    for (p, (result, fetch_ms)) in settings.provinces.iter().zip(results) {
        let key = (p.code.clone(), date.to_owned());
        let report_url = format!(
            "{}/dash?unit={}&date={}",
            p.url,
            crate::html::qv(&p.code),
            date
        );
        let mut row = ProvinceRow {
            code: p.code.clone(),
            name: p.name.clone(),
            url: p.url.clone(),
            report_url,
            answered: false,
            error: None,
            fetch_ms,
            age_seconds: None,
            fetched: None,
            last_good: None,
        };
        let mut last = cache.last.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(f) => {
                row.answered = true;
                row.age_seconds = age(f.as_of.as_deref(), now);
                last.insert(key, f.clone());
                row.fetched = Some(f);
            }
            Err(e) => {
                tracing::warn!(province = %p.code, error = %e, "province did not answer");
                row.error = Some(e);
                row.last_good = last.get(&key).map(|f| Stale {
                    stale: true,
                    fetched_age_seconds: (now - f.fetched_at_ms) / 1000,
                    age_seconds: age(f.as_of.as_deref(), now),
                    fetched: f.clone(),
                });
            }
        }
        rows.push(row);
    }
    let (totals, blockers) = add_up(rows.iter().filter_map(|r| r.fetched.as_ref()));
    let answered = rows.iter().filter(|r| r.answered).count();
    let mut summary = format!("{answered} of {} provinces answered", rows.len());
    for r in rows.iter().filter(|r| !r.answered) {
        summary.push_str(&format!(
            "; {} did not: {}",
            r.name,
            r.error.as_deref().unwrap_or("")
        ));
    }
    National {
        date: date.to_owned(),
        generated_at: rfc3339(now),
        answered,
        provinces_total: rows.len(),
        summary,
        totals,
        blockers,
        provinces: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fetched(totals: Value, blockers: Value) -> Fetched {
        Fetched {
            fetched_at: String::new(),
            fetched_at_ms: 0,
            as_of: None,
            report: json!({"totals": totals.clone(), "blockers": blockers}),
            totals,
        }
    }

    #[test]
    fn sums_add_up_and_a_missing_target_makes_none() {
        let a = fetched(
            json!({"accounts": 10, "activated": 4, "target": 8, "today": {"activated": 1}}),
            json!({"otp_not_received": 2}),
        );
        let b = fetched(
            json!({"accounts": 5, "activated": 1, "target": 2, "today": {"activated": 1}}),
            json!({"otp_not_received": 1, "phone_not_own_name": 3}),
        );
        let (t, blockers) = add_up([&a, &b].into_iter());
        assert_eq!(t["accounts"], 15);
        assert_eq!(t["activated"], 5);
        assert_eq!(t["today"]["activated"], 2);
        assert_eq!(t["today"]["visits"], 0);
        assert_eq!(t["target"], 10);
        assert_eq!(t["percent_of_target"], 50.0);
        assert_eq!(blockers["otp_not_received"], 3);
        assert_eq!(blockers["phone_not_own_name"], 3);
        let c = fetched(json!({"accounts": 1, "target": null}), json!({}));
        let (t, _) = add_up([&a, &c].into_iter());
        assert_eq!(t["target"], Value::Null);
        assert_eq!(t["percent_of_target"], Value::Null);
        let (t, blockers) = add_up(std::iter::empty());
        assert_eq!(t["accounts"], 0);
        assert_eq!(t["target"], Value::Null);
        assert!(blockers.is_empty());
    }

    #[test]
    fn ages_read_as_of() {
        let now = chrono::DateTime::parse_from_rfc3339("2023-07-02T12:00:00+07:00")
            .unwrap()
            .timestamp_millis();
        assert_eq!(age(Some("2023-07-02T11:59:00+07:00"), now), Some(60));
        assert_eq!(age(Some("garbage"), now), None);
        assert_eq!(age(None, now), None);
    }
}
