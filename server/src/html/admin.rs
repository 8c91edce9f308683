//! The admin pages' markup: quotas, assignments (assign, unassign, move), devices (enrol
//! codes, revoke), roster import with a progress bar and the rejected rows, and the menu
//! with the latest audit entries. The handlers are in `crate::web::admin`.

use super::{esc, layout, Lang};
use crate::backend::{AuditEntry, CommandUser};
use crate::stats::{DeviceRow, Snapshot};
use doorstep_core::QuotaMetric;
use std::fmt::Write as _;

fn done_note(lang: Lang, done: Option<&str>) -> String {
    match done {
        Some(d) if !d.is_empty() => format!(
            "<p class=\"ok\" id=\"done\">{}: {}</p>",
            lang.t("Đã lưu", "Saved"),
            esc(d)
        ),
        _ => String::new(),
    }
}

fn officer_select(snap: &Snapshot, user: &CommandUser, name: &str) -> String {
    let mut s = format!("<select name=\"{name}\" id=\"{name}\">");
    for o in snap.officers_in(user.unit_code.as_deref()) {
        let _ = write!(
            s,
            "<option value=\"{}\">{} ({})</option>",
            o.id,
            esc(&o.name),
            esc(&o.unit_code)
        );
    }
    s.push_str("</select>");
    s
}

fn campaign_select(snap: &Snapshot) -> String {
    let mut s = String::from("<select name=\"campaign\" id=\"campaign\">");
    for c in snap.campaigns().iter().rev() {
        let _ = write!(
            s,
            "<option value=\"{}\">{} ({} – {})</option>",
            c.id,
            esc(&c.name),
            c.start,
            c.end
        );
    }
    s.push_str("</select>");
    s
}

/// `/admin`: the menu and the latest audit entries.
pub fn index(lang: Lang, user: &CommandUser, demo: bool, entries: &[AuditEntry]) -> String {
    let mut b = format!(
        "<h1>{}</h1><ul><li><a href=\"/admin/quotas\">{}</a></li><li><a href=\"/admin/assign\">{}</a></li>\
         <li><a href=\"/admin/devices\">{}</a></li><li><a href=\"/admin/roster\">{}</a></li><li><a href=\"/admin/bundles\">{}</a></li></ul><h2>{}</h2>",
        lang.t("Quản trị", "Admin"),
        lang.t("Giao chỉ tiêu", "Quotas"),
        lang.t("Phân công địa bàn", "Assignments"),
        lang.t("Thiết bị", "Devices"),
        lang.t("Nhập danh sách", "Roster import"),
        lang.t("Nhận gói dữ liệu", "Bundle import"),
        lang.t("Nhật ký thao tác", "Audit log"),
    );
    b.push_str("<div class=\"tw\"><table id=\"audit\"><tr><th class=\"l\">at</th><th class=\"l\">actor</th><th class=\"l\">action</th><th class=\"l\">target</th><th class=\"l\">detail</th></tr>");
    for e in entries {
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&crate::stats::local_rfc3339(e.at_ms)),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.target),
            esc(&e.detail)
        );
    }
    b.push_str("</table></div>");
    layout(lang, Some(user), demo, "Admin", "/admin", &b)
}

/// `/admin/quotas`: set a quota (`done`: the id of the quota just saved).
pub fn quotas(
    lang: Lang,
    user: &CommandUser,
    demo: bool,
    snap: &Snapshot,
    done: Option<&str>,
) -> String {
    let mut metrics = String::new();
    for m in QuotaMetric::ALL {
        let _ = write!(metrics, "<option>{}</option>", m.as_str());
    }
    let b = format!(
        "<h1>{}</h1>{}<form class=\"f\" method=\"post\" action=\"/admin/quotas\">\
         <label>{}{}</label>\
         <label>{}<select name=\"subject_kind\" id=\"subject_kind\"><option value=\"unit\">{}</option><option value=\"officer\">{}</option></select></label>\
         <label>{}<input name=\"unit\" id=\"unit\" placeholder=\"22852\"></label>\
         <label>{}{}</label>\
         <label>{}<input name=\"period\" id=\"period\" placeholder=\"campaign | YYYY-MM-DD\" value=\"campaign\"></label>\
         <label>{}<select name=\"metric\" id=\"metric\">{metrics}</select></label>\
         <label>{}<input name=\"target\" id=\"target\" type=\"number\" min=\"0\" required></label>\
         <button id=\"save\">{}</button></form>",
        lang.t("Giao chỉ tiêu", "Set a quota"),
        done_note(lang, done),
        lang.t("Chiến dịch", "Campaign"),
        campaign_select(snap),
        lang.t("Giao cho", "For"),
        lang.t("Đơn vị", "Unit"),
        lang.t("Cán bộ", "Officer"),
        lang.t("Mã đơn vị", "Unit code"),
        lang.t("Cán bộ", "Officer"),
        officer_select(snap, user, "officer"),
        lang.t("Kỳ (campaign hoặc ngày)", "Period (campaign or a day)"),
        lang.t("Chỉ số", "Metric"),
        lang.t("Chỉ tiêu", "Target"),
        lang.t("Lưu", "Save"),
    );
    layout(lang, Some(user), demo, "Quotas", "/admin/quotas", &b)
}

