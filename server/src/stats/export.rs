//! Report files: the daily and end-of-campaign reports as XLSX (what command files), CSV and
//! JSON, with exactly the numbers of the JSON API (they are written from the same
//! [`Report`]).
//!
//! Layout: one table of rows, the same columns in CSV and in the XLSX sheet `Rows`:
//! [`COLUMNS`], with `section` = `total` (the unit itself), `child` (each unit below) or
//! `officer`. The XLSX adds the sheets `Info` (unit, day, campaign, as of), `Trend`,
//! `Blockers`, `Devices` and, for a unit, `Below quota` (accountability: the units and officers
//! below a day quota, worst first, one row per metric; the JSON's `below_quota`).
//!
//! Also reachable as `crate::reports`, its path before it joined the statistics folder.

use super::{DayCounts, DeviceRow, OfficerReport, OfficerRow, Report, Row, Shortfall, TrendPoint};
use crate::error::{Result, ServerError};
use rust_xlsxwriter::{Format as XFormat, Workbook, Worksheet, XlsxError};
use std::collections::BTreeMap;

/// A report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Excel workbook.
    Xlsx,
    /// Comma-separated values, UTF-8.
    Csv,
    /// The API's JSON.
    Json,
}

impl Format {
    /// `xlsx`, `csv` or `json`.
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "xlsx" => Ok(Format::Xlsx),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(ServerError::BadRequest(
                "format: expected one of xlsx, csv, json".into(),
            )),
        }
    }
}

/// The columns of the rows table.
pub const COLUMNS: [&str; 19] = [
    "section",
    "code",
    "name",
    "level",
    "accounts",
    "level1_activated",
    "level2_activated",
    "activated",
    "level2_received",
    "portal",
    "target",
    "percent_of_target",
    "today_activated",
    "today_level1_activated",
    "today_level2_received",
    "today_level2_activated",
    "today_portal_guided",
    "today_visits",
    "campaign_activated",
];

/// A cell of the rows table.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Int(u64),
    Num(Option<f64>),
}

fn counts(
    c: [u64; 6],
    target: Option<i64>,
    pct: Option<f64>,
    today: &DayCounts,
    campaign: u64,
) -> Vec<Cell> {
    let mut v: Vec<Cell> = c.iter().map(|n| Cell::Int(*n)).collect();
    v.push(Cell::Num(target.map(|t| t as f64)));
    v.push(Cell::Num(pct));
    for n in [
        today.activated,
        today.level1_activated,
        today.level2_received,
        today.level2_activated,
        today.portal_guided,
        today.visits,
        campaign,
    ] {
        v.push(Cell::Int(n));
    }
    v
}

fn unit_cells(section: &str, r: &Row) -> Vec<Cell> {
    let mut v = vec![
        Cell::Text(section.into()),
        Cell::Text(r.code.clone()),
        Cell::Text(r.name.clone()),
        Cell::Text(r.level.clone()),
    ];
    v.extend(counts(
        [
            r.accounts,
            r.level1_activated,
            r.level2_activated,
            r.activated,
            r.level2_received,
            r.portal,
        ],
        r.target,
        r.percent_of_target,
        &r.today,
        r.campaign_activated,
    ));
    v
}

fn officer_cells(r: &OfficerRow) -> Vec<Cell> {
    let mut v = vec![
        Cell::Text("officer".into()),
        Cell::Text(r.id.to_string()),
        Cell::Text(r.name.clone()),
        Cell::Text(r.unit_code.clone()),
    ];
    v.extend(counts(
        [
            r.accounts,
            r.level1_activated,
            r.level2_activated,
            r.activated,
            r.level2_received,
            r.portal,
        ],
        r.target,
        r.percent_of_target,
        &r.today,
        r.campaign_activated,
    ));
    v
}

/// A CSV field, quoted when needed; a text cell starting with a formula character gets a
/// leading `'` so that a spreadsheet does not run it.
fn csv_field(c: &Cell) -> String {
    match c {
        Cell::Int(n) => n.to_string(),
        Cell::Num(None) => String::new(),
        Cell::Num(Some(x)) => format!("{x}"),
        Cell::Text(s) => {
            let s = if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.clone()
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        }
    }
}

