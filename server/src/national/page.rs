//! The national roll-up's pages: the country's figures with one row per province (each linked
//! to its own server's report page), and the sign-in. Rendered with the command centre's frame
//! and helpers ([`crate::html`]); every value from a province goes through [`esc`].

use super::{Fetched, National, ProvinceRow};
use crate::html::{esc, layout, qv, Lang};
use axum::response::Html;
use serde_json::Value;
use std::fmt::Write as _;

/// A page answer.
pub fn html(body: String) -> Html<String> {
    Html(body)
}

/// How old, in words: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn age(lang: Lang, secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let (ud, uh, um, us) = match lang {
        Lang::Vi => ("ngày", "giờ", "phút", "giây"),
        Lang::En => ("d", "h", "min", "s"),
    };
    if d > 0 {
        format!("{d} {ud} {h} {uh}")
    } else if h > 0 {
        format!("{h} {uh} {m} {um}")
    } else if m > 0 {
        format!("{m} {um}")
    } else {
        format!("{s} {us}")
    }
}

fn count(lang: Lang, v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_u64)
        .map_or("–".into(), |n| lang.n(n))
}

fn today_count(lang: Lang, v: &Value, key: &str) -> String {
    v.get("today").map_or("–".into(), |t| count(lang, t, key))
}

fn pct(lang: Lang, v: &Value) -> String {
    lang.pct(v.get("percent_of_target").and_then(Value::as_f64))
}

/// The figure cells of a row (accounts, activated, level 1, level 2, received, portal, target,
/// percent, today's activations).
fn cells(lang: Lang, t: &Value) -> String {
    let mut c = String::new();
    for k in [
        "accounts",
        "activated",
        "level1_activated",
        "level2_activated",
        "level2_received",
        "portal",
        "target",
    ] {
        let _ = write!(c, "<td>{}</td>", count(lang, t, k));
    }
    let _ = write!(
        c,
        "<td>{}</td><td>{}</td>",
        pct(lang, t),
        today_count(lang, t, "activated")
    );
    c
}

fn as_of(f: &Fetched) -> String {
    esc(f.as_of.as_deref().unwrap_or("–"))
}

fn province_row(lang: Lang, r: &ProvinceRow) -> String {
    let mut h = format!(
        "<tr id=\"prov-{}\"><td class=\"l\"><a href=\"{}\">{}</a> <small>{}</small></td>",
        esc(&r.code),
        esc(&r.report_url),
        esc(&r.name),
        esc(&r.code)
    );
    match (&r.fetched, &r.last_good) {
        (Some(f), _) => {
            let _ = write!(
                h,
                "<td class=\"l ok\">{}</td>{}<td class=\"l\">{}</td><td>{}</td><td>{} ms</td>",
                lang.t("đã trả lời", "answered"),
                cells(lang, &f.totals),
                as_of(f),
                r.age_seconds.map_or("–".into(), |s| age(lang, s)),
                r.fetch_ms
            );
        }
        (None, Some(s)) => {
            let _ = write!(
                h,
                "<td class=\"l bad\">{}: {}<br><span class=\"stale\">{} {} ({} {})</span></td>{}\
                 <td class=\"l\">{}</td><td class=\"bad\">{}</td><td>{} ms</td>",
                lang.t("không trả lời", "did not answer"),
                esc(r.error.as_deref().unwrap_or("")),
                lang.t("Số cũ, lấy lúc", "Stale figures, fetched"),
                esc(&s.fetched.fetched_at),
                age(lang, s.fetched_age_seconds),
                lang.t("trước", "ago"),
                cells(lang, &s.fetched.totals),
                as_of(&s.fetched),
                s.age_seconds.map_or("–".into(), |x| age(lang, x)),
                r.fetch_ms
            );
        }
        (None, None) => {
            let _ = write!(
                h,
                "<td class=\"l bad\">{}: {}</td><td colspan=\"9\">{}</td><td>–</td><td>–</td>\
                 <td>{} ms</td>",
                lang.t("không trả lời", "did not answer"),
                esc(r.error.as_deref().unwrap_or("")),
                lang.t(
                    "chưa có số liệu nào của ngày này",
                    "no figures of this date yet"
                ),
                r.fetch_ms
            );
        }
    }
    h.push_str("</tr>");
    h
}

