//! Authority and values over real HTTP, on both backends: each attack a hostile or modified
//! device could make (issue #12) — made with the core's own write API on the attacker's store
//! where it allows it, by hand where it does not — refused with a reason, nothing of it stored,
//! and no other commune's residents in the attacker's next pull; beside each, what the same
//! role may do, accepted.

use chrono::NaiveDate;
use doorstep_core::wire::{PushResponse, Rejected};
use doorstep_core::*;
use uuid::Uuid;

mod common;
use common::http::{now_ms, server, Fmt, Server};
use common::{on_both_backends, put_units};

/// A province with two districts: 586 (communes 22813, 22814) and 587 (commune 22900).
struct World {
    ops: Vec<Op>,
    campaign: Uuid,
    /// Commune lead of 22813.
    lead: Uuid,
    /// Field officers of 22813: `field` given village 22813-01, `field2` village 22813-02.
    field: Uuid,
    field2: Uuid,
    /// Field officer of 22814, given village 22814-01.
    other: Uuid,
    /// District command of 586, province command of 58.
    district: Uuid,
    province: Uuid,
    /// Households (one resident each, with an ID and phone number): in 22813-01, 22814-01,
    /// 22900-01.
    hh: Vec<Uuid>,
    res: Vec<Uuid>,
}

fn world() -> World {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    put_units(
        &mut s,
        &[
            ("58", None, UnitLevel::Province),
            ("586", Some("58"), UnitLevel::District),
            ("587", Some("58"), UnitLevel::District),
            ("22813", Some("586"), UnitLevel::Commune),
            ("22814", Some("586"), UnitLevel::Commune),
            ("22900", Some("587"), UnitLevel::Commune),
            ("22813-01", Some("22813"), UnitLevel::Village),
            ("22813-02", Some("22813"), UnitLevel::Village),
            ("22814-01", Some("22814"), UnitLevel::Village),
            ("22900-01", Some("22900"), UnitLevel::Village),
        ],
    );
    let campaign = Uuid::now_v7();
    s.put_campaign(CampaignInput {
        id: campaign,
        name: "Cao điểm".into(),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
        target: 1000,
        unit_code: "58".into(),
    })
    .unwrap();
    let officer = |s: &mut Store, role: Role, unit: &str| {
        let id = Uuid::now_v7();
        s.put_officer(OfficerInput {
            id,
            name: "Cán bộ".into(),
            role,
            unit_code: unit.into(),
        })
        .unwrap();
        id
    };
    let lead = officer(&mut s, Role::CommuneLead, "22813");
    let field = officer(&mut s, Role::Field, "22813");
    let field2 = officer(&mut s, Role::Field, "22813");
    let other = officer(&mut s, Role::Field, "22814");
    let district = officer(&mut s, Role::District, "586");
    let province = officer(&mut s, Role::Province, "58");
    for (o, v) in [
        (field, "22813-01"),
        (field2, "22813-02"),
        (other, "22814-01"),
    ] {
        s.assign(o, AssignTarget::Village(v.into())).unwrap();
    }
    let mut hh = Vec::new();
    let mut res = Vec::new();
    for (i, village) in ["22813-01", "22814-01", "22900-01"].iter().enumerate() {
        let h = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: h,
            code: format!("H{i:03}"),
            village_code: (*village).into(),
            address: None,
            head_id: None,
        })
        .unwrap();
        let r = Uuid::now_v7();
        s.put_resident(ResidentInput {
            id: r,
            household_id: h,
            full_name: "Trần Thị Bí Mật".into(),
            birth_date: "1990-05-17".into(),
            gender: Some("nữ".into()),
            id_number: Some(format!("05819000{i:04}")),
            phone: Some(format!("091234{i:04}")),
            relation: None,
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
        hh.push(h);
        res.push(r);
    }
    World {
        ops: s.all_ops_since(&VersionVector::default()).unwrap(),
        campaign,
        lead,
        field,
        field2,
        other,
        district,
        province,
        hh,
        res,
    }
}