fn csv(rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(csv_field).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn xerr(e: XlsxError) -> ServerError {
    ServerError::Internal(format!("writing the workbook: {e}"))
}

fn write_rows(ws: &mut Worksheet, rows: &[Vec<Cell>], bold: &XFormat) -> Result<()> {
    ws.set_name("Rows").map_err(xerr)?;
    for (c, h) in COLUMNS.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, bold)
            .map_err(xerr)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        for (c, cell) in r.iter().enumerate() {
            let col = c as u16;
            match cell {
                Cell::Text(s) => ws.write_string(row, col, s).map(|_| ()),
                Cell::Int(n) => ws.write_number(row, col, *n as f64).map(|_| ()),
                Cell::Num(Some(x)) => ws.write_number(row, col, *x).map(|_| ()),
                Cell::Num(None) => Ok(()),
            }
            .map_err(xerr)?;
        }
    }
    ws.set_column_width(2, 28).map_err(xerr)?;
    ws.set_freeze_panes(1, 0).map_err(xerr)?;
    Ok(())
}

struct Extras<'a> {
    info: Vec<(&'static str, String)>,
    trend: &'a [TrendPoint],
    blockers: &'a BTreeMap<String, u64>,
    devices: &'a [DeviceRow],
    /// A unit's accountability list (none in an officer's file).
    below_quota: Option<&'a [Shortfall]>,
}

fn workbook(rows: &[Vec<Cell>], x: Extras<'_>) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = XFormat::new().set_bold();
    {
        let ws = wb.add_worksheet();
        ws.set_name("Info").map_err(xerr)?;
        for (i, (k, v)) in x.info.iter().enumerate() {
            ws.write_string_with_format(i as u32, 0, *k, &bold)
                .map_err(xerr)?;
            ws.write_string(i as u32, 1, v).map_err(xerr)?;
        }
        ws.set_column_width(1, 40).map_err(xerr)?;
    }
    write_rows(wb.add_worksheet(), rows, &bold)?;
    {
        let ws = wb.add_worksheet();
        ws.set_name("Trend").map_err(xerr)?;
        for (c, h) in ["date", "activated", "level1_activated", "level2_activated"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(0, c as u16, *h, &bold)
                .map_err(xerr)?;
        }
        for (i, p) in x.trend.iter().enumerate() {
            let r = i as u32 + 1;
            ws.write_string(r, 0, p.date.to_string()).map_err(xerr)?;
            ws.write_number(r, 1, p.activated as f64).map_err(xerr)?;
            ws.write_number(r, 2, p.level1_activated as f64)
                .map_err(xerr)?;
            ws.write_number(r, 3, p.level2_activated as f64)
                .map_err(xerr)?;
        }
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("Blockers").map_err(xerr)?;
        ws.write_string_with_format(0, 0, "reason", &bold)
            .map_err(xerr)?;
        ws.write_string_with_format(0, 1, "attempts", &bold)
            .map_err(xerr)?;
        for (i, (k, n)) in x.blockers.iter().enumerate() {
            ws.write_string(i as u32 + 1, 0, k).map_err(xerr)?;
            ws.write_number(i as u32 + 1, 1, *n as f64).map_err(xerr)?;
        }
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("Devices").map_err(xerr)?;
        for (c, h) in ["device", "name", "officer", "last_sync", "stale", "revoked"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(0, c as u16, *h, &bold)
                .map_err(xerr)?;
        }
        for (i, d) in x.devices.iter().enumerate() {
            let r = i as u32 + 1;
            ws.write_string(r, 0, d.id.to_string()).map_err(xerr)?;
            ws.write_string(r, 1, &d.name).map_err(xerr)?;
            ws.write_string(r, 2, &d.officer_name).map_err(xerr)?;
            ws.write_string(r, 3, d.last_sync.as_deref().unwrap_or(""))
                .map_err(xerr)?;
            ws.write_boolean(r, 4, d.stale).map_err(xerr)?;
            ws.write_boolean(r, 5, d.revoked).map_err(xerr)?;
        }
    }
    if let Some(below_quota) = x.below_quota {
        // Accountability: who is below the day's quota, worst first, one row per metric.
        let ws = wb.add_worksheet();
        ws.set_name("Below quota").map_err(xerr)?;
        for (c, h) in [
            "kind",
            "id",
            "name",
            "metric",
            "done",
            "quota",
            "missing_share",
        ]
        .iter()
        .enumerate()
        {
            ws.write_string_with_format(0, c as u16, *h, &bold)
                .map_err(xerr)?;
        }
        let mut r = 0u32;
        for s in below_quota {
            for l in &s.lags {
                r += 1;
                ws.write_string(r, 0, &s.kind).map_err(xerr)?;
                ws.write_string(r, 1, &s.id).map_err(xerr)?;
                ws.write_string(r, 2, &s.name).map_err(xerr)?;
                ws.write_string(r, 3, &l.metric).map_err(xerr)?;
                ws.write_number(r, 4, l.done as f64).map_err(xerr)?;
                ws.write_number(r, 5, l.quota as f64).map_err(xerr)?;
                ws.write_number(r, 6, s.missing_share).map_err(xerr)?;
            }
        }
        ws.set_column_width(2, 28).map_err(xerr)?;
    }
    wb.save_to_buffer().map_err(xerr)
}

