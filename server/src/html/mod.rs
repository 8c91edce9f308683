//! Server-rendered pages of the command centre: small HTML, one inline stylesheet, no
//! scripts except the roster upload's progress bar, charts as inline SVG. Every value that
//! comes from the store goes through [`esc`]. Vietnamese by default, English on `?lang=en`.
//!
//! This module renders only: functions from data (reports, the snapshot, the caller) to
//! markup, no requests, no storage. The handlers that call them are in [`crate::web`].
//! Here: the language, escaping, the page frame, the sign-in and error pages; the
//! dashboard pages in [`dashboard`] (their parts in `tables.rs`, the trend chart in
//! [`chart`]); the admin pages in [`admin`]. The files below use this one's helpers, never
//! the other way round.

pub mod admin;
pub mod chart;
pub mod dashboard;
mod tables;

use crate::backend::CommandUser;
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
/// The sign-in page; `failed` is the `failed` query parameter of a refused attempt.
pub fn signin_page(lang: Lang, failed: Option<&str>, wait_secs: Option<u64>) -> String {
    let mut b = String::new();
    let _ = write!(b, "<h1>{}</h1>", lang.t("Đăng nhập", "Sign in"));
    if let Some(secs) = wait_secs {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"signin-wait\">{} {secs} {}</p>",
            lang.t(
                "Sai quá nhiều lần. Hãy thử lại sau",
                "Too many failed attempts. Try again in"
            ),
            lang.t("giây.", "seconds.")
        );
    } else if failed == Some("totp_required") {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"signin-totp-required\">{}</p>",
            lang.t(
                "Tài khoản cấp huyện, cấp tỉnh phải dùng mã xác thực hai lớp (TOTP). Hãy nhờ \
                 quản trị viên chạy <code>doorstep user totp enable --name TÊN</code> và thêm \
                 mã vào ứng dụng xác thực trên điện thoại.",
                "District and province accounts must use a second factor (TOTP). Ask the \
                 admin to run <code>doorstep user totp enable --name NAME</code> and add it \
                 to an authenticator app on your phone."
            )
        );
    } else if failed.is_some() {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"signin-failed\">{}</p>",
            lang.t(
                "Tên, mật khẩu hoặc mã xác thực không đúng.",
                "Wrong name, password or code."
            )
        );
    }
    let _ = write!(
        b,
        "<form class=\"f\" method=\"post\" action=\"/signin\">\
         <label>{}<input name=\"name\" id=\"name\" autocomplete=\"username\" required></label>\
         <label>{}<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <label>{}<input name=\"code\" id=\"code\" inputmode=\"numeric\" pattern=\"[0-9 ]*\" maxlength=\"7\" autocomplete=\"one-time-code\"></label>\
         <button id=\"signin\">{}</button></form>",
        lang.t("Tên đăng nhập", "Name"),
        lang.t("Mật khẩu", "Password"),
        lang.t(
            "Mã xác thực (6 chữ số, nếu tài khoản có)",
            "Code (6 digits, if your account has one)"
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
