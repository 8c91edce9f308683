//! Search ranking on a commune-size roster (5,000 residents), as an officer at a door uses it:
//! typing the name the resident says, in either tone-mark convention, with or without
//! diacritics, or the ID or phone number in full.

use doorstep_core::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const FAMILY: [&str; 14] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Ngô", "Dương",
];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh"];
const GIVEN: [&str; 16] = [
    "An", "Bình", "Hoàng", "Hoa", "Hoài", "Khoa", "Lan", "Mai", "Dũng", "Tuấn", "Thủy", "Thuỷ",
    "Hỏa", "Toàn", "Tòan", "Hạnh",
];

struct Roster {
    store: Store,
    /// (id, full name, ID number, phone) of every resident.
    people: Vec<(Uuid, String, String, String)>,
}

/// 5,000 residents in 1,250 households; 101 of them named Hòa (55 written `Hòa`, 46 `Hoà`), and
/// Hoàng a common family and given name, so that "Hoàng …" sorts before "… Hòa".
fn roster() -> Roster {
    let mut store = Store::open_in_memory(Options {
        durability: Durability::Normal,
        ..Options::default()
    })
    .unwrap();
    for (code, parent, level) in [
        ("58", None, UnitLevel::Province),
        ("586", Some("58"), UnitLevel::District),
        ("22813", Some("586"), UnitLevel::Commune),
        ("22813-01", Some("22813"), UnitLevel::Village),
    ] {
        store
            .put_unit(UnitInput {
                code: code.into(),
                parent_code: parent.map(Into::into),
                level,
                kind: "thôn".into(),
                name: format!("Đơn vị {code}"),
            })
            .unwrap();
    }
    let mut rng = StdRng::seed_from_u64(12);
    let mut people = Vec::new();
    let mut household = Uuid::nil();
    for i in 0..5_000u32 {
        if i % 4 == 0 {
            household = Uuid::now_v7();
            store
                .put_household(HouseholdInput {
                    id: household,
                    code: format!("H{i:05}"),
                    village_code: "22813-01".into(),
                    address: None,
                    head_id: None,
                })
                .unwrap();
        }
        let given = if i < 55 {
            "Hòa"
        } else if i < 101 {
            "Hoà"
        } else {
            GIVEN.choose(&mut rng).unwrap()
        };
        let name = format!(
            "{} {} {given}",
            FAMILY.choose(&mut rng).unwrap(),
            MIDDLE.choose(&mut rng).unwrap()
        );
        let female = rng.gen_bool(0.5);
        // CCCD: province 058, century-and-gender digit, birth year, serial.
        let id_number = if female {
            format!("058190{i:06}")
        } else {
            format!("058085{i:06}")
        };
        let phone = format!("0912{:06}", i);
        let id = Uuid::now_v7();
        store
            .put_resident(ResidentInput {
                id,
                household_id: household,
                full_name: name.clone(),
                birth_date: if female { "1990" } else { "1985" }.into(),
                gender: Some(if female { "nữ" } else { "nam" }.into()),
                id_number: Some(id_number.clone()),
                phone: Some(phone.clone()),
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .unwrap();
        people.push((id, name, id_number, phone));
    }
    Roster { store, people }
}

fn given_name(full: &str) -> &str {
    full.rsplit(' ').next().unwrap()
}

#[test]
fn search_ranks_like_a_person_would() {
    let r = roster();
    let hits = |q: &str| r.store.search_residents(q, 10).unwrap();
    let is_hoa = |n: &str| matches!(given_name(n), "Hòa" | "Hoà");

    // Either tone placement finds the 101 people named Hòa first, exact, whatever their
    // family name sorts like; never a Hoàng.
    for q in ["hòa", "hoà", "Hòa", "HOÀ"] {
        let top = hits(q);
        assert_eq!(top.len(), 10, "{q}");
        assert!(
            top.iter().all(|h| is_hoa(&h.full_name) && h.exact),
            "{q}: {:?}",
            top.iter().map(|h| &h.full_name).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        hits("hòa").iter().map(|h| h.id).collect::<Vec<_>>(),
        hits("hoà").iter().map(|h| h.id).collect::<Vec<_>>(),
        "one ranking for both conventions"
    );
    let all = r.store.search_residents("hòa", 5_000).unwrap();
    let named_hoa = all.iter().filter(|h| is_hoa(&h.full_name)).count();
    assert_eq!(named_hoa, 101);
    assert!(
        all[..101].iter().all(|h| is_hoa(&h.full_name)),
        "every Hòa before anything else"
    );
    // Without diacritics: the whole word "hoa" (Hòa, Hoà, Hoa, Hỏa) before the word start
    // (Hoàng, Hoài) before inside a word (Khoa, Toàn).
    let classes: Vec<u8> = all_of(&r, "hoa")
        .iter()
        .map(|n| match given_name(n) {
            "Hòa" | "Hoà" | "Hoa" | "Hỏa" => 0,
            "Hoàng" | "Hoài" => 1,
            _ if n.starts_with("Hoàng ") => 1,
            _ => 2,
        })
        .collect();
    assert!(classes.windows(2).all(|w| w[0] <= w[1]), "{classes:?}");
    assert!(classes.contains(&2));
    // Thủy and Thuỷ are one name; Thủy with its diacritics before Thuy-like folds.
    let thuy = hits("Thuỷ");
    assert!(thuy
        .iter()
        .all(|h| matches!(given_name(&h.full_name), "Thủy" | "Thuỷ") && h.exact));
    // A word start typed without diacritics: "hoan" finds the Hoàngs, nothing else.
    assert!(hits("hoan").iter().all(|h| h.full_name.contains("Hoàng")));
    // The ID or phone number typed in full finds that resident alone.
    for (id, _, id_number, phone) in r.people.iter().step_by(997) {
        assert_eq!(
            hits(id_number).iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![*id]
        );
        let spaced = format!("{} {} {}", &phone[..4], &phone[4..7], &phone[7..]);
        assert_eq!(
            hits(&spaced).iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![*id]
        );
    }
}

fn all_of(r: &Roster, q: &str) -> Vec<String> {
    r.store
        .search_residents(q, 5_000)
        .unwrap()
        .into_iter()
        .map(|h| h.full_name)
        .collect()
}