/// A unit's report as a file.
pub fn unit(r: &Report, format: Format) -> Result<Vec<u8>> {
    let mut rows = vec![unit_cells("total", &r.totals)];
    rows.extend(r.children.iter().map(|c| unit_cells("child", c)));
    rows.extend(r.officers.iter().map(officer_cells));
    match format {
        Format::Json => serde_json::to_vec(r).map_err(|e| ServerError::Internal(e.to_string())),
        Format::Csv => Ok(csv(&rows)),
        Format::Xlsx => workbook(
            &rows,
            Extras {
                info: vec![
                    ("unit", format!("{} {}", r.unit.code, r.unit.name)),
                    ("level", r.unit.level.clone()),
                    ("date", r.date.to_string()),
                    ("totals", totals_as_of(r.date)),
                    (
                        "campaign",
                        format!("{} ({})", r.campaign.name, r.campaign.id),
                    ),
                    (
                        "campaign dates",
                        format!("{} – {}", r.campaign.start, r.campaign.end),
                    ),
                    ("as of", r.as_of.clone()),
                ],
                trend: &r.trend,
                blockers: &r.blockers,
                devices: &r.devices,
                below_quota: Some(&r.below_quota),
            },
        ),
    }
}

/// What the workbook's totals are: point in time (`docs/dashboard-api.md`, counting rules).
fn totals_as_of(date: chrono::NaiveDate) -> String {
    format!(
        "as they stood at the end of {date} (UTC+7); accounts: the roster as it is now \
         (\"as of\" below: when the figures were read)"
    )
}

/// An officer's report as a file.
pub fn officer(r: &OfficerReport, format: Format) -> Result<Vec<u8>> {
    let rows = vec![officer_cells(&r.row)];
    match format {
        Format::Json => serde_json::to_vec(r).map_err(|e| ServerError::Internal(e.to_string())),
        Format::Csv => Ok(csv(&rows)),
        Format::Xlsx => workbook(
            &rows,
            Extras {
                info: vec![
                    ("officer", format!("{} ({})", r.officer.name, r.officer.id)),
                    ("unit", format!("{} {}", r.unit.code, r.unit.name)),
                    ("date", r.date.to_string()),
                    ("totals", totals_as_of(r.date)),
                    (
                        "campaign",
                        format!("{} ({})", r.campaign.name, r.campaign.id),
                    ),
                    ("as of", r.as_of.clone()),
                ],
                trend: &r.trend,
                blockers: &r.blockers,
                devices: &r.devices,
                below_quota: None,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field(&Cell::Text("a,b".into())), "\"a,b\"");
        assert_eq!(
            csv_field(&Cell::Text("say \"hi\"".into())),
            "\"say \"\"hi\"\"\""
        );
        assert_eq!(csv_field(&Cell::Text("=1+1".into())), "'=1+1");
        assert_eq!(csv_field(&Cell::Num(None)), "");
        assert_eq!(csv_field(&Cell::Num(Some(12.5))), "12.5");
    }
}
