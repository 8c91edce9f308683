//! The wire contract's examples and tables, generated from the types and checked against
//! `docs/examples/ops.json` and `docs/sync-protocol.md` ("Operations on the wire"), so that the
//! documents cannot drift from the code. After a deliberate change of a wire type, run
//! `DOORSTEP_BLESS=1 cargo test -p doorstep-core --lib wire_examples -- --nocapture` to rewrite
//! `ops.json` and print the examples and tables the document must contain.

use crate::hlc::Hlc;
use crate::model::*;
use crate::op::{Op, OpBody, ReplicaId};
use crate::record::{HouseholdInput, ResidentInput};
use crate::store::{Options, Store};
use uuid::Uuid;

const OPS_JSON: &str = "../docs/examples/ops.json";
const PROTOCOL_DOC: &str = "../docs/sync-protocol.md";

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// 2023-07-02 08:30 in Ninh Thuận (UTC+7).
const AT_MS: i64 = 1_688_261_400_000;

/// One operation of every kind ([`OpBody`] variant), as a phone of replica `0190…0a11` made
/// them; the `Set` is what the store's own `put_resident` writes.
fn examples() -> Vec<Op> {
    let household = id("0189f0c2-7d41-7a3e-8b2c-5d6e7f8a9b01");
    let resident = id("0189f0c2-7d41-7a3e-8b2c-5d6e7f8a9b02");
    let officer = id("0189f0c2-7d41-7a3e-8b2c-5d6e7f8a9b03");
    let mut store = Store::open_in_memory(Options::default()).unwrap();
    let units = "code,parent_code,level,kind,name\n58,,province,tỉnh,Ninh Thuận\n\
                 586,58,district,huyện,Ninh Hải\n22813,586,commune,xã,Xã A\n\
                 22813-01,22813,village,thôn,Thôn 1\n";
    store.import_units_csv(units.as_bytes()).unwrap();
    store
        .put_household(HouseholdInput {
            id: household,
            code: "H0042".into(),
            village_code: "22813-01".into(),
            address: None,
            head_id: None,
        })
        .unwrap();
    store
        .put_resident(ResidentInput {
            id: resident,
            household_id: household,
            full_name: "Nguyễn Thị Lan".into(),
            birth_date: "17/05/1990".into(),
            gender: Some("nữ".into()),
            id_number: None,
            phone: Some("0912 345 678".into()),
            relation: Some("vợ".into()),
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
    let set = store
        .all_ops_since(&Default::default())
        .unwrap()
        .into_iter()
        .rev()
        .find(|o| {
            matches!(
                &o.body,
                OpBody::Set {
                    entity: Entity::Resident,
                    ..
                }
            )
        })
        .unwrap()
        .body;
    let visit = id("0189f0d1-2a3b-7c4d-8e5f-6a7b8c9d0e01");
    let bodies = vec![
        set,
        OpBody::Visit(Visit {
            id: visit,
            household_id: household,
            officer_id: officer,
            at_ms: AT_MS,
            outcome: VisitOutcome::ComeBack,
            revisit_at_ms: Some(AT_MS + 9 * 3600 * 1000),
            note: Some("Hẹn tối quay lại".into()),
            location: Some(Location {
                lat_e6: 11_564_123,
                lon_e6: 108_988_456,
            }),
        }),
        OpBody::Assist(Assist {
            id: id("0189f0d1-2a3b-7c4d-8e5f-6a7b8c9d0e02"),
            resident_id: resident,
            officer_id: officer,
            at_ms: AT_MS + 600_000,
            step: AssistStep::Level1Activated,
            failure: Some(FailureReason::OtpNotReceived),
            receiving_point: None,
            note: None,
        }),
        OpBody::Retract {
            fact_id: visit,
            reason: Some("Ghi nhầm hộ".into()),
        },
        OpBody::Session(Session {
            id: id("0189f0d1-2a3b-7c4d-8e5f-6a7b8c9d0e03"),
            unit_code: "22813".into(),
            officer_id: officer,
            kind: SessionKind::Mobile,
            place: "Nhà văn hoá thôn".into(),
            starts_at_ms: AT_MS,
            ends_at_ms: AT_MS + 4 * 3600 * 1000,
            applications: 37,
            note: None,
        }),
        OpBody::Outreach(Outreach {
            id: id("0189f0d1-2a3b-7c4d-8e5f-6a7b8c9d0e04"),
            unit_code: "22813-01".into(),
            officer_id: officer,
            kind: OutreachKind::Loudspeaker,
            at_ms: AT_MS,
            place: "Loa truyền thanh xã".into(),
            people_reached: 400,
            note: None,
        }),
        OpBody::Redact(crate::op::Redaction {
            area: "22813-01".into(),
            facts: vec![visit],
        }),
    ];
    bodies
        .into_iter()
        .zip(1..)
        .map(|(body, counter)| Op {
            replica: ReplicaId(id("0190c2a4-5b7e-7c3d-9a1f-2e4b6c8d0a11")),
            counter,
            hlc: Hlc::new(AT_MS as u64 + counter, 0),
            body,
        })
        .collect()
}

/// How serde writes a value on the wire (a unit variant's name).
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v).unwrap() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The table of entities, their fields on the wire, their columns and value types.
fn fields_table() -> String {
    let mut out = String::from(
        "| entity (`table`, key) | fields: wire name (column) value |\n| --- | --- |\n",
    );
    for entity in Entity::ALL {
        let key = match entity {
            Entity::Unit => "Code",
            _ => "Uuid",
        };
        let fields: Vec<String> = entity
            .fields()
            .iter()
            .map(|f| {
                let kind = if f.is_int() { "Int" } else { "Text" };
                format!("`{}` (`{}`) {kind}", wire(f), f.as_str())
            })
            .collect();
        out.push_str(&format!(
            "| `{}` (`{}`, `{key}`) | {} |\n",
            wire(entity),
            entity.table(),
            fields.join(", ")
        ));
    }
    out
}

/// The table of the enums facts carry: wire spelling, then the SQL code.
fn enums_table() -> String {
    fn row<T: serde::Serialize + Copy + std::fmt::Display>(name: &str, all: &[T]) -> String {
        let pairs: Vec<String> = all
            .iter()
            .map(|v| format!("`{}` = `{v}`", wire(v)))
            .collect();
        format!("| {name} | {} |\n", pairs.join(", "))
    }
    let mut out = String::from("| field | wire = SQL |\n| --- | --- |\n");
    out.push_str(&row("`Visit.outcome`", VisitOutcome::ALL));
    out.push_str(&row("`Assist.step`", AssistStep::ALL));
    out.push_str(&row("`Assist.failure`", FailureReason::ALL));
    out.push_str(&row("`Session.kind`", SessionKind::ALL));
    out.push_str(&row("`Outreach.kind`", OutreachKind::ALL));
    out
}

#[test]
fn ops_json_and_the_protocol_doc_match_the_types() {
    let ops = examples();
    let json = serde_json::to_string_pretty(&ops).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(OPS_JSON);
    if std::env::var_os("DOORSTEP_BLESS").is_some() {
        std::fs::write(&path, &json).unwrap();
        for op in &ops {
            println!("{}\n", serde_json::to_string(op).unwrap());
        }
        println!("{}\n{}", fields_table(), enums_table());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == json,
        "docs/examples/ops.json differs from the types; rerun with DOORSTEP_BLESS=1"
    );
    let back: Vec<Op> = serde_json::from_str(&committed).unwrap();
    assert_eq!(back, ops);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PROTOCOL_DOC),
    )
    .unwrap();
    for op in &ops {
        let one = serde_json::to_string(op).unwrap();
        assert!(doc.contains(&one), "the doc lacks this example:\n{one}");
    }
    for table in [fields_table(), enums_table()] {
        assert!(doc.contains(&table), "the doc lacks this table:\n{table}");
    }
}
