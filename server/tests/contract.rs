//! The contract against a real server over HTTP: the served OpenAPI document and JSON Schema
//! equal the committed `docs/api/` files, every JSON body of a real enrolment, push and pull
//! is valid against the generated schema, and wrong bodies are not — and the server refuses
//! them too. (The committed files' drift test is `web::openapi`'s.)

use chrono::NaiveDate;
use doorstep_core::wire::*;
use doorstep_core::*;
use serde_json::{json, Value};
use uuid::Uuid;

mod common;
use common::http::{now_ms, server, Server};
use common::on_both_backends;

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Validates bodies against `#/$defs/<type>` of the committed wire schema.
struct Schema(Value);

impl Schema {
    fn committed() -> Schema {
        Schema(serde_json::from_str(&repo_file("docs/api/wire.schema.json")).unwrap())
    }

    fn errors(&self, name: &str, body: &Value) -> Vec<String> {
        let mut schema = self.0.clone();
        schema["$ref"] = json!(format!("#/$defs/{name}"));
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        v.iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }

    fn check(&self, name: &str, body: &Value) {
        let errors = self.errors(name, body);
        assert!(errors.is_empty(), "{name} invalid: {errors:?}\n{body:#}");
    }
}

/// JSON requests whose bodies the schema checks.
trait JsonClient {
    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value);
    fn exchange(
        &self,
        schema: &Schema,
        path: &str,
        token: Option<&str>,
        request: (&str, Value),
        answer_type: &str,
    ) -> Value;
    fn enrol_checked(&self, schema: &Schema, officer: Uuid, replica: ReplicaId) -> EnrolResponse;
    fn pull_checked(&self, schema: &Schema, token: &str) -> Vec<Op>;
}

impl JsonClient for Server {
    /// POST a JSON body; the status and the answer's JSON.
    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// A request and its answer, both checked against the schema; the answer must be 200.
    fn exchange(
        &self,
        schema: &Schema,
        path: &str,
        token: Option<&str>,
        (req_type, body): (&str, Value),
        answer_type: &str,
    ) -> Value {
        schema.check(req_type, &body);
        let (status, answer) = self.post(path, token, &body);
        assert_eq!(status, 200, "{path}: {answer}");
        schema.check(answer_type, &answer);
        answer
    }

    fn enrol_checked(&self, schema: &Schema, officer: Uuid, replica: ReplicaId) -> EnrolResponse {
        let code = self.code(officer);
        let body = serde_json::to_value(EnrolRequest {
            protocol: PROTOCOL_VERSION,
            code,
            device_name: "Galaxy A03".into(),
            replica: replica.0,
            device_time_ms: now_ms(),
            public_key: None,
        })
        .unwrap();
        let answer = self.exchange(
            schema,
            "/v1/enrol",
            None,
            ("EnrolRequest", body),
            "EnrolResponse",
        );
        serde_json::from_value(answer).unwrap()
    }

    /// Pull every page as JSON, each body checked; the operations.
    fn pull_checked(&self, schema: &Schema, token: &str) -> Vec<Op> {
        let mut cursor: Option<String> = None;
        let mut ops = Vec::new();
        loop {
            let body = serde_json::to_value(PullRequest {
                protocol: PROTOCOL_VERSION,
                device_time_ms: now_ms(),
                cursor: cursor.clone(),
                limit: 7,
                own: u64::MAX,
                relaying: Vec::new(),
            })
            .unwrap();
            let answer = self.exchange(
                schema,
                "/v1/sync/pull",
                Some(token),
                ("PullRequest", body),
                "PullResponse",
            );
            let page: PullResponse = serde_json::from_value(answer).unwrap();
            ops.extend(page.ops);
            cursor = Some(page.cursor);
            if !page.has_more {
                return ops;
            }
        }
    }
}

