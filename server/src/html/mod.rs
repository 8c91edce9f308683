//! Server-rendered pages of the command centre: small HTML, one inline stylesheet, no
//! scripts except the roster upload's progress bar, charts as inline SVG. Every value that
//! comes from the store goes through [`esc`]. Vietnamese by default, English on `?lang=en`.

pub mod admin;

use crate::backend::CommandUser;
use crate::stats::{
    lagging, local_time, ranking, DayCounts, OfficerReport, Report, Row, Snapshot, TrendPoint,
};
use axum::http::StatusCode;
use std::fmt::Write as _;

/// Page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Vietnamese (default).
    Vi,
    /// English.
    En,
}

impl Lang {
    /// `en` → English; anything else → Vietnamese.
    pub fn parse(s: &str) -> Lang {
        if s.trim().eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Vi
        }
    }

    /// `vi` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The text in this language.
    pub fn t(self, vi: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    /// A count with thousands separators (`.` in Vietnamese, `,` in English).
    pub fn n(self, x: u64) -> String {
        let sep = self.t(".", ",");
        let s = x.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    /// A percentage with one decimal.
    pub fn pct(self, x: Option<f64>) -> String {
        match x {
            None => "–".into(),
            Some(x) => {
                let s = format!("{x:.1}");
                match self {
                    Lang::Vi => format!("{} %", s.replace('.', ",")),
                    Lang::En => format!("{s} %"),
                }
            }
        }
    }

    fn level(self, level: &str) -> &'static str {
        match level {
            "province" => self.t("Tỉnh", "Province"),
            "district" => self.t("Huyện", "District"),
            "commune" => self.t("Xã", "Commune"),
            "village" => self.t("Thôn", "Village"),
            _ => "",
        }
    }

    fn reason(self, r: &str) -> &'static str {
        match r {
            "phone_not_own_name" => self.t("SIM không chính chủ", "Phone not in own name"),
            "otp_not_received" => self.t("Không nhận được OTP", "OTP not received"),
            "no_chip_id_card" => self.t("Chưa có CCCD gắn chip", "No chip ID card"),
            "bound_to_other_device" => {
                self.t("Tài khoản gắn thiết bị khác", "Bound to another device")
            }
            _ => self.t("Khác", "Other"),
        }
    }

    fn metric(self, m: &str) -> &'static str {
        match m {
            "activated" => self.t("Kích hoạt", "Activated"),
            "level1_activated" => self.t("Kích hoạt mức 1", "Level 1 activated"),
            "level2_received" => self.t("Tiếp nhận hồ sơ mức 2", "Level 2 received"),
            "level2_activated" => self.t("Kích hoạt mức 2", "Level 2 activated"),
            "portal_guided" => self.t("Hướng dẫn Cổng DVC", "Portal guided"),
            "visits" => self.t("Lượt đến nhà", "Visits"),
            "fixed" => self.t("Cố định", "Fixed"),
            "mobile" => self.t("Lưu động", "Mobile"),
            "meeting" => self.t("Họp dân", "Meeting"),
            "loudspeaker" => self.t("Loa phát thanh", "Loudspeaker"),
            "training" => self.t("Tập huấn", "Training"),
            _ => "",
        }
    }
}

