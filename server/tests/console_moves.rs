//! Moves made by a console write (`docs/sync-protocol.md`, "Scope that shrinks"): a roster
//! imported again with a household in another village, and a resident (keyed by their citizen
//! ID) in a household of another village, are filed with the village they leave, so a device
//! holding that village but not the new one is told to erase them. On SQLite, then on
//! PostgreSQL when `DOORSTEP_TEST_DATABASE_URL` is set.

mod common;

use chrono::NaiveDate;
use common::{on_both_backends, open_db};
use doorstep_core::{CampaignInput, Role};
use doorstep_server::backend::{Backend, DeviceAuth, Enrolment, CLI_ACTOR};
use uuid::Uuid;

const UNITS: &str = "code,parent_code,level,kind,name\n\
    58,,province,tỉnh,Ninh Thuận\n\
    582,58,district,thành phố,Phan Rang - Tháp Chàm\n\
    22738,582,commune,phường,Đô Vinh\n\
    22738-01,22738,village,khu phố,Khu phố 1\n\
    22738-02,22738,village,khu phố,Khu phố 2\n";

const ROSTER: &str = "household_code,village_code,full_name,birth_date,gender,id_number\n\
    HH1,22738-01,Nguyễn Văn An,1975,nam,\n\
    HH1,22738-01,Trần Thị Bình,1980,nữ,\n\
    HH2,22738-01,Lê Văn Cường,1975,nam,058075001234\n\
    HH2,22738-01,Võ Thị Phương,1978,nữ,\n\
    HH3,22738-02,Phạm Thị Dung,1990,nữ,\n";

/// The same roster a week later: HH1 lives in village 2 now, and Cường moved to HH3.
const ROSTER_AGAIN: &str = "household_code,village_code,full_name,birth_date,gender,id_number\n\
    HH1,22738-02,Nguyễn Văn An,1975,nam,\n\
    HH1,22738-02,Trần Thị Bình,1980,nữ,\n\
    HH3,22738-02,Lê Văn Cường,1975,nam,058075001234\n\
    HH2,22738-01,Võ Thị Phương,1978,nữ,\n\
    HH3,22738-02,Phạm Thị Dung,1990,nữ,\n";

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

fn device(b: &Backend, officer: Uuid) -> DeviceAuth {
    let code = b
        .issue_enrol_code(CLI_ACTOR, officer, 60, now_ms())
        .unwrap()
        .code;
    let e = b
        .enrol(
            Enrolment {
                code,
                device_name: "máy".into(),
                replica: Uuid::new_v4(),
                device_time_ms: now_ms(),
                public_key: None,
            },
            now_ms(),
        )
        .unwrap();
    b.authenticate_device(&e.token).unwrap().unwrap()
}

/// Pull from `cursor` to the end; returns the new cursor and the households and residents
/// the pages said to erase.
fn pull_rest(
    b: &Backend,
    d: &DeviceAuth,
    cursor: Option<String>,
) -> (String, Vec<Uuid>, Vec<Uuid>) {
    let (mut cursor, mut households, mut residents) = (cursor, Vec::new(), Vec::new());
    for _ in 0..1000 {
        let page = b.pull(d, cursor.as_deref(), 3, now_ms(), now_ms()).unwrap();
        households.extend(page.dropped_households);
        residents.extend(page.dropped_residents);
        cursor = Some(page.cursor);
        if !page.has_more {
            return (cursor.unwrap_or_default(), households, residents);
        }
    }
    panic!("pulling never ended");
}

fn case() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let b = db.dyn_backend();
    b.import_units(CLI_ACTOR, UNITS.as_bytes(), now_ms())
        .unwrap();
    let campaign = b
        .put_campaign(
            CLI_ACTOR,
            CampaignInput {
                id: Uuid::now_v7(),
                name: "80 ngày đêm".into(),
                start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2030, 9, 15).unwrap(),
                target: 100,
                unit_code: "58".into(),
            },
            now_ms(),
        )
        .unwrap();
    let officer = b
        .add_officer(CLI_ACTOR, "Trần Văn Bình", Role::Field, "22738", now_ms())
        .unwrap();
    b.assign_village(CLI_ACTOR, officer, "22738-01", now_ms())
        .unwrap();
    let import = |csv: &str| {
        let r = b
            .import_roster(CLI_ACTOR, campaign, csv.as_bytes(), &mut |_| {}, now_ms())
            .unwrap();
        assert!(r.rejected.is_empty(), "{r:?}");
    };
    import(ROSTER);
    let d = device(&b, officer);
    let (cursor, households, residents) = pull_rest(&b, &d, None);
    assert_eq!((households.len(), residents.len()), (0, 0));
    import(ROSTER_AGAIN);
    let (_, households, residents) = pull_rest(&b, &d, Some(cursor));
    let hh1 = doorstep_core::roster::household_id(campaign, "HH1");
    let cuong: String = db
        .with_store(|s| {
            s.connection()
                .query_row(
                    "SELECT id FROM residents WHERE id_number = '058075001234'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .unwrap();
    assert_eq!(households, [hh1]);
    assert_eq!(residents, [Uuid::parse_str(&cuong).unwrap()]);
    // A device holding both villages is told nothing: it gets the moves.
    b.assign_village(CLI_ACTOR, officer, "22738-02", now_ms())
        .unwrap();
    let both = device(&b, officer);
    let (_, households, residents) = pull_rest(&b, &both, None);
    assert_eq!((households.len(), residents.len()), (0, 0));
}

#[test]
fn a_roster_imported_again_reports_its_moves_out_of_a_devices_villages() {
    on_both_backends(case);
}