/// A server holding the world.
fn setup() -> (Server, World) {
    let srv = server();
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    (srv, w)
}

/// A device of `officer`: a store holding the world, enrolled.
struct Device {
    store: Store,
    token: String,
    pushed: u64,
}

impl Device {
    fn of(srv: &Server, w: &World, officer: Uuid) -> Device {
        let mut store = Store::open_in_memory(Options::default()).unwrap();
        store.apply_ops(&w.ops).unwrap();
        let token = srv.enrol(officer, store.replica_id());
        Device {
            store,
            token,
            pushed: 0,
        }
    }

    /// Make operations with the core's write API, then push those not pushed yet.
    fn attempt(&mut self, srv: &Server, f: impl FnOnce(&mut Store)) -> PushResponse {
        f(&mut self.store);
        let ops: Vec<Op> = self
            .store
            .all_ops_since(&VersionVector::default())
            .unwrap()
            .into_iter()
            .filter(|o| o.replica == self.store.replica_id() && o.counter > self.pushed)
            .collect();
        assert!(!ops.is_empty(), "the attempt made no operation");
        self.pushed = ops.iter().map(|o| o.counter).max().unwrap();
        srv.push_as(&self.token, Fmt::Json, ops)
    }

    /// Everything this officer's devices receive: a fresh pull from the start.
    fn pull_everything(&self, srv: &Server) -> Vec<Op> {
        srv.pull_all(&self.token, None, 1000).0
    }
}

/// Every operation of the push was refused for `reason`.
fn refused(resp: &PushResponse, reason: &str) {
    assert_eq!(resp.applied, 0, "applied: {resp:?}");
    assert!(!resp.rejected.is_empty());
    assert!(
        resp.rejected.iter().all(|r: &Rejected| r.reason == reason),
        "expected {reason}: {:?}",
        resp.rejected
    );
}

fn accepted(resp: &PushResponse) {
    assert!(resp.rejected.is_empty(), "{:?}", resp.rejected);
    assert!(resp.applied > 0);
}

/// Whether any pulled operation carries the resident or household `id`.
fn carries(ops: &[Op], id: Uuid) -> bool {
    ops.iter().any(|o| match &o.body {
        OpBody::Set {
            key: Key::Uuid(k), ..
        } => *k == id,
        OpBody::Visit(v) => v.household_id == id,
        OpBody::Assist(a) => a.resident_id == id,
        _ => false,
    })
}

fn unit(code: &str, parent: &str, name: &str) -> UnitInput {
    UnitInput {
        code: code.into(),
        parent_code: Some(parent.into()),
        level: UnitLevel::Village,
        kind: "thôn".into(),
        name: name.into(),
    }
}

fn quota(w: &World, subject: QuotaSubject, target: i64) -> QuotaInput {
    QuotaInput {
        campaign_id: w.campaign,
        subject,
        period: QuotaPeriod::Campaign,
        metric: QuotaMetric::Level2Activated,
        target,
    }
}

fn visit(officer: Uuid, household: Uuid) -> NewVisit {
    NewVisit {
        household_id: household,
        officer_id: officer,
        at_ms: None,
        outcome: VisitOutcome::Met,
        revisit_at_ms: None,
        note: None,
        location: None,
    }
}

