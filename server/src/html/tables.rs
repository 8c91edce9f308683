//! The dashboard pages' parts: key figures, the tables of units, officers, blockers and
//! devices, the rankings, the breadcrumbs, the day form and the download links.

use super::{esc, qv, Lang};
use crate::backend::CommandUser;
use crate::stats::{ranking, DayCounts, Report, Row, Snapshot};
use std::fmt::Write as _;

fn quota_cell(
    lang: Lang,
    today: &DayCounts,
    quota: &Option<std::collections::BTreeMap<String, i64>>,
) -> String {
    let Some(q) = quota else { return "–".into() };
    q.iter()
        .map(|(m, t)| {
            let n = today.metric(m).unwrap_or(0);
            let cls = if (n as i64) < *t { "bad" } else { "ok" };
            format!(
                "<span class=\"{cls}\">{}: {}/{}</span>",
                lang.metric(m),
                lang.n(n),
                lang.n((*t).max(0) as u64)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

pub(super) fn link_q(unit: &str, r: &Report) -> String {
    format!(
        "unit={}&amp;date={}&amp;campaign={}",
        qv(unit),
        r.date,
        r.campaign.id
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn kpis(
    lang: Lang,
    accounts: u64,
    l1: u64,
    l2: u64,
    activated: u64,
    pct: Option<f64>,
    target: Option<i64>,
    today: &DayCounts,
    quota: &Option<std::collections::BTreeMap<String, i64>>,
) -> String {
    let mut b = String::from("<div class=\"kpis\">");
    let mut k = |label: &str, value: String, id: &str| {
        let _ = write!(
            b,
            "<div class=\"kpi\" id=\"kpi-{id}\">{label}<b>{value}</b></div>"
        );
    };
    k(
        lang.t("Tài khoản trong phạm vi", "Accounts in scope"),
        lang.n(accounts),
        "accounts",
    );
    k(
        lang.t("Đã kích hoạt", "Activated"),
        lang.n(activated),
        "activated",
    );
    k(lang.t("Mức 1", "Level 1"), lang.n(l1), "level1");
    k(lang.t("Mức 2", "Level 2"), lang.n(l2), "level2");
    k(
        lang.t("% chỉ tiêu", "% of target"),
        format!(
            "{}{}",
            lang.pct(pct),
            target
                .map(|t| format!(" <small>/ {}</small>", lang.n(t.max(0) as u64)))
                .unwrap_or_default()
        ),
        "percent",
    );
    k(
        lang.t("Hôm nay: kích hoạt", "Today: activated"),
        lang.n(today.activated),
        "today",
    );
    b.push_str("</div>");
    if quota.is_some() {
        let _ = write!(
            b,
            "<p id=\"quota-today\">{}: {}</p>",
            lang.t(
                "Hôm nay so với chỉ tiêu ngày",
                "Today against the day's quota"
            ),
            quota_cell(lang, today, quota)
        );
    }
    b
}

pub(super) fn unit_rows_table(lang: Lang, r: &Report, rows: &[Row], id: &str) -> String {
    let mut b = format!(
        "<div class=\"tw\"><table id=\"{id}\"><tr><th class=\"l\">{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        lang.t("Đơn vị", "Unit"),
        lang.t("Tài khoản", "Accounts"),
        lang.t("Mức 1", "Level 1"),
        lang.t("Mức 2", "Level 2"),
        lang.t("Kích hoạt", "Activated"),
        lang.t("% chỉ tiêu", "% of target"),
        lang.t("Hôm nay", "Today"),
        lang.t("Chỉ tiêu ngày", "Day quota"),
        lang.t("Trong chiến dịch", "In the campaign"),
    );
    for row in rows {
        let _ = write!(
            b,
            "<tr><td class=\"l\"><a href=\"/dash?{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            link_q(&row.code, r),
            esc(&row.name),
            lang.n(row.accounts),
            lang.n(row.level1_activated),
            lang.n(row.level2_activated),
            lang.n(row.activated),
            lang.pct(row.percent_of_target),
            lang.n(row.today.activated),
            quota_cell(lang, &row.today, &row.quota_today),
            lang.n(row.campaign_activated),
        );
    }
    b.push_str("</table></div>");
    b
}

pub(super) fn blockers_table(
    lang: Lang,
    blockers: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut v: Vec<(&String, &u64)> = blockers.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut b = format!(
        "<table id=\"blockers\"><tr><th class=\"l\">{}</th><th>{}</th></tr>",
        lang.t("Vướng mắc", "Blocker"),
        lang.t("Lượt", "Attempts")
    );
    for (k, n) in v {
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
            lang.reason(k),
            lang.n(*n)
        );
    }
    b.push_str("</table>");
    b
}

pub(super) fn devices_table(lang: Lang, devices: &[crate::stats::DeviceRow]) -> String {
    if devices.is_empty() {
        return format!("<p>{}</p>", lang.t("Chưa có thiết bị.", "No devices."));
    }
    let mut b = format!(
        "<div class=\"tw\"><table id=\"devices\"><tr><th class=\"l\">{}</th><th class=\"l\">{}</th><th class=\"l\">{}</th><th class=\"l\">{}</th></tr>",
        lang.t("Thiết bị", "Device"),
        lang.t("Cán bộ", "Officer"),
        lang.t("Đồng bộ lần cuối", "Last sync"),
        lang.t("Tình trạng", "State"),
    );
    for d in devices {
        let state = if d.revoked {
            format!("<span>{}</span>", lang.t("Đã thu hồi", "Revoked"))
        } else if d.stale {
            format!(
                "<span class=\"bad\">{}</span>",
                lang.t("Quá 48 giờ chưa đồng bộ", "Stale: no sync for 48 h")
            )
        } else {
            format!("<span class=\"ok\">{}</span>", lang.t("Bình thường", "OK"))
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{state}</td></tr>",
            esc(&d.name),
            esc(&d.officer_name),
            d.last_sync
                .as_deref()
                .map(|s| esc(&s.replace('T', " ").replace("+07:00", "")))
                .unwrap_or_else(|| lang.t("chưa bao giờ", "never").into()),
        );
    }
    b.push_str("</table></div>");
    b
}

pub(super) fn officers_table(lang: Lang, r: &Report) -> String {
    if r.officers.is_empty() {
        return format!("<p>{}</p>", lang.t("Chưa có cán bộ.", "No officers."));
    }
    let mut b = format!(
        "<div class=\"tw\"><table id=\"officers\"><tr><th class=\"l\">{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        lang.t("Cán bộ", "Officer"),
        lang.t("Tài khoản được giao", "Assigned accounts"),
        lang.t("Kích hoạt", "Activated"),
        lang.t("% chỉ tiêu", "% of target"),
        lang.t("Hôm nay", "Today"),
        lang.t("Chỉ tiêu ngày", "Day quota"),
        lang.t("Trong chiến dịch", "In the campaign"),
    );
    for o in &r.officers {
        let _ = write!(
            b,
            "<tr><td class=\"l\"><a href=\"/dash/officer/{}?date={}&amp;campaign={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.id,
            r.date,
            r.campaign.id,
            esc(&o.name),
            lang.n(o.accounts),
            lang.n(o.activated),
            lang.pct(o.percent_of_target),
            lang.n(o.today.activated),
            quota_cell(lang, &o.today, &o.quota_today),
            lang.n(o.campaign_activated),
        );
    }
    b.push_str("</table></div>");
    b
}

/// A ranked entry: link, campaign activations, name.
type RankItem = (String, u64, String);

pub(super) fn rank_lists(lang: Lang, r: &Report) -> String {
    // Ranking: children when there are any, else officers.
    let mut items: Vec<RankItem> = Vec::new();
    if !r.children.is_empty() {
        for row in ranking(&r.children, |x| (x.campaign_activated, x.name.as_str())) {
            items.push((
                format!("/dash?{}", link_q(&row.code, r)),
                row.campaign_activated,
                row.name.clone(),
            ));
        }
    } else {
        for o in ranking(&r.officers, |x| (x.campaign_activated, x.name.as_str())) {
            items.push((
                format!("/dash/officer/{}?date={}", o.id, r.date),
                o.campaign_activated,
                o.name.clone(),
            ));
        }
    }
    let mut b = String::from("<div class=\"two\"><div>");
    let _ = write!(
        b,
        "<h2>{}</h2><ol id=\"ranking\">",
        lang.t("Xếp hạng (khen thưởng)", "Ranking (rewards)")
    );
    for (href, n, name) in items.iter().take(10) {
        let _ = write!(
            b,
            "<li><a href=\"{href}\">{}</a>: {}</li>",
            esc(name),
            lang.n(*n)
        );
    }
    let _ = write!(
        b,
        "</ol></div><div><h2>{}</h2><ul id=\"laggards\">",
        lang.t(
            "Chưa đạt chỉ tiêu ngày (trách nhiệm)",
            "Below the day's quota (accountability)"
        )
    );
    // Child units and officers alike, worst shortfall first (`Report::below_quota`).
    for s in &r.below_quota {
        let href = if s.kind == "officer" {
            format!("/dash/officer/{}?date={}", s.id, r.date)
        } else {
            format!("/dash?{}", link_q(&s.id, r))
        };
        let what = s
            .lags
            .iter()
            .map(|l| {
                format!(
                    "{} {}/{}",
                    lang.metric(&l.metric),
                    lang.n(l.done),
                    lang.n(l.quota.max(0) as u64)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ =
            write!(
            b,
            "<li class=\"{}\"><a href=\"{href}\">{}</a>: <span class=\"bad\">{what}</span></li>",
            if s.kind == "officer" { "officer" } else { "unit" },
            esc(&s.name)
        );
    }
    if r.below_quota.is_empty() {
        let _ = write!(b, "<li>{}</li>", lang.t("Không có.", "None."));
    }
    b.push_str("</ul></div></div>");
    b
}

pub(super) fn date_form(
    lang: Lang,
    action: &str,
    unit: Option<&str>,
    r_date: chrono::NaiveDate,
    campaign: uuid::Uuid,
) -> String {
    format!(
        "<form class=\"f\" method=\"get\" action=\"{}\">{}<input type=\"hidden\" name=\"campaign\" value=\"{campaign}\">\
         <label>{}<input type=\"date\" name=\"date\" value=\"{r_date}\"></label><button>{}</button></form>",
        esc(action),
        unit.map(|u| format!("<input type=\"hidden\" name=\"unit\" value=\"{}\">", esc(u)))
            .unwrap_or_default(),
        lang.t("Ngày", "Day"),
        lang.t("Xem", "Show")
    )
}

pub(super) fn crumbs(snap: &Snapshot, user: &CommandUser, r: &Report, code: &str) -> String {
    let mut chain = Vec::new();
    let mut c = Some(code.to_owned());
    for _ in 0..8 {
        let Some(x) = c else { break };
        let inside = user
            .unit_code
            .as_deref()
            .is_none_or(|u| snap.is_under(&x, u));
        if !inside {
            break;
        }
        chain.push(x.clone());
        c = snap.parent(&x);
    }
    chain.reverse();
    let parts: Vec<String> = chain
        .iter()
        .filter_map(|c| snap.unit(c))
        .map(|u| {
            format!(
                "<a href=\"/dash?{}\">{}</a>",
                link_q(&u.code, r),
                esc(&u.name)
            )
        })
        .collect();
    format!(
        "<nav class=\"crumbs\" id=\"crumbs\">{}</nav>",
        parts.join(" › ")
    )
}

pub(super) fn downloads(lang: Lang, q: &str) -> String {
    format!(
        "<h2>{}</h2><p id=\"downloads\">{}: <a id=\"dl-daily-xlsx\" href=\"/reports/daily.xlsx?{q}\">XLSX</a> · \
         <a id=\"dl-daily-csv\" href=\"/reports/daily.csv?{q}\">CSV</a> · <a href=\"/reports/daily.json?{q}\">JSON</a> — \
         {}: <a id=\"dl-final-xlsx\" href=\"/reports/final.xlsx?{q}\">XLSX</a> · <a href=\"/reports/final.csv?{q}\">CSV</a></p>",
        lang.t("Báo cáo", "Reports"),
        lang.t("Báo cáo ngày", "Daily report"),
        lang.t("Báo cáo kết thúc chiến dịch", "End-of-campaign report"),
    )
}

pub(super) fn kind_table(
    lang: Lang,
    id: &str,
    title_total: &str,
    by_kind: &std::collections::BTreeMap<String, crate::stats::KindCount>,
    per: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, crate::stats::KindCount>,
    >,
    snap: &Snapshot,
) -> String {
    let kinds: Vec<&String> = by_kind.keys().collect();
    let mut b = format!(
        "<div class=\"tw\"><table id=\"{id}\"><tr><th class=\"l\">{}</th>",
        lang.t("Xã", "Commune")
    );
    for k in &kinds {
        let _ = write!(b, "<th>{}</th>", lang.metric(k));
    }
    b.push_str("</tr>");
    let mut total_row = format!("<tr><th class=\"l\">{}</th>", lang.t("Tổng", "Total"));
    for k in &kinds {
        let c = by_kind[*k];
        let _ = write!(
            total_row,
            "<th>{} ({} {})</th>",
            lang.n(c.count),
            lang.n(c.total),
            esc(title_total)
        );
    }
    for (commune, m) in per {
        let name = snap
            .unit(commune)
            .map(|u| u.name)
            .unwrap_or_else(|| commune.clone());
        let _ = write!(b, "<tr><td class=\"l\">{}</td>", esc(&name));
        for k in &kinds {
            let c = m.get(*k).copied().unwrap_or_default();
            let _ = write!(b, "<td>{} ({})</td>", lang.n(c.count), lang.n(c.total));
        }
        b.push_str("</tr>");
    }
    b.push_str(&total_row);
    b.push_str("</tr></table></div>");
    b
}
