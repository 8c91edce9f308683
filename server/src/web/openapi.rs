//! The contract, generated from the code: the JSON Schema of the wire types
//! ([`wire_schema`], from the core's `schemars` derives, `schema` feature) and the OpenAPI
//! document of every route ([`openapi`], from the `#[utoipa::path]` annotations on the
//! handlers). Both are served (`GET /v1/schema.json`, `GET /v1/openapi.json`, no token) and
//! committed as `docs/api/wire.schema.json` and `docs/api/openapi.json`; the tests below fail
//! when the committed files differ from what the code generates. After a deliberate change,
//! regenerate them with
//! `DOORSTEP_BLESS=1 cargo test -p doorstep-server --lib web::openapi`.
//!
//! One generator describes every body: schemars. utoipa writes the paths, parameters,
//! security and responses, and refers to the bodies by name (`#/components/schemas/<Type>`);
//! [`openapi`] then fills `components.schemas` with schemars' definitions of the same types,
//! so the OpenAPI document and the standalone JSON Schema cannot disagree. OpenAPI 3.1's
//! schemas are JSON Schema 2020-12, the dialect schemars writes.

use crate::model::{AuditEntry, DeviceInfo, IssuedCode};
use crate::web::sync::{EnrolCodeRequest, RevokeResponse};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_core::wire::{
    EnrolRefusal, EnrolRequest, EnrolResponse, ErrorBody, PullRequest, PullResponse,
    PushPullRequest, PushPullResponse, PushRequest, PushResponse, Rejected,
};
use doorstep_core::Op;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi;

/// Where the committed documents live, from the repository's root.
pub const OPENAPI_FILE: &str = "docs/api/openapi.json";
/// See [`OPENAPI_FILE`].
pub const SCHEMA_FILE: &str = "docs/api/wire.schema.json";

/// The definitions of every type a body of the sync API carries, keyed by type name, with
/// references into `definitions_path` (`/$defs` or `/components/schemas`).
fn definitions(definitions_path: &'static str) -> Map<String, Value> {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = definitions_path.into())
        .into_generator();
    g.subschema_for::<EnrolRequest>();
    g.subschema_for::<EnrolResponse>();
    g.subschema_for::<PushRequest>();
    g.subschema_for::<PushResponse>();
    g.subschema_for::<Rejected>();
    g.subschema_for::<PullRequest>();
    g.subschema_for::<PullResponse>();
    g.subschema_for::<PushPullRequest>();
    g.subschema_for::<PushPullResponse>();
    g.subschema_for::<ErrorBody>();
    g.subschema_for::<EnrolRefusal>();
    g.subschema_for::<Op>();
    g.subschema_for::<EnrolCodeRequest>();
    g.subschema_for::<IssuedCode>();
    g.subschema_for::<RevokeResponse>();
    g.subschema_for::<DeviceInfo>();
    g.subschema_for::<super::bundles::BundleUpload>();
    // The admin lists, named so that the OpenAPI document can refer to them.
    let devices = g.subschema_for::<Vec<DeviceInfo>>();
    let audit = g.subschema_for::<Vec<AuditEntry>>();
    let mut defs = g.take_definitions(true);
    defs.insert("DeviceList".into(), devices.to_value());
    defs.insert("AuditLog".into(), audit.to_value());
    defs
}

/// The JSON Schema (draft 2020-12) of the sync protocol's bodies: validate a body against
/// `#/$defs/<Type>` (`PushRequest`, `PullResponse`, `Op`…).
pub fn wire_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Doorstep sync protocol v2: the wire types",
        "description": "Generated from the Rust types (doorstep_core::wire, doorstep_core::Op and \
            the model types they carry) by server/src/web/openapi.rs; do not edit. A body of type \
            T is valid against {\"$ref\": \"#/$defs/T\"} with this document's $defs. Prose, \
            examples and the rules a schema cannot say (authority, scope, counters without \
            gaps): docs/sync-protocol.md.",
        "$defs": definitions("/$defs"),
    })
}

/// The OpenAPI document of every route, with the wire types' schemas as its components.
pub fn openapi() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert(
            "schemas".into(),
            Value::Object(definitions("/components/schemas")),
        );
    }
    doc
}

/// The committed form of a document: pretty JSON and a final newline.
pub fn pretty(doc: &Value) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default() + "\n"
}

fn cached(cell: &'static OnceLock<String>, make: fn() -> Value) -> Response {
    let body = cell.get_or_init(|| pretty(&make())).clone();
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The OpenAPI document of this server's routes (`docs/api/openapi.json`).
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "contract",
    responses((status = 200, description = "The OpenAPI 3.1 document, as committed in docs/api/openapi.json",
        content(("application/json"))))
)]
pub(super) async fn serve_openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    cached(&DOC, openapi)
}

/// The JSON Schema of the sync protocol's bodies (`docs/api/wire.schema.json`).
#[utoipa::path(
    get, path = "/v1/schema.json", tag = "contract",
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of the wire types, as committed in docs/api/wire.schema.json",
        content(("application/json"))))
)]
pub(super) async fn serve_schema() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    cached(&DOC, wire_schema)
}