fn a_commune_lead_cannot_widen_their_scope_case() {
    let (srv, w) = setup();
    let mut lead = Device::of(&srv, &w, w.lead);
    let before = lead.pull_everything(&srv);
    assert!(carries(&before, w.res[0]), "the lead's own commune");
    assert!(!carries(&before, w.res[1]) && !carries(&before, w.res[2]));

    // Re-parent another commune's village under the lead's commune.
    let r = lead.attempt(&srv, |s| {
        s.put_unit(unit("22814-01", "22813", "Đơn vị 22814-01"))
            .unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(
        srv.count("SELECT count(*) FROM units WHERE code = '22814-01' AND parent_code = '22814'"),
        1
    );
    // Rename another commune's unit; create a village.
    let r = lead.attempt(&srv, |s| {
        s.put_unit(UnitInput {
            level: UnitLevel::Commune,
            ..unit("22814", "586", "Đổi tên")
        })
        .unwrap();
    });
    refused(&r, "forbidden");
    let r = lead.attempt(&srv, |s| {
        s.put_unit(unit("22813-09", "22813", "Thôn mới")).unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(
        srv.count("SELECT count(*) FROM units WHERE name = 'Đổi tên' OR code = '22813-09'"),
        0
    );
    // Self-promotion to province command.
    let r = lead.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: w.lead,
            name: "Cán bộ".into(),
            role: Role::Province,
            unit_code: "58".into(),
        })
        .unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM officers WHERE id = '{}' AND role = 'commune_lead' AND unit_code = '22813'",
            w.lead
        )),
        1
    );
    // Assign an officer of the commune to another commune's village, and another commune's
    // officer to a village of the commune.
    let r = lead.attempt(&srv, |s| {
        s.assign(w.field, AssignTarget::Village("22814-01".into()))
            .unwrap();
    });
    refused(&r, "out_of_scope");
    let r = lead.attempt(&srv, |s| {
        s.assign(w.other, AssignTarget::Village("22813-01".into()))
            .unwrap();
    });
    refused(&r, "out_of_scope");
    let r = lead.attempt(&srv, |s| {
        s.assign(w.field, AssignTarget::Household(w.hh[2])).unwrap();
    });
    refused(&r, "out_of_scope");
    // Withdraw another commune's assignment.
    let r = lead.attempt(&srv, |s| {
        s.unassign(w.other, AssignTarget::Village("22814-01".into()))
            .unwrap();
    });
    refused(&r, "out_of_scope");
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM assignments WHERE active = 1 AND (target_id != '{}' OR officer_id != '{}') AND (officer_id = '{}' OR target_id = '22814-01' OR target_id = '{}')",
            "22813-01", w.field, w.field, w.hh[2]
        )),
        1,
        "only the other commune's own assignment, still active"
    );
    // Quotas for another commune, its village, its officer; for the lead's own commune and
    // the lead themselves.
    for subject in [
        QuotaSubject::Unit("22814".into()),
        QuotaSubject::Unit("22814-01".into()),
        QuotaSubject::Officer(w.other),
        QuotaSubject::Unit("22813".into()),
    ] {
        let r = lead.attempt(&srv, |s| {
            s.set_quota(quota(&w, subject, 5)).unwrap();
        });
        refused(&r, "out_of_scope");
    }
    let r = lead.attempt(&srv, |s| {
        s.set_quota(quota(&w, QuotaSubject::Officer(w.lead), 0))
            .unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(srv.count("SELECT count(*) FROM quotas"), 0);
    // The province campaign's target.
    let r = lead.attempt(&srv, |s| {
        s.put_campaign(CampaignInput {
            id: w.campaign,
            name: "Cao điểm".into(),
            start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
            target: 1,
            unit_code: "58".into(),
        })
        .unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(
        srv.count("SELECT count(*) FROM campaigns WHERE target = 1000"),
        1
    );
    // A visit in the lead's commune credited to another commune's officer.
    let r = lead.attempt(&srv, |s| {
        s.record_visit(visit(w.other, w.hh[0])).unwrap();
    });
    refused(&r, "out_of_scope");

    // Nothing widened: a fresh pull still carries none of the other communes' residents.
    let after = lead.pull_everything(&srv);
    assert!(carries(&after, w.res[0]));
    for i in [1, 2] {
        assert!(!carries(&after, w.res[i]), "resident {i} reached the lead");
        assert!(!carries(&after, w.hh[i]), "household {i} reached the lead");
    }
    // What a lead may do: assign, set quotas for their officers and villages, add a field
    // officer, record a visit for one of their officers.
    let r = lead.attempt(&srv, |s| {
        s.assign(w.field2, AssignTarget::Village("22813-01".into()))
            .unwrap();
        s.set_quota(quota(&w, QuotaSubject::Officer(w.field), 11))
            .unwrap();
        s.set_quota(quota(&w, QuotaSubject::Unit("22813-01".into()), 40))
            .unwrap();
        s.put_officer(OfficerInput {
            id: Uuid::now_v7(),
            name: "Tình nguyện viên".into(),
            role: Role::Field,
            unit_code: "22813".into(),
        })
        .unwrap();
        s.record_visit(visit(w.field, w.hh[0])).unwrap();
    });
    accepted(&r);
    assert_eq!(r.applied, 5);
    assert_eq!(srv.count("SELECT count(*) FROM quotas"), 2);
    // …but not make a lead.
    let r = lead.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: Uuid::now_v7(),
            name: "Phó trưởng".into(),
            role: Role::CommuneLead,
            unit_code: "22813".into(),
        })
        .unwrap();
    });
    refused(&r, "forbidden");
}