/// The country's page for one date.
pub fn national(lang: Lang, n: &National) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{} · {}</h1>\
         <form class=\"f\" method=\"get\" action=\"/national\"><label>{}\
         <input type=\"date\" name=\"date\" value=\"{}\"></label><button>{}</button></form>",
        lang.t("Toàn quốc", "Country"),
        esc(&n.date),
        lang.t("Ngày", "Date"),
        esc(&n.date),
        lang.t("Xem", "Show")
    );
    let all = n.answered == n.provinces_total;
    let mut summary = format!(
        "{} {} {} {}",
        n.answered,
        lang.t("trên", "of"),
        n.provinces_total,
        lang.t("tỉnh đã trả lời", "provinces answered")
    );
    for r in n.provinces.iter().filter(|r| !r.answered) {
        let _ = write!(
            summary,
            "; {} {}: {}",
            esc(&r.name),
            lang.t("không trả lời", "did not"),
            esc(r.error.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(
        b,
        "<p id=\"summary\" class=\"{}\">{summary}</p>\
         <p class=\"asof\">{} {}. {}</p>",
        if all { "ok" } else { "bad" },
        lang.t(
            "Số liệu tính đến hết ngày (giờ Việt Nam); tổng chỉ gồm các tỉnh đã trả lời. Lấy lúc",
            "Figures as of the end of the day (Vietnam time); the totals include only the \
             provinces that answered. Fetched"
        ),
        esc(&n.generated_at),
        lang.t(
            "Số cũ của tỉnh không trả lời chỉ để tham khảo.",
            "A silent province's stale figures are shown for reference only."
        )
    );
    let t = &n.totals;
    b.push_str("<div class=\"kpis\">");
    for (label, value) in [
        (lang.t("Tài khoản", "Accounts"), count(lang, t, "accounts")),
        (
            lang.t("Đã kích hoạt", "Activated"),
            count(lang, t, "activated"),
        ),
        (
            lang.t("Mức 1", "Level 1"),
            count(lang, t, "level1_activated"),
        ),
        (
            lang.t("Mức 2", "Level 2"),
            count(lang, t, "level2_activated"),
        ),
        (
            lang.t("Hồ sơ mức 2 đã nhận", "Level-2 received"),
            count(lang, t, "level2_received"),
        ),
        (lang.t("Cổng DVC", "Portal"), count(lang, t, "portal")),
        (lang.t("Chỉ tiêu", "Target"), count(lang, t, "target")),
        (lang.t("% chỉ tiêu", "% of target"), pct(lang, t)),
        (
            lang.t("Kích hoạt trong ngày", "Activated that day"),
            today_count(lang, t, "activated"),
        ),
    ] {
        let _ = write!(b, "<div class=\"kpi\">{label}<b>{value}</b></div>");
    }
    b.push_str("</div>");
    let _ = write!(
        b,
        "<h2>{}</h2><div class=\"tw\"><table id=\"provinces\"><tr><th class=\"l\">{}</th>\
         <th class=\"l\">{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>%</th><th>{}</th><th class=\"l\">{}</th><th>{}</th>\
         <th>{}</th></tr>",
        lang.t("Các tỉnh", "Provinces"),
        lang.t("Tỉnh", "Province"),
        lang.t("Trạng thái", "Status"),
        lang.t("Tài khoản", "Accounts"),
        lang.t("Kích hoạt", "Activated"),
        lang.t("Mức 1", "Level 1"),
        lang.t("Mức 2", "Level 2"),
        lang.t("Đã nhận", "Received"),
        lang.t("Cổng DVC", "Portal"),
        lang.t("Chỉ tiêu", "Target"),
        lang.t("Trong ngày", "That day"),
        lang.t("Số liệu lúc", "As of"),
        lang.t("Độ cũ", "Age"),
        lang.t("Thời gian lấy", "Fetch time")
    );
    for r in &n.provinces {
        b.push_str(&province_row(lang, r));
    }
    b.push_str("</table></div>");
    if !n.blockers.is_empty() {
        let _ = write!(
            b,
            "<h2>{}</h2><div class=\"tw\"><table id=\"blockers\">",
            lang.t("Vướng mắc", "Blockers")
        );
        for (reason, c) in &n.blockers {
            let _ = write!(
                b,
                "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
                esc(reason),
                lang.n((*c).max(0) as u64)
            );
        }
        b.push_str("</table></div>");
    }
    let _ = write!(
        b,
        "<p><form method=\"post\" action=\"/signout\"><button>{}</button></form></p>",
        lang.t("Đăng xuất", "Sign out")
    );
    let href = format!("/national?date={}", qv(&n.date));
    layout(lang, None, false, lang.t("Toàn quốc", "Country"), &href, &b)
}

/// The roll-up's sign-in: its token, typed once.
pub fn signin(lang: Lang, failed: bool) -> String {
    let mut b = format!("<h1>{}</h1>", lang.t("Đăng nhập", "Sign in"));
    if failed {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"signin-failed\">{}</p>",
            lang.t("Mã truy cập không đúng.", "Wrong access token.")
        );
    }
    let _ = write!(
        b,
        "<form class=\"f\" method=\"post\" action=\"/signin\"><label>{}\
         <input name=\"token\" id=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required></label><button id=\"signin\">{}</button></form>",
        lang.t(
            "Mã truy cập của trang toàn quốc",
            "The national roll-up's access token"
        ),
        lang.t("Đăng nhập", "Sign in")
    );
    layout(
        lang,
        None,
        false,
        lang.t("Đăng nhập", "Sign in"),
        "/signin",
        &b,
    )
}
