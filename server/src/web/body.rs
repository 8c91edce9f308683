//! Decoding a protocol message (JSON or postcard), with errors that name the field and the
//! accepted form but never the value (issue #12: no personal data in error text).
//!
//! serde's own messages echo what they could not read (``unknown variant `0912345678` ``,
//! `invalid type: string "Nguyễn Văn An", expected u64`, a UUID's offending character). The
//! answer here is rebuilt from the message's standard form instead: the path to the field
//! ([`serde_path_to_error`]), what went wrong, and the expected form — the part of serde's
//! text that comes from our types, after the value. Anything else says only "invalid value".

use crate::error::ServerError;
use doorstep_core::wire::PROTOCOL_VERSION;
use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};

/// Decode a JSON message, checking its `protocol` first so that a peer speaking another
/// version gets `unsupported_protocol` rather than a parse error.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        // Syntax messages are fixed words and a position; nothing else can fail here.
        match e.classify() {
            Category::Syntax | Category::Eof => bad(format!("not JSON ({e})")),
            Category::Io | Category::Data => bad("not JSON".into()),
        }
    })?;
    if let Some(p) = value.get("protocol").and_then(serde_json::Value::as_u64) {
        if p != u64::from(PROTOCOL_VERSION) {
            return Err(ServerError::UnsupportedProtocol(p));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let reason = reason(&e.inner().to_string());
        bad(describe(e.path(), reason))
    })
}

/// Decode a postcard message, checking its `protocol` (the first field of every request, a
/// varint) first.
pub fn postcard<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    if let Ok((p, _)) = postcard::take_from_bytes::<u32>(bytes) {
        if p != PROTOCOL_VERSION {
            return Err(ServerError::UnsupportedProtocol(u64::from(p)));
        }
    }
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // postcard's errors are fixed words (a custom error drops its message); postcard
        // carries no names, so the path is of positions (a struct's fields in their order).
        let reason = Reason {
            what: "invalid postcard",
            expected: None,
        };
        bad(format!("{} ({})", describe(e.path(), reason), e.inner()))
    })?;
    match de.finalize() {
        Ok([]) => Ok(value),
        _ => Err(bad("trailing bytes after the message".into())),
    }
}

/// Decode a query string; an error names the parameter and, where it can, the accepted form,
/// never the value, in an [`ErrorBody`](doorstep_core::wire::ErrorBody) like a body's (axum's
/// own `Query` answers a plain-text 400).
pub fn query<T: DeserializeOwned>(query: &str) -> Result<T, ServerError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let mut reason = reason(&message);
        // A number's parse error (`invalid digit found in string`) names no form.
        if reason.expected.is_none()
            && ["invalid digit", "number too", "cannot parse integer"]
                .iter()
                .any(|p| message.starts_with(p))
        {
            reason.expected = Some("a whole number within the parameter's range".into());
        }
        ServerError::BadRequest(format!("query: {}", describe(e.path(), reason)))
    })
}

/// The query string of a route answering JSON, decoded by [`query`].
pub struct JsonQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for JsonQuery<T> {
    type Rejection = ServerError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ServerError> {
        query(parts.uri.query().unwrap_or_default()).map(JsonQuery)
    }
}

fn bad(message: String) -> ServerError {
    ServerError::BadRequest(format!("body: {message}"))
}

/// What went wrong, and the accepted form when serde named it.
#[derive(Debug, PartialEq)]
struct Reason {
    what: &'static str,
    expected: Option<String>,
}

/// Classify serde's message. Its standard forms put the value first and the expected form
/// (from our types) last, after `, expected `: the last such separator is the real one.
fn reason(message: &str) -> Reason {
    let expected = || {
        message
            .rfind(", expected ")
            .map(|i| message[i + ", expected ".len()..].to_owned())
    };
    let named = |prefix: &str| {
        // `missing field `x``, `duplicate field `x``: the name is one of the type's own.
        message.strip_prefix(prefix).filter(|rest| {
            let name = rest.trim_matches('`');
            rest.len() == name.len() + 2 && identifier(name)
        })
    };
    let forms: [(&str, &'static str); 5] = [
        ("invalid type: ", "wrong type"),
        ("invalid value: ", "invalid value"),
        ("invalid length ", "wrong length"),
        ("unknown variant ", "unknown variant"),
        ("unknown field ", "unknown field"),
    ];
    if let Some((_, what)) = forms.iter().find(|(p, _)| message.starts_with(p)) {
        return Reason {
            what,
            expected: expected(),
        };
    }
    if let Some(name) = named("missing field ") {
        return Reason {
            what: "missing field",
            expected: Some(name.to_owned()),
        };
    }
    if named("duplicate field ").is_some() {
        return Reason {
            what: "duplicate field",
            expected: None,
        };
    }
    Reason {
        what: "invalid value",
        expected: message
            .starts_with("UUID parsing failed")
            .then(|| "a UUID (32 hex digits, with or without hyphens)".to_owned()),
    }
}

/// "invalid value at ops[3].body.Visit.outcome: expected one of `Met`, …".
fn describe(path: &Path, reason: Reason) -> String {
    // The key that failed as an unknown field is the caller's text: leave it out.
    let unknown_key = reason.what == "unknown field";
    let segments: Vec<&Segment> = path.iter().collect();
    let keep = segments.len() - usize::from(unknown_key && !segments.is_empty());
    let mut at = String::new();
    for segment in &segments[..keep] {
        match segment {
            Segment::Seq { index } => at.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(if identifier(key) { key } else { "?" });
            }
            Segment::Unknown => at.push_str(".?"),
        }
    }
    let mut out = reason.what.to_owned();
    if !at.is_empty() {
        out.push_str(" at ");
        out.push_str(&at);
    }
    if let Some(expected) = reason.expected {
        out.push_str(match reason.what {
            "missing field" => ": ",
            _ => ": expected ",
        });
        out.push_str(&expected);
    }
    out
}