/// `/admin/assign`: assign, unassign or move a village or a household (`done`: the id of
/// the change just saved).
pub fn assign(
    lang: Lang,
    user: &CommandUser,
    demo: bool,
    snap: &Snapshot,
    done: Option<&str>,
) -> String {
    let b = format!(
        "<h1>{}</h1>{}<form class=\"f\" method=\"post\" action=\"/admin/assign\">\
         <label>{}<select name=\"action\" id=\"action\"><option value=\"assign\">{}</option><option value=\"unassign\">{}</option><option value=\"move\">{}</option></select></label>\
         <label>{}{}</label><label>{}{}</label>\
         <label>{}<select name=\"kind\" id=\"kind\"><option value=\"village\">{}</option><option value=\"household\">{}</option></select></label>\
         <label>{}<input name=\"target\" id=\"target\" required></label>\
         <button id=\"save\">{}</button></form><p class=\"asof\">{}</p>",
        lang.t("Phân công địa bàn", "Assign areas"),
        done_note(lang, done),
        lang.t("Thao tác", "Action"),
        lang.t("Giao", "Assign"),
        lang.t("Thu hồi", "Unassign"),
        lang.t("Chuyển", "Move"),
        lang.t("Cán bộ", "Officer"),
        officer_select(snap, user, "officer"),
        lang.t("Từ cán bộ (khi chuyển)", "From officer (move)"),
        officer_select(snap, user, "from"),
        lang.t("Loại", "Kind"),
        lang.t("Thôn/khu phố", "Village"),
        lang.t("Hộ", "Household"),
        lang.t("Mã thôn hoặc mã hộ (UUID)", "Village code or household id"),
        lang.t("Lưu", "Save"),
        lang.t(
            "Chuyển = thu hồi của cán bộ cũ rồi giao cho cán bộ mới.",
            "Move = unassign from the old officer, then assign to the new one."
        ),
    );
    layout(lang, Some(user), demo, "Assign", "/admin/assign", &b)
}

/// `/admin/devices`: issue an enrolment code, revoke a device (`code`: the code just issued,
/// shown once; `pin`: the pin of the key the server serves over TLS, handed out with it so the
/// phone can pin the server, e.g. in the QR code the station prints).
pub fn devices(
    lang: Lang,
    user: &CommandUser,
    demo: bool,
    snap: &Snapshot,
    rows: &[DeviceRow],
    code: Option<&str>,
    pin: Option<&str>,
) -> String {
    let mut b = format!(
        "<h1>{}</h1>{}<h2>{}</h2><form class=\"f\" method=\"post\" action=\"/admin/devices\">\
         <input type=\"hidden\" name=\"action\" value=\"enrol\"><label>{}{}</label><button id=\"enrol\">{}</button></form>",
        lang.t("Thiết bị", "Devices"),
        match code {
            Some(code) if !code.is_empty() => format!(
                "<p class=\"ok\" id=\"done\">{} <b id=\"code\">{}</b> {}</p>{}",
                lang.t("Mã đăng ký (chỉ hiện một lần):", "Enrolment code (shown once):"),
                esc(code),
                lang.t("hiệu lực 24 giờ.", "valid for 24 hours."),
                match pin {
                    Some(pin) => format!(
                        "<p id=\"pin\">{} <code>{}</code></p>",
                        lang.t(
                            "Mã ghim máy chủ (đưa kèm mã đăng ký, để điện thoại chỉ tin máy chủ này):",
                            "Server pin (hand it out with the code, so the phone trusts this server only):"
                        ),
                        esc(pin)
                    ),
                    None => String::new(),
                }
            ),
            _ => String::new(),
        },
        lang.t("Cấp mã đăng ký thiết bị", "Issue an enrolment code"),
        lang.t("Cán bộ", "Officer"),
        officer_select(snap, user, "officer"),
        lang.t("Cấp mã", "Issue"),
    );
    b.push_str("<div class=\"tw\"><table id=\"devices\"><tr><th class=\"l\">id</th><th class=\"l\">name</th><th class=\"l\">officer</th><th class=\"l\">last sync</th><th></th></tr>");
    for d in rows {
        let action = if d.revoked {
            lang.t("đã thu hồi", "revoked").to_owned()
        } else {
            format!(
                "<form method=\"post\" action=\"/admin/devices\"><input type=\"hidden\" name=\"action\" value=\"revoke\">\
                 <input type=\"hidden\" name=\"device\" value=\"{}\"><button>{}</button></form>",
                d.id,
                lang.t("Thu hồi", "Revoke")
            )
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l{}\">{}</td><td>{action}</td></tr>",
            d.id,
            esc(&d.name),
            esc(&d.officer_name),
            if d.stale { " bad" } else { "" },
            esc(d.last_sync.as_deref().unwrap_or("–")),
        );
    }
    b.push_str("</table></div>");
    layout(lang, Some(user), demo, "Devices", "/admin/devices", &b)
}

