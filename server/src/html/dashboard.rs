//! The dashboard pages: a unit's and an officer's, from their reports.

use super::chart::trend_svg;
use super::tables::{
    blockers_table, crumbs, date_form, devices_table, downloads, kind_table, kpis, link_q,
    officers_table, rank_lists, unit_rows_table,
};
use super::{esc, layout, qv, Lang};
use crate::backend::CommandUser;
use crate::stats::{local_time, DayCounts, OfficerReport, Report, Row, Snapshot};
use std::fmt::Write as _;

/// The page of a unit.
pub fn unit_page(
    lang: Lang,
    user: &CommandUser,
    demo: bool,
    snap: &Snapshot,
    r: &Report,
) -> String {
    let t = &r.totals;
    let mut b = String::with_capacity(16 * 1024);
    b.push_str(&crumbs(snap, user, r, &r.unit.code));
    let _ = write!(
        b,
        "<h1 id=\"unit-title\">{} <small>({})</small></h1><p class=\"asof\">{} · {} {} → {} · <span id=\"as-of\">{} {}</span></p>",
        esc(&r.unit.name),
        lang.level(&r.unit.level),
        esc(&r.campaign.name),
        lang.t("từ", "from"),
        r.campaign.start.format("%d/%m/%Y"),
        r.campaign.end.format("%d/%m/%Y"),
        lang.t("số liệu lúc", "as of"),
        local_time(snap.built_at_ms),
    );
    b.push_str(&date_form(
        lang,
        "/dash",
        Some(&r.unit.code),
        r.date,
        r.campaign.id,
    ));
    b.push_str(&kpis(
        lang,
        t.accounts,
        t.level1_activated,
        t.level2_activated,
        t.activated,
        t.percent_of_target,
        t.target,
        &t.today,
        &t.quota_today,
    ));
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t("Xu hướng trong chiến dịch", "Trend over the campaign")
    );
    b.push_str(&trend_svg(lang, &r.trend, t.target));
    if !r.children.is_empty() {
        let _ = write!(b, "<h2>{}</h2>", lang.t("Đơn vị trực thuộc", "Units below"));
        b.push_str(&unit_rows_table(lang, r, &r.children, "children"));
    }
    b.push_str(&rank_lists(lang, r));
    let _ = write!(b, "<h2>{}</h2>", lang.t("Cán bộ", "Officers"));
    // Officers are listed from the commune down (or when few): a province has hundreds, and
    // pages must stay small on a 2G link; the JSON API lists them all.
    if matches!(r.unit.level.as_str(), "commune" | "village") || r.officers.len() <= 30 {
        b.push_str(&officers_table(lang, r));
    } else {
        let _ = write!(
            b,
            "<p id=\"officers\">{} {} — {}</p>",
            lang.n(r.officers.len() as u64),
            lang.t("cán bộ", "officers"),
            lang.t("xem từng xã", "see each commune")
        );
    }
    b.push_str("<div class=\"two\"><div>");
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t("Vướng mắc theo nguyên nhân", "Blockers by reason")
    );
    b.push_str(&blockers_table(lang, &r.blockers));
    b.push_str("</div><div>");
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t(
            "Cơ quan, đơn vị (mức 2, 100 %)",
            "Agencies (level 2, 100 %)"
        )
    );
    if r.agencies.is_empty() {
        let _ = write!(
            b,
            "<p id=\"agencies\">{}</p>",
            lang.t("Chưa có dữ liệu cơ quan.", "No agency data.")
        );
    } else {
        let _ = write!(
            b,
            "<div class=\"tw\"><table id=\"agencies\"><tr><th class=\"l\">{}</th><th>{}</th><th>{}</th><th>%</th><th>{}</th></tr>",
            lang.t("Cơ quan", "Agency"),
            lang.t("Cán bộ", "Staff"),
            lang.t("Mức 2", "Level 2"),
            lang.t("Cổng DVC", "Portal"),
        );
        for a in &r.agencies {
            let cls = if a.level2_activated < a.accounts {
                "bad"
            } else {
                "ok"
            };
            let _ = write!(
                b,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td><td>{}</td></tr>",
                esc(&a.agency),
                lang.n(a.accounts),
                lang.n(a.level2_activated),
                lang.pct(Some(a.percent_level2)),
                lang.n(a.portal)
            );
        }
        b.push_str("</table></div>");
    }
    b.push_str("</div></div>");
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t("Điểm tiếp nhận hồ sơ mức 2", "Level-2 receiving sessions")
    );
    if !r.sessions.available {
        let _ = write!(
            b,
            "<p id=\"sessions\">{}</p>",
            lang.t("Chưa có dữ liệu.", "No data yet.")
        );
    } else {
        b.push_str(&kind_table(
            lang,
            "sessions",
            lang.t("hồ sơ", "applications"),
            &r.sessions.by_kind,
            &r.sessions.per_commune,
            snap,
        ));
        if !r.sessions.today.is_empty() {
            let _ = write!(
                b,
                "<div class=\"tw\"><table id=\"sessions-today\"><tr><th class=\"l\">{}</th><th class=\"l\">{}</th><th class=\"l\">{}</th><th>{}</th></tr>",
                lang.t("Loại", "Kind"),
                lang.t("Địa điểm", "Place"),
                lang.t("Giờ", "When"),
                lang.t("Hồ sơ", "Applications")
            );
            for s in &r.sessions.today {
                let _ = write!(
                    b,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}–{}</td><td>{}</td></tr>",
                    lang.metric(&s.kind),
                    esc(&s.place),
                    esc(&s.starts),
                    esc(&s.ends),
                    lang.n(s.applications)
                );
            }
            b.push_str("</table></div>");
        }
    }
    let _ = write!(b, "<h2>{}</h2>", lang.t("Tuyên truyền", "Outreach"));
    if !r.outreach.available {
        let _ = write!(
            b,
            "<p id=\"outreach\">{}</p>",
            lang.t("Chưa có dữ liệu.", "No data yet.")
        );
    } else {
        b.push_str(&kind_table(
            lang,
            "outreach",
            lang.t("người", "people"),
            &r.outreach.by_kind,
            &r.outreach.per_commune,
            snap,
        ));
    }
    let _ = write!(b, "<h2>{}</h2>", lang.t("Thiết bị", "Devices"));
    b.push_str(&devices_table(lang, &r.devices));
    b.push_str(&downloads(lang, &link_q(&r.unit.code, r)));
    let here = format!(
        "/dash?unit={}&date={}&campaign={}",
        qv(&r.unit.code),
        r.date,
        r.campaign.id
    );
    layout(lang, Some(user), demo, &r.unit.name, &here, &b)
}