/// Units, a campaign, two field officers of one village, a household with a resident, as a
/// commune station's store makes them, imported into the server. Returns how many operations,
/// the officers and the household.
fn world(srv: &Server) -> (usize, Uuid, Uuid, Uuid) {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    let units = "code,parent_code,level,kind,name\n58,,province,tỉnh,Ninh Thuận\n\
                 586,58,district,huyện,Ninh Hải\n22813,586,commune,xã,Xã A\n\
                 22813-01,22813,village,thôn,Thôn 1\n";
    s.import_units_csv(units.as_bytes()).unwrap();
    s.put_campaign(CampaignInput {
        id: Uuid::now_v7(),
        name: "Cao điểm".into(),
        start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
        target: 1000,
        unit_code: "58".into(),
    })
    .unwrap();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    for id in [a, b] {
        s.put_officer(OfficerInput {
            id,
            name: "Cán bộ".into(),
            role: Role::Field,
            unit_code: "22813".into(),
        })
        .unwrap();
        s.assign(id, AssignTarget::Village("22813-01".into()))
            .unwrap();
    }
    let household = Uuid::now_v7();
    s.put_household(HouseholdInput {
        id: household,
        code: "H001".into(),
        village_code: "22813-01".into(),
        address: None,
        head_id: None,
    })
    .unwrap();
    s.put_resident(ResidentInput {
        id: Uuid::now_v7(),
        household_id: household,
        full_name: "Nguyễn Văn A".into(),
        birth_date: "1990".into(),
        gender: None,
        id_number: None,
        phone: Some("0912345678".into()),
        relation: None,
        account: RosterStatus::None,
        agency: None,
    })
    .unwrap();
    let ops = s.all_ops_since(&VersionVector::default()).unwrap();
    srv.backend.import_ops("test", &ops, now_ms()).unwrap();
    (ops.len(), a, b, household)
}

#[test]
fn served_documents_equal_the_committed_ones() {
    on_both_backends(served_documents);
}

fn served_documents() {
    let srv = server();
    for (path, file) in [
        ("/v1/openapi.json", "docs/api/openapi.json"),
        ("/v1/schema.json", "docs/api/wire.schema.json"),
    ] {
        // No token: the documents carry no personal data.
        let resp = srv.http.get(format!("{}{path}", srv.base)).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        assert!(
            resp.text().unwrap() == repo_file(file),
            "{path} differs from {file}: regenerate with \
             DOORSTEP_BLESS=1 cargo test -p doorstep-server --lib web::openapi"
        );
    }
}

/// Enrol two devices, pull the world as JSON, push a visit and an assistance step from one,
/// pull them on the other: every body valid against the schema; an error answer too.
#[test]
fn real_bodies_are_valid_against_the_schema() {
    on_both_backends(real_bodies);
}

fn real_bodies() {
    let schema = Schema::committed();
    let srv = server();
    let (imported, a, b, household) = world(&srv);
    let mut phone = Store::open_in_memory(Options::default()).unwrap();
    let token_a = srv.enrol_checked(&schema, a, phone.replica_id()).token;
    let token_b = srv.enrol_checked(&schema, b, ReplicaId::random()).token;

    let world_ops = srv.pull_checked(&schema, &token_a);
    assert!(
        world_ops.len() >= imported - 1,
        "{} ops pulled",
        world_ops.len()
    );
    phone.apply_ops(&world_ops).unwrap();
    let resident = world_ops
        .iter()
        .find_map(|o| match &o.body {
            OpBody::Set {
                entity: Entity::Resident,
                key: Key::Uuid(id),
                ..
            } => Some(*id),
            _ => None,
        })
        .unwrap();
    let visit = phone
        .record_visit(NewVisit {
            household_id: household,
            officer_id: a,
            at_ms: None,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: Some("Gặp chủ hộ".into()),
            location: Some(Location {
                lat_e6: 11_564_123,
                lon_e6: 108_988_456,
            }),
        })
        .unwrap();
    phone
        .record_assist(NewAssist {
            resident_id: resident,
            officer_id: a,
            at_ms: None,
            step: AssistStep::Level1Guided,
            failure: Some(FailureReason::OtpNotReceived),
            receiving_point: None,
            note: None,
        })
        .unwrap();
    let mine = phone.own_ops_after(0, 100).unwrap();
    assert_eq!(mine.len(), 2);
    let body = serde_json::to_value(PushRequest {
        protocol: PROTOCOL_VERSION,
        device_time_ms: now_ms(),
        ops: mine,
        segments: Vec::new(),
    })
    .unwrap();
    let answer = srv.exchange(
        &schema,
        "/v1/sync/push",
        Some(&token_a),
        ("PushRequest", body),
        "PushResponse",
    );
    assert_eq!(answer["applied"], 2, "{answer}");

    let theirs = srv.pull_checked(&schema, &token_b);
    assert!(
        theirs
            .iter()
            .any(|o| matches!(&o.body, OpBody::Visit(v) if v.id == visit)),
        "the visit did not reach the other device"
    );

    // An error answer is an ErrorBody.
    let (status, answer) = srv.post(
        "/v1/sync/pull",
        Some("not-a-token"),
        &json!({"protocol": 2, "device_time_ms": 0, "cursor": null, "limit": 10, "own": 0, "relaying": []}),
    );
    assert_eq!(status, 401);
    schema.check("ErrorBody", &answer);
}