/// Error answers shared by the routes: a JSON [`ErrorBody`] (`components.responses`).
macro_rules! error_responses {
    ($($name:ident $(+ $retry:ident)?: $desc:literal),* $(,)?) => {$(
        #[doc = $desc]
        pub struct $name;
        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                #[allow(unused_mut)]
                let mut r = ResponseBuilder::new().description($desc).content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                );
                $( let _ = stringify!($retry); r = r.header("Retry-After", Header::new(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer))); )?
                (stringify!($name), r.build().into())
            }
        }
    )*};
}

error_responses! {
    BadRequest: "`bad_request`: a malformed body, wrong types, an unknown field of a request message, a badly shaped operation, an unsupported Content-Type; or `unsupported_protocol` (`supported` lists the versions). `message` names the field and the accepted form, never the value.",
    Unauthorized: "`unauthorized`: no token, an unknown token, a revoked device; to `POST /v1/enrol`, a refused code, `reason` saying which refusal (`unknown`, `used`, `expired`).",
    Forbidden: "`forbidden`: the caller may not do this (a device token on an admin route; to `POST /v1/enrol`, a replica another device or the server holds; outside the caller's units).",
    NotFound: "`not_found`: no such device, officer, unit, job or route.",
    TooLarge: "`too_large`: a body over the server's limit (after decompression) or more operations than a push may carry.",
    Unavailable + retry: "`unavailable`: overloaded (429) or the database is down (503); `Retry-After` says when to retry.",
    Internal: "`internal`: a server bug; retry with backoff.",
}

/// A page's caller is not signed in (and the server is not in demo mode).
pub struct SignInFirst;
impl<'r> utoipa::ToResponse<'r> for SignInFirst {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let r =
            ResponseBuilder::new().description("Not signed in (and not demo mode): to `/signin`");
        ("SignInFirst", r.build().into())
    }
}

/// A page's error: a small HTML page saying what (outside the caller's units, a bad form).
pub struct ErrorPage;
impl<'r> utoipa::ToResponse<'r> for ErrorPage {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let r = ResponseBuilder::new()
            .description("Not a command user, outside the caller's units, a bad parameter or form: a small HTML error page")
            .content("text/html; charset=utf-8", Content::new(None::<RefOr<utoipa::openapi::Schema>>));
        ("ErrorPage", r.build().into())
    }
}

/// Sets of error answers routes share, by status (refs to the responses above).
macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $response:ident),* $(,)? })*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                [$(($status, Ref::from_response_name(stringify!($response)))),*]
                    .into_iter()
                    .map(|(s, r)| (s.to_owned(), RefOr::Ref(r)))
                    .collect()
            }
        }
    )*};
}

error_sets! {
    /// The errors of a sync route that reads a body.
    SyncErrors {
        "400" => BadRequest, "401" => Unauthorized, "403" => Forbidden, "413" => TooLarge,
        "415" => UnsupportedEncoding, "429" => Unavailable, "500" => Internal, "503" => Unavailable,
    }
    /// The errors of an admin route (an admin user's bearer token).
    AdminErrors {
        "401" => Unauthorized, "403" => Forbidden, "500" => Internal, "503" => Unavailable,
    }
    /// The answers of a command centre page besides the page itself.
    PageErrors { "303" => SignInFirst, "4XX" => ErrorPage }
    /// The errors of a command centre route answering JSON.
    CommandErrors {
        "400" => BadRequest, "401" => Unauthorized, "403" => Forbidden, "404" => NotFound,
        "500" => Internal, "503" => Unavailable,
    }
}

/// A `Content-Encoding` other than `gzip`/`zstd`, answered by the decompression layer.
pub struct UnsupportedEncoding;
impl<'r> utoipa::ToResponse<'r> for UnsupportedEncoding {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        (
            "UnsupportedEncoding",
            ResponseBuilder::new()
                .description(
                    "A request `Content-Encoding` other than `gzip` or `zstd`; empty body.",
                )
                .build()
                .into(),
        )
    }
}