/// HTML-escape text (content and attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a query value.
pub fn qv(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const CSS: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f3}\
header{background:#7a1010;color:#fff;padding:.5em .8em;display:flex;flex-wrap:wrap;gap:.6em;align-items:center}\
header a,header button{color:#fff}header .sp{flex:1}header form{display:inline;margin:0}\
header button{background:none;border:1px solid #fff;border-radius:3px;cursor:pointer}\
.demo{background:#ffd54a;color:#222;padding:.4em .8em;font-weight:bold}\
main{padding:.6em .8em;max-width:1100px;margin:auto}h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.05em;margin:1.2em 0 .3em}\
.crumbs{font-size:.9em}.asof{color:#555;font-size:.85em}\
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.5em}\
.kpi{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.4em .6em}.kpi b{display:block;font-size:1.3em}\
.tw{overflow-x:auto}table{border-collapse:collapse;background:#fff;width:100%;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.25em .4em;text-align:right}th{background:#eee}\
td.l,th.l{text-align:left}.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}\
svg{width:100%;height:auto;background:#fff;border:1px solid #ddd}\
form.f{background:#fff;border:1px solid #ddd;padding:.5em;display:flex;flex-wrap:wrap;gap:.4em;align-items:end}\
form.f label{display:flex;flex-direction:column;font-size:.85em}input,select,button{font-size:1em}\
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.8em}";

/// The page frame: header with user, language switch and sign-out; demo banner.
pub fn layout(
    lang: Lang,
    user: Option<&CommandUser>,
    demo: bool,
    title: &str,
    lang_href: &str,
    body: &str,
) -> String {
    let mut h = String::with_capacity(body.len() + 2048);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Doorstep</title><style>{CSS}</style></head><body>",
        lang.code(),
        esc(title)
    );
    h.push_str("<header><a href=\"/dash\"><b>Doorstep</b></a><span>");
    h.push_str(lang.t("Trung tâm chỉ huy", "Command centre"));
    h.push_str("</span><span class=\"sp\"></span>");
    let sep = if lang_href.contains('?') { '&' } else { '?' };
    let other = match lang {
        Lang::Vi => "en\" id=\"lang-en\">English",
        Lang::En => "vi\" id=\"lang-vi\">Tiếng Việt",
    };
    let _ = write!(h, "<a href=\"{}{sep}lang={other}</a>", esc(lang_href));
    if let Some(u) = user {
        if u.role == "admin" || u.role == "commune_lead" || u.role == "district" {
            let _ = write!(h, "<a href=\"/admin\">{}</a>", lang.t("Quản trị", "Admin"));
        }
        let _ = write!(h, "<span>{} ({})</span>", esc(&u.name), esc(&u.role));
        if !demo || u.user_id != uuid::Uuid::nil() {
            let _ = write!(
                h,
                "<form method=\"post\" action=\"/signout\"><button>{}</button></form>",
                lang.t("Đăng xuất", "Sign out")
            );
        }
    }
    h.push_str("</header>");
    if demo {
        let _ = write!(
            h,
            "<div class=\"demo\" id=\"demo-banner\">{}</div>",
            lang.t(
                "BẢN DEMO: dữ liệu mô phỏng, đã đăng nhập với quyền chỉ huy cấp tỉnh.",
                "DEMO: simulated data, signed in as province command."
            )
        );
    }
    h.push_str("<main>");
    h.push_str(body);
    h.push_str("</main></body></html>");
    h
}

/// The sign-in page.
pub fn signin_page(lang: Lang, failed: bool) -> String {
    let mut b = String::new();
    let _ = write!(b, "<h1>{}</h1>", lang.t("Đăng nhập", "Sign in"));
    if failed {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"signin-failed\">{}</p>",
            lang.t("Tên hoặc mật khẩu không đúng.", "Wrong name or password.")
        );
    }
    let _ = write!(
        b,
        "<form class=\"f\" method=\"post\" action=\"/signin\">\
         <label>{}<input name=\"name\" id=\"name\" autocomplete=\"username\" required></label>\
         <label>{}<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button id=\"signin\">{}</button></form>",
        lang.t("Tên đăng nhập", "Name"),
        lang.t("Mật khẩu", "Password"),
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

/// An error page.
pub fn error_page(
    lang: Lang,
    user: Option<&CommandUser>,
    demo: bool,
    status: StatusCode,
    msg: &str,
) -> String {
    let b = format!(
        "<h1>{} {}</h1><p id=\"error\">{}</p><p><a href=\"/dash\">{}</a></p>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("")),
        esc(msg),
        lang.t("Về trang chính", "Back to the dashboard")
    );
    layout(lang, user, demo, "Error", "/dash", &b)
}

/// The trend as an inline SVG line chart: cumulative activated (and level 2), with the
/// target as a dashed line.
pub fn trend_svg(lang: Lang, trend: &[TrendPoint], target: Option<i64>) -> String {
    let (w, h, pad) = (640.0f64, 180.0f64, 34.0f64);
    if trend.is_empty() {
        return String::new();
    }
    let max_y = trend
        .iter()
        .map(|p| p.activated)
        .max()
        .unwrap_or(0)
        .max(target.unwrap_or(0).max(0) as u64)
        .max(1) as f64;
    let n = trend.len().max(2) as f64 - 1.0;
    let x = |i: usize| pad + (w - pad - 8.0) * i as f64 / n;
    let y = |v: f64| h - 18.0 - (h - 30.0) * v / max_y;
    let line = |f: &dyn Fn(&TrendPoint) -> u64| {
        trend
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(f(p) as f64)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<svg id=\"trend\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        lang.t("Xu hướng kích hoạt", "Activation trend")
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/>",
        h - 18.0,
        w - 8.0
    );
    let _ = write!(
        s,
        "<text x=\"2\" y=\"14\" font-size=\"11\">{}</text><text x=\"2\" y=\"{}\" font-size=\"11\">0</text>",
        lang.n(max_y as u64),
        h - 18.0
    );
    if let Some(t) = target.filter(|t| *t > 0) {
        let ty = y(t as f64);
        let _ = write!(
            s,
            "<line x1=\"{pad}\" y1=\"{ty:.1}\" x2=\"{}\" y2=\"{ty:.1}\" stroke=\"#b00020\" stroke-dasharray=\"5 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#b00020\" text-anchor=\"end\">{} {}</text>",
            w - 8.0,
            w - 10.0,
            ty - 3.0,
            lang.t("Chỉ tiêu", "Target"),
            lang.n(t as u64)
        );
    }
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#7a1010\" stroke-width=\"2\" points=\"{}\"/>",
        line(&|p| p.activated)
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"{}\"/>",
        line(&|p| p.level2_activated)
    );
    let first = trend.first().map(|p| p.date.format("%d/%m").to_string());
    let last = trend.last().map(|p| p.date.format("%d/%m").to_string());
    let _ = write!(
        s,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        h - 4.0,
        first.unwrap_or_default(),
        w - 8.0,
        h - 4.0,
        last.unwrap_or_default()
    );
    s.push_str("</svg>");
    let _ = write!(
        s,
        "<div class=\"asof\"><span style=\"color:#7a1010\">━</span> {} · <span style=\"color:#1565c0\">━</span> {}</div>",
        lang.t("Đã kích hoạt (cộng dồn)", "Activated (cumulative)"),
        lang.t("Mức 2", "Level 2")
    );
    s
}

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

fn link_q(unit: &str, r: &Report) -> String {
    format!(
        "unit={}&amp;date={}&amp;campaign={}",
        qv(unit),
        r.date,
        r.campaign.id
    )
}

#[allow(clippy::too_many_arguments)]
fn kpis(
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

fn unit_rows_table(lang: Lang, r: &Report, rows: &[Row], id: &str) -> String {
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

fn blockers_table(lang: Lang, blockers: &std::collections::BTreeMap<String, u64>) -> String {
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

fn devices_table(lang: Lang, devices: &[crate::stats::DeviceRow]) -> String {
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

fn officers_table(lang: Lang, r: &Report) -> String {
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

/// A ranked entry: link, campaign activations, name, lagging metrics.
type RankItem = (String, u64, String, Vec<(String, u64, i64)>);

fn rank_lists(lang: Lang, r: &Report) -> String {
    // Children when there are any, else officers.
    let mut items: Vec<RankItem> = Vec::new();
    if !r.children.is_empty() {
        for row in ranking(&r.children, |x| (x.campaign_activated, x.name.as_str())) {
            items.push((
                format!("/dash?{}", link_q(&row.code, r)),
                row.campaign_activated,
                row.name.clone(),
                lagging(&row.today, &row.quota_today),
            ));
        }
    } else {
        for o in ranking(&r.officers, |x| (x.campaign_activated, x.name.as_str())) {
            items.push((
                format!("/dash/officer/{}?date={}", o.id, r.date),
                o.campaign_activated,
                o.name.clone(),
                lagging(&o.today, &o.quota_today),
            ));
        }
    }
    let mut b = String::from("<div class=\"two\"><div>");
    let _ = write!(
        b,
        "<h2>{}</h2><ol id=\"ranking\">",
        lang.t("Xếp hạng (khen thưởng)", "Ranking (rewards)")
    );
    for (href, n, name, _) in items.iter().take(10) {
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
    let mut any = false;
    for (href, _, name, lag) in &items {
        if lag.is_empty() {
            continue;
        }
        any = true;
        let what = lag
            .iter()
            .map(|(m, n, t)| {
                format!(
                    "{} {}/{}",
                    lang.metric(m),
                    lang.n(*n),
                    lang.n((*t).max(0) as u64)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            b,
            "<li><a href=\"{href}\">{}</a>: <span class=\"bad\">{what}</span></li>",
            esc(name)
        );
    }
    if !any {
        let _ = write!(b, "<li>{}</li>", lang.t("Không có.", "None."));
    }
    b.push_str("</ul></div></div>");
    b
}

fn date_form(
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

fn crumbs(snap: &Snapshot, user: &CommandUser, r: &Report, code: &str) -> String {
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

fn downloads(lang: Lang, q: &str) -> String {
    format!(
        "<h2>{}</h2><p id=\"downloads\">{}: <a id=\"dl-daily-xlsx\" href=\"/reports/daily.xlsx?{q}\">XLSX</a> · \
         <a id=\"dl-daily-csv\" href=\"/reports/daily.csv?{q}\">CSV</a> · <a href=\"/reports/daily.json?{q}\">JSON</a> — \
         {}: <a id=\"dl-final-xlsx\" href=\"/reports/final.xlsx?{q}\">XLSX</a> · <a href=\"/reports/final.csv?{q}\">CSV</a></p>",
        lang.t("Báo cáo", "Reports"),
        lang.t("Báo cáo ngày", "Daily report"),
        lang.t("Báo cáo kết thúc chiến dịch", "End-of-campaign report"),
    )
}

fn kind_table(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(qv("a b&c/đ"), "a%20b%26c%2F%C4%91");
    }

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(Lang::Vi.n(319284), "319.284");
        assert_eq!(Lang::En.n(319284), "319,284");
        assert_eq!(Lang::En.n(12), "12");
        assert_eq!(Lang::Vi.pct(Some(18.44)), "18,4 %");
        assert_eq!(Lang::En.pct(None), "–");
    }
}