/// The page of an officer.
pub fn officer_page(
    lang: Lang,
    user: &CommandUser,
    demo: bool,
    snap: &Snapshot,
    r: &OfficerReport,
) -> String {
    let o = &r.row;
    let mut b = String::with_capacity(8 * 1024);
    let fake = Report {
        unit: r.unit.clone(),
        date: r.date,
        campaign: r.campaign.clone(),
        as_of: r.as_of.clone(),
        totals: snap
            .row(&r.unit.code, &r.campaign, r.date)
            .unwrap_or_else(|_| empty_row()),
        children: Vec::new(),
        officers: Vec::new(),
        trend: Vec::new(),
        blockers: Default::default(),
        devices: Vec::new(),
        agencies: Vec::new(),
        sessions: Default::default(),
        outreach: Default::default(),
        below_quota: Vec::new(),
    };
    if snap.unit(&r.unit.code).is_some() {
        b.push_str(&crumbs(snap, user, &fake, &r.unit.code));
    }
    let _ = write!(
        b,
        "<h1 id=\"officer-title\">{}: {}</h1><p class=\"asof\">{} · <span id=\"as-of\">{} {}</span></p>",
        lang.t("Cán bộ", "Officer"),
        esc(&r.officer.name),
        esc(&r.unit.name),
        lang.t("số liệu lúc", "as of"),
        local_time(snap.built_at_ms),
    );
    b.push_str(&date_form(
        lang,
        &format!("/dash/officer/{}", r.officer.id),
        None,
        r.date,
        r.campaign.id,
    ));
    b.push_str(&kpis(
        lang,
        o.accounts,
        o.level1_activated,
        o.level2_activated,
        o.activated,
        o.percent_of_target,
        o.target,
        &o.today,
        &o.quota_today,
    ));
    let _ = write!(
        b,
        "<table id=\"officer-today\"><tr><th class=\"l\">{}</th><th>{}</th></tr>",
        lang.t("Hôm nay", "Today"),
        lang.t("Số lượng", "Count")
    );
    for m in [
        "activated",
        "level1_activated",
        "level2_received",
        "level2_activated",
        "portal_guided",
        "visits",
    ] {
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
            lang.metric(m),
            lang.n(o.today.metric(m).unwrap_or(0))
        );
    }
    b.push_str("</table>");
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t(
            "Xu hướng (do cán bộ thực hiện)",
            "Trend (credited to the officer)"
        )
    );
    b.push_str(&trend_svg(lang, &r.trend, o.target));
    let _ = write!(
        b,
        "<h2>{}</h2>",
        lang.t("Vướng mắc theo nguyên nhân", "Blockers by reason")
    );
    b.push_str(&blockers_table(lang, &r.blockers));
    let _ = write!(b, "<h2>{}</h2>", lang.t("Thiết bị", "Devices"));
    b.push_str(&devices_table(lang, &r.devices));
    let q = format!(
        "officer={}&amp;date={}&amp;campaign={}",
        r.officer.id, r.date, r.campaign.id
    );
    b.push_str(&downloads(lang, &q));
    let here = format!(
        "/dash/officer/{}?date={}&campaign={}",
        r.officer.id, r.date, r.campaign.id
    );
    layout(lang, Some(user), demo, &r.officer.name, &here, &b)
}

fn empty_row() -> Row {
    Row {
        code: String::new(),
        name: String::new(),
        level: String::new(),
        accounts: 0,
        level1_activated: 0,
        level2_activated: 0,
        activated: 0,
        level2_received: 0,
        portal: 0,
        target: None,
        percent_of_target: None,
        today: DayCounts::default(),
        quota_today: None,
        campaign_activated: 0,
    }
}