/// The security schemes.
struct Security;
impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut b = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            b.description = Some(what.to_owned());
            SecurityScheme::Http(b)
        };
        components.add_security_scheme(
            "device_token",
            bearer("The token `POST /v1/enrol` answered (32 random bytes, base64url without padding): `Authorization: Bearer <token>`."),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("An admin user's token (`doorstep admin bootstrap` prints it once): `Authorization: Bearer <token>`. A device token is refused 403."),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "doorstep_session",
                "The command centre's session cookie, set by `POST /signin` (12 h). An admin's bearer token (admin_token) is accepted too.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Doorstep server",
        description = "The sync protocol (`/v1/…`, docs/sync-protocol.md) and the command centre \
            (`/api/v1/…`, pages, report files; docs/dashboard-api.md). Generated from the \
            handlers' annotations and the Rust types by server/src/web/openapi.rs; committed \
            as docs/api/openapi.json. Every sync body may be JSON (`application/json`) or \
            postcard (`application/x-doorstep-postcard`, the same types in declaration order), \
            optionally compressed (`Content-Encoding: gzip` or `zstd`); the answer uses the \
            request's format. Every error answer of a JSON route is an `ErrorBody`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        super::sync::enrol,
        super::sync::push,
        super::sync::pull,
        super::sync::push_pull,
        super::sync::issue_code,
        super::sync::list_devices,
        super::sync::revoke,
        super::sync::audit,
        super::stats::check,
        super::stats::rebuild,
        super::sync::health,
        super::sync::metrics,
        serve_openapi,
        serve_schema,
        super::signin::home,
        super::signin::signin_page,
        super::signin::signin,
        super::signin::signout,
        super::dashboard::unit,
        super::dashboard::officer,
        super::reports::api_unit,
        super::reports::api_officer,
        super::reports::file,
        super::admin::index,
        super::admin::quotas,
        super::admin::quotas_post,
        super::admin::assign,
        super::admin::assign_post,
        super::admin::devices,
        super::admin::devices_post,
        super::admin::roster,
        super::jobs::roster_upload,
        super::jobs::roster_job,
        super::bundles::page,
        super::bundles::upload,
    ),
    components(responses(
        BadRequest, Unauthorized, Forbidden, NotFound, TooLarge, Unavailable, Internal,
        UnsupportedEncoding, SignInFirst, ErrorPage
    )),
    modifiers(&Security),
    tags(
        (name = "sync", description = "The sync protocol: enrolment, push, pull (docs/sync-protocol.md)"),
        (name = "admin", description = "Admin routes of the sync API (an admin user's bearer token)"),
        (name = "ops", description = "Health and metrics"),
        (name = "contract", description = "This document and the wire types' JSON Schema"),
        (name = "command centre", description = "Sign-in, dashboard pages, report API and files, admin pages (docs/dashboard-api.md)"),
    ),
)]
struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel)
    }

    /// The committed document equals the generated one (or, under `DOORSTEP_BLESS`, is
    /// rewritten).
    fn check_committed(rel: &str, doc: &Value) {
        let text = pretty(doc);
        let path = repo_file(rel);
        if std::env::var_os("DOORSTEP_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{rel} differs from what the code generates; after a deliberate change run \
             DOORSTEP_BLESS=1 cargo test -p doorstep-server --lib web::openapi"
        );
    }

    #[test]
    fn committed_wire_schema_matches_the_types() {
        check_committed(SCHEMA_FILE, &wire_schema());
    }

    #[test]
    fn committed_openapi_matches_the_routes() {
        check_committed(OPENAPI_FILE, &openapi());
    }

    /// Every `$ref` of a document, with where it is.
    fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push((at.to_owned(), x.as_str().unwrap_or_default().to_owned()));
                    }
                    refs(x, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    refs(x, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        for doc in [openapi(), wire_schema()] {
            let mut found = Vec::new();
            refs(&doc, "", &mut found);
            assert!(found.len() > 20, "{} references", found.len());
            for (at, r) in found {
                let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{at}: {r}"));
                assert!(doc.pointer(pointer).is_some(), "{at}: {r} does not resolve");
            }
        }
    }

    /// Every route of the router (read from its source, `web/mod.rs`) is in the OpenAPI
    /// document with its methods, and the document has no other path.
    #[test]
    fn every_route_is_documented() {
        let doc = openapi();
        let paths = doc["paths"].as_object().unwrap();
        let src = std::fs::read_to_string(repo_file("server/src/web/mod.rs")).unwrap();
        let mut routes = 0;
        for call in src.split(".route(").skip(1) {
            // The call's text up to its closing parenthesis.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(call.len(), |(i, _)| i);
            let call = &call[..end];
            let path = call.split('"').nth(1).unwrap();
            let entry = paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
            for method in ["get", "post"] {
                let routed =
                    call.contains(&format!("{method}(")) || call.contains(&format!(".{method}("));
                assert_eq!(
                    entry.get(method).is_some(),
                    routed,
                    "{method} {path}: routed {routed}, documented {}",
                    !routed
                );
            }
            routes += 1;
        }
        assert!(routes >= 25, "{routes} routes read from the router");
        assert_eq!(
            paths.len(),
            routes,
            "documented paths that the router lacks"
        );
    }

    /// A validator for `#/$defs/<name>` of the wire schema.
    fn validator(name: &str) -> jsonschema::Validator {
        let mut schema = wire_schema();
        schema["$ref"] = json!(format!("#/$defs/{name}"));
        jsonschema::draft202012::new(&schema).unwrap()
    }

    fn assert_valid(name: &str, body: &Value) {
        let v = validator(name);
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} body invalid: {errors:?}\n{body:#}"
        );
    }

    fn ops_json() -> Vec<Value> {
        let text = std::fs::read_to_string(repo_file("docs/examples/ops.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_documented_examples_are_valid() {
        let ops = ops_json();
        assert_eq!(ops.len(), 7);
        for op in &ops {
            assert_valid("Op", op);
        }
        assert_valid(
            "PushRequest",
            &json!({"protocol": 2, "device_time_ms": 1688261400000_i64, "ops": ops}),
        );
    }
}