fn a_field_officer_writes_only_their_own_work_case() {
    let (srv, w) = setup();
    let mut dev = Device::of(&srv, &w, w.field);
    let mut dev2 = Device::of(&srv, &w, w.field2);
    // Field work in their village, credited to themselves.
    let r = dev.attempt(&srv, |s| {
        let id = s.record_visit(visit(w.field, w.hh[0])).unwrap();
        s.retract(id, Some("nhầm")).unwrap();
    });
    accepted(&r);
    assert_eq!(r.applied, 2);
    // A visit credited to another officer of the commune.
    let r = dev.attempt(&srv, |s| {
        s.record_visit(visit(w.field2, w.hh[0])).unwrap();
    });
    refused(&r, "forbidden");
    // Retract another officer's visit (field2 is given the same village by the lead's
    // console, so the area is theirs too).
    srv.db
        .with_store(|s| {
            s.assign(w.field2, AssignTarget::Village("22813-01".into()))
                .unwrap()
        })
        .unwrap();
    let r = dev2.attempt(&srv, |s| {
        s.record_visit(visit(w.field2, w.hh[0])).unwrap();
    });
    accepted(&r);
    let their_visit = dev2
        .store
        .all_ops_since(&VersionVector::default())
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|o| match o.body {
            OpBody::Visit(v) => Some(v.id),
            _ => None,
        })
        .unwrap();
    dev.store
        .apply_ops(&dev2.store.all_ops_since(&VersionVector::default()).unwrap())
        .unwrap();
    let r = dev.attempt(&srv, |s| {
        s.retract(their_visit, Some("xoá")).unwrap();
    });
    refused(&r, "forbidden");
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM retractions WHERE fact_id = '{their_visit}'"
        )),
        0
    );
    // Reference data of any kind, even their own name.
    let r = dev.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: w.field,
            name: "Tên khác".into(),
            role: Role::Field,
            unit_code: "22813".into(),
        })
        .unwrap();
        s.assign(w.field, AssignTarget::Village("22813-02".into()))
            .unwrap();
    });
    refused(&r, "forbidden");
}