/// Bodies a third-party client could get wrong: each fails the schema, and the server refuses
/// it `400` too (serde, whose form the schema describes).
#[test]
fn wrong_bodies_fail_validation_and_are_refused() {
    on_both_backends(wrong_bodies);
}

fn wrong_bodies() {
    let schema = Schema::committed();
    let srv = server();
    let (_, a, _, _) = world(&srv);
    let replica = ReplicaId::random();
    let token = srv.enrol_checked(&schema, a, replica).token;
    let example: Value = serde_json::from_str::<Vec<Value>>(&repo_file("docs/examples/ops.json"))
        .unwrap()[1]
        .clone();
    let mut good = example.clone();
    good["replica"] = json!(replica.0);
    let push = |op: Value| json!({"protocol": 2, "device_time_ms": now_ms(), "ops": [op]});
    schema.check("PushRequest", &push(good.clone()));

    let wrong: Vec<(&str, Value)> = vec![
        ("SQL spelling of an outcome", {
            let mut o = good.clone();
            o["body"]["Visit"]["outcome"] = json!("nobody_home");
            o
        }),
        ("hlc as a string", {
            let mut o = good.clone();
            o["hlc"] = json!("110641899110531072");
            o
        }),
        ("negative counter", {
            let mut o = good.clone();
            o["counter"] = json!(-1);
            o
        }),
        ("replica not a UUID", {
            let mut o = good.clone();
            o["replica"] = json!("phone-1");
            o
        }),
        ("body with two kinds", {
            let mut o = good.clone();
            o["body"]["Retract"] = json!({"fact_id": Uuid::now_v7(), "reason": null});
            o
        }),
        ("field pair as an object", {
            let mut o = good.clone();
            o["body"] = json!({"Set": {"entity": "Household",
                "key": {"Uuid": Uuid::now_v7()}, "fields": [{"Code": {"Text": "H9"}}]}});
            o
        }),
        ("text value given as a bare string", {
            let mut o = good.clone();
            o["body"] = json!({"Set": {"entity": "Household",
                "key": {"Uuid": Uuid::now_v7()}, "fields": [["Code", "H9"]]}});
            o
        }),
        ("missing at_ms", {
            let mut o = good.clone();
            o["body"]["Visit"].as_object_mut().unwrap().remove("at_ms");
            o
        }),
    ];
    for (what, op) in wrong {
        let body = push(op);
        assert!(
            !schema.errors("PushRequest", &body).is_empty(),
            "{what}: valid against the schema"
        );
        let (status, answer) = srv.post("/v1/sync/push", Some(&token), &body);
        assert_eq!(status, 400, "{what}: {answer}");
        schema.check("ErrorBody", &answer);
    }
    // A request message's unknown field, and counter 0 (counters start at 1).
    let mut extra = push(good.clone());
    extra["device"] = json!("x");
    assert!(!schema.errors("PushRequest", &extra).is_empty());
    assert_eq!(srv.post("/v1/sync/push", Some(&token), &extra).0, 400);
    let mut zero = good;
    zero["counter"] = json!(0);
    assert!(!schema.errors("PushRequest", &push(zero)).is_empty());
}