/// `/admin/roster`: upload form with a progress bar (a few lines of script: send the file,
/// poll the job).
pub fn roster(lang: Lang, user: &CommandUser, demo: bool, snap: &Snapshot) -> String {
    let b = format!(
        "<h1>{}</h1><form class=\"f\" id=\"rf\"><label>{}{}</label><label>{}<input type=\"file\" id=\"file\" accept=\".csv,text/csv\" required></label>\
         <button id=\"upload\">{}</button></form><p><progress id=\"bar\" max=\"100\" value=\"0\"></progress> <span id=\"pct\"></span></p><div id=\"out\"></div>\
         <script>document.getElementById('rf').onsubmit=async function(e){{e.preventDefault();\
         var f=document.getElementById('file').files[0];if(!f)return;var c=document.getElementById('campaign').value;\
         var r=await fetch('/admin/roster?campaign='+encodeURIComponent(c),{{method:'POST',body:f,headers:{{'content-type':'text/csv'}}}});\
         var j=await r.json();if(!r.ok){{document.getElementById('out').textContent=j.message;return;}}\
         var t=setInterval(async function(){{var s=await (await fetch('/admin/roster/jobs/'+j.job)).json();\
         var p=s.total_bytes?Math.floor(s.bytes_read*100/s.total_bytes):0;document.getElementById('bar').value=p;\
         document.getElementById('pct').textContent=p+'% ('+s.rows_read+')';\
         if(s.done){{clearInterval(t);var o=document.getElementById('out');o.textContent='';var pre=document.createElement('pre');\
         pre.textContent=s.error?s.error:(s.report.rows+' rows, '+s.report.accepted+' accepted, '+s.report.rejected.length+' rejected\\n'+\
         s.report.rejected.map(function(x){{return 'line '+x[0]+': '+x[1];}}).join('\\n'));o.appendChild(pre);}}}},500);}};</script>",
        lang.t("Nhập danh sách cư dân", "Import a roster"),
        lang.t("Chiến dịch", "Campaign"),
        campaign_select(snap),
        lang.t("Tệp CSV", "CSV file"),
        lang.t("Tải lên", "Upload"),
    );
    layout(lang, Some(user), demo, "Roster", "/admin/roster", &b)
}

/// `/admin/bundles`: a bundle file (work carried from phones without coverage on a USB stick,
/// an SD card or a chat attachment) sent as it is, and what the server made of it.
pub fn bundles(lang: Lang, user: &CommandUser, demo: bool) -> String {
    let b = format!(
        "<h1>{}</h1><p>{}</p><form class=\"f\" id=\"bf\"><label>{}<input type=\"file\" id=\"file\" required></label>\
         <button id=\"upload\">{}</button></form><div id=\"out\"></div>\
         <script>document.getElementById('bf').onsubmit=async function(e){{e.preventDefault();\
         var f=document.getElementById('file').files[0];if(!f)return;var o=document.getElementById('out');o.textContent='…';\
         var r=await fetch('/admin/bundles',{{method:'POST',body:f,headers:{{'content-type':'application/octet-stream'}}}});\
         var j=await r.json();var pre=document.createElement('pre');o.textContent='';\
         pre.textContent=r.ok?('{}: '+j.sender+'\\n{}: '+j.runs+'\\n{}: '+j.applied+'\\n{}: '+j.duplicates+'\\n{}: '+\
         (j.rejected.length?j.rejected.map(function(x){{return x[0]+' '+x[1];}}).join(', '):'0')):j.message;o.appendChild(pre);}};</script>",
        lang.t("Nhận gói dữ liệu", "Bundle import"),
        lang.t(
            "Gói dữ liệu do điện thoại xuất (USB, thẻ nhớ, tệp đính kèm) cho máy chủ này. Mỗi thao tác được kiểm tra chữ ký và thẩm quyền của người tạo; nhận lại một gói đã nhận không ghi gì thêm.",
            "A bundle a phone exported for this server (USB stick, SD card, attachment). Each operation is checked against its author's signature and authority; a bundle imported again adds nothing.",
        ),
        lang.t("Tệp gói", "Bundle file"),
        lang.t("Tải lên", "Upload"),
        lang.t("Thiết bị gửi", "Sent by device"),
        lang.t("Đoạn đã ký", "Signed runs"),
        lang.t("Thao tác mới", "New operations"),
        lang.t("Đã có", "Already held"),
        lang.t("Bị từ chối", "Refused"),
    );
    layout(lang, Some(user), demo, "Bundles", "/admin/bundles", &b)
}