fn district_and_province_command_act_within_their_units_case() {
    let (srv, w) = setup();
    let mut district = Device::of(&srv, &w, w.district);
    // Quotas for a commune of the district: yes; of another district: no; for itself: no.
    let r = district.attempt(&srv, |s| {
        s.set_quota(quota(&w, QuotaSubject::Unit("22813".into()), 300))
            .unwrap();
        s.set_quota(quota(&w, QuotaSubject::Officer(w.lead), 30))
            .unwrap();
    });
    accepted(&r);
    let r = district.attempt(&srv, |s| {
        s.set_quota(quota(&w, QuotaSubject::Unit("22900".into()), 300))
            .unwrap();
    });
    refused(&r, "out_of_scope");
    let r = district.attempt(&srv, |s| {
        s.set_quota(quota(&w, QuotaSubject::Unit("586".into()), 3000))
            .unwrap();
    });
    refused(&r, "out_of_scope");
    // Promote a lead to district command; move a unit; change the campaign.
    let r = district.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: w.lead,
            name: "Cán bộ".into(),
            role: Role::District,
            unit_code: "586".into(),
        })
        .unwrap();
    });
    refused(&r, "forbidden");
    let r = district.attempt(&srv, |s| {
        s.put_unit(unit("22813-02", "22814", "Đơn vị 22813-02"))
            .unwrap();
    });
    refused(&r, "forbidden");
    // Move an officer of the district to a commune of another district.
    let r = district.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: w.field,
            name: "Cán bộ".into(),
            role: Role::Field,
            unit_code: "22900".into(),
        })
        .unwrap();
    });
    refused(&r, "out_of_scope");
    assert!(!carries(&district.pull_everything(&srv), w.res[2]));

    // Province command re-draws its units and its campaign.
    let mut province = Device::of(&srv, &w, w.province);
    let r = province.attempt(&srv, |s| {
        s.put_unit(unit("22813-02", "22814", "Đơn vị 22813-02"))
            .unwrap();
        s.put_campaign(CampaignInput {
            id: w.campaign,
            name: "Cao điểm".into(),
            start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
            target: 2000,
            unit_code: "58".into(),
        })
        .unwrap();
    });
    accepted(&r);
    // …but not outside the province, nor its own role.
    let r = province.attempt(&srv, |s| {
        s.put_unit(UnitInput {
            code: "59".into(),
            parent_code: None,
            level: UnitLevel::Province,
            kind: "tỉnh".into(),
            name: "Tỉnh khác".into(),
        })
        .unwrap();
    });
    refused(&r, "out_of_scope");
    let r = province.attempt(&srv, |s| {
        s.put_officer(OfficerInput {
            id: w.province,
            name: "Cán bộ".into(),
            role: Role::Province,
            unit_code: "586".into(),
        })
        .unwrap();
    });
    refused(&r, "forbidden");
}

fn a_revoked_device_replaying_old_batches_is_refused_case() {
    let (srv, w) = setup();
    let mut dev = Device::of(&srv, &w, w.lead);
    let r = dev.attempt(&srv, |s| {
        s.record_visit(visit(w.lead, w.hh[0])).unwrap();
    });
    accepted(&r);
    let ops = dev.store.all_ops_since(&VersionVector::default()).unwrap();
    let device = srv
        .backend
        .list_devices()
        .unwrap()
        .into_iter()
        .find(|d| d.officer_id == w.lead)
        .unwrap();
    assert!(srv
        .backend
        .revoke_device("test", device.id, now_ms())
        .unwrap());
    let visits = srv.count("SELECT count(*) FROM visits");
    // The same batch again, and a new one made after the revocation: nothing stored. A revoked
    // device's push takes only its own work stamped before the revocation (its last push
    // before it wipes, docs/sync-protocol.md "Lease and wipe"): the old batch is held already,
    // the new visit is refused `revoked`.
    dev.store.record_visit(visit(w.lead, w.hh[0])).unwrap();
    let all: Vec<Op> = dev
        .store
        .all_ops_since(&VersionVector::default())
        .unwrap()
        .into_iter()
        .filter(|o| o.replica == dev.store.replica_id())
        .collect();
    for batch in [ops.clone(), all] {
        let a = srv.raw(
            "/v1/sync/push",
            Some(&dev.token),
            "application/json",
            None,
            Fmt::Json.encode(&doorstep_core::wire::PushRequest {
                protocol: doorstep_core::wire::PROTOCOL_VERSION,
                device_time_ms: now_ms(),
                ops: batch,
                segments: Vec::new(),
            }),
        );
        assert_eq!(a.status, 200);
        let resp: doorstep_core::wire::PushResponse = Fmt::Json.decode(&a.body);
        assert_eq!(resp.applied, 0, "{resp:?}");
        assert!(
            resp.rejected.iter().all(|r| r.reason == "revoked"),
            "{resp:?}"
        );
    }
    assert_eq!(srv.count("SELECT count(*) FROM visits"), visits);
    // Every other request is refused 401 `revoked`, with the server's signed wipe order.
    let pull = srv.raw(
        "/v1/sync/pull",
        Some(&dev.token),
        "application/json",
        None,
        br#"{"protocol": 2, "device_time_ms": 0, "cursor": null, "limit": 1, "own": 0, "relaying": []}"#
            .to_vec(),
    );
    assert_eq!(pull.status, 401);
    let e = pull.error();
    assert_eq!(e.reason.as_deref(), Some("revoked"));
    let order = e.wipe.expect("a wipe order");
    assert_eq!(order.replica, dev.store.replica_id().0);
    assert_eq!(order.device_id, device.id);
}