/// A name our types could have written: ASCII letters, digits, `_`, starting with a letter.
fn identifier(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::wire::PushRequest;

    fn message(body: &str) -> String {
        match json::<PushRequest>(body.as_bytes()) {
            Err(ServerError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    const OP: &str =
        r#"{"replica": "01890a5d-ac96-774b-bcce-b302099a8057", "counter": 1, "hlc": 1"#;

    #[test]
    fn messages_name_the_field_and_drop_the_value() {
        let m = message(&format!(
            r#"{{"protocol": 2, "device_time_ms": 0, "ops": [{OP}, "body": {{"Visit": {{"id": "01890a5d-ac96-774b-bcce-b302099a8057", "household_id": "01890a5d-ac96-774b-bcce-b302099a8057", "officer_id": "01890a5d-ac96-774b-bcce-b302099a8057", "at_ms": 1, "outcome": "0912345678", "revisit_at_ms": null, "note": null, "location": null}}}}}}]}}"#
        ));
        assert!(
            m.starts_with(
                "body: unknown variant at ops[0].body.Visit.outcome: expected one of `Met`"
            ),
            "{m}"
        );
        assert!(!m.contains("0912345678"), "{m}");
        let m = message(r#"{"protocol": 2, "device_time_ms": "Nguyễn Văn An", "ops": []}"#);
        assert_eq!(m, "body: wrong type at device_time_ms: expected i64");
        let m = message(&format!(
            r#"{{"protocol": 2, "device_time_ms": 0, "ops": [{OP}, "body": {{"Retract": {{"fact_id": "079201001234", "reason": null}}}}}}]}}"#
        ));
        assert!(
            m.starts_with("body: invalid value at ops[0].body.Retract.fact_id: expected a UUID"),
            "{m}"
        );
        let m = message(r#"{"protocol": 2, "device_time_ms": 0, "ops": [], "Nguyen": 1}"#);
        assert!(
            m.starts_with("body: unknown field: expected one of `protocol`"),
            "{m}"
        );
        assert!(!m.contains("Nguyen"), "{m}");
        let m = message(r#"{"protocol": 2, "ops": []}"#);
        assert_eq!(m, "body: missing field: `device_time_ms`");
        let m = message(r#"{"protocol": 2, "ops": [}"#);
        assert!(
            m.starts_with("body: not JSON (expected value at line 1"),
            "{m}"
        );
    }

    #[test]
    fn a_crafted_value_cannot_pose_as_the_expected_form() {
        let m = message(&format!(
            r#"{{"protocol": 2, "device_time_ms": 0, "ops": [{OP}, "body": {{"0912345678`, expected `079201001234": {{}}}}}}]}}"#
        ));
        assert!(
            !m.contains("0912345678") && !m.contains("079201001234"),
            "{m}"
        );
        assert!(m.contains("expected one of `Set`"), "{m}");
    }

    #[test]
    fn query_errors_name_the_parameter_not_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
            campaign: String,
        }
        let err = |q: &str| match query::<Q>(q) {
            Err(ServerError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err("campaign=x&limit=0912345678901"),
            "query: invalid value at limit: expected a whole number within the parameter's range"
        );
        assert_eq!(
            err("campaign=x&limit=abc"),
            "query: invalid value at limit: expected a whole number within the parameter's range"
        );
        assert_eq!(err("limit=1"), "query: missing field: `campaign`");
        assert_eq!(err("campaign=x&campaign=y"), "query: duplicate field");
        assert!(query::<Q>("campaign=x&limit=5").is_ok());
    }
}
