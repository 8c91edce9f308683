//! The trend chart: an inline SVG, no script.

use super::Lang;
use crate::stats::TrendPoint;
use std::fmt::Write as _;

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