fn values_are_checked_by_the_core_rules_case() {
    let (srv, w) = setup();
    let dev = Device::of(&srv, &w, w.field);
    let replica = dev.store.replica_id();
    let hlc = Hlc::new(now_ms() as u64, 0);
    let set = |counter: u64, field: Field, value: Value| Op {
        replica,
        counter,
        hlc,
        body: OpBody::Set {
            entity: Entity::Resident,
            key: Key::Uuid(w.res[0]),
            fields: vec![(field, value)],
        },
    };
    let visit_at = |counter: u64, at_ms: i64| Op {
        replica,
        counter,
        hlc,
        body: OpBody::Visit(Visit {
            id: Uuid::now_v7(),
            household_id: w.hh[0],
            officer_id: w.field,
            at_ms,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: None,
            location: None,
        }),
    };
    let long_name = "Nguyễn Văn An ".repeat(1_500);
    let ms = |y, m, d| {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let ops = vec![
        set(1, Field::FullName, Value::Text(long_name.clone())),
        set(2, Field::BirthDate, "not-a-date".into()),
        set(3, Field::Phone, "abc".into()),
        set(4, Field::Phone, "0912 345 678".into()),
        visit_at(5, ms(2017, 7, 10)),
        visit_at(6, ms(2023, 1, 10)),
        set(7, Field::Phone, "0912345678".into()),
    ];
    let r = srv.push_as(&dev.token, Fmt::Json, ops);
    let reasons: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.counter, x.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (1, "invalid:full_name"),
            (2, "invalid:birth_date"),
            (3, "invalid:phone"),
            (4, "invalid:phone"),
            (5, "invalid:visit.at_ms"),
            (6, "invalid:visit.at_ms"),
        ]
    );
    // The rest of the batch goes on; the device's acknowledgement covers the refused.
    assert_eq!((r.applied, r.acked_counter), (1, 7));
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM residents WHERE id = '{}' AND full_name = 'Trần Thị Bí Mật'
             AND birth_date = '1990-05-17' AND phone = '0912345678'",
            w.res[0]
        )),
        1
    );
    assert_eq!(srv.count("SELECT count(*) FROM visits"), 0);
    // Nothing refused reaches another device of the commune.
    let lead = Device::of(&srv, &w, w.lead);
    let pulled = lead.pull_everything(&srv);
    assert!(!pulled
        .iter()
        .any(|o| o.replica == replica && o.counter != 7));
}

#[test]
fn values_are_checked_by_the_core_rules() {
    on_both_backends(values_are_checked_by_the_core_rules_case);
}

#[test]
fn a_commune_lead_cannot_widen_their_scope() {
    on_both_backends(a_commune_lead_cannot_widen_their_scope_case);
}

#[test]
fn a_field_officer_writes_only_their_own_work() {
    on_both_backends(a_field_officer_writes_only_their_own_work_case);
}

#[test]
fn district_and_province_command_act_within_their_units() {
    on_both_backends(district_and_province_command_act_within_their_units_case);
}

#[test]
fn a_revoked_device_replaying_old_batches_is_refused() {
    on_both_backends(a_revoked_device_replaying_old_batches_is_refused_case);
}
