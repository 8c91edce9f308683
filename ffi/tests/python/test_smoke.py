"""Smoke test of the generated Python bindings (not a second copy of the Rust tests).

Run after `scripts/bindings.sh` (or `--debug`), which puts `doorstep.py` and the library in
target/bindings/python; DOORSTEP_BINDINGS_DIR overrides where to look.
"""

import datetime
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BINDINGS = Path(os.environ.get("DOORSTEP_BINDINGS_DIR", ROOT / "target" / "bindings" / "python"))
if not (BINDINGS / "doorstep.py").exists():
    raise RuntimeError(f"no bindings in {BINDINGS}: run scripts/bindings.sh --debug first")
sys.path.insert(0, str(BINDINGS))

import doorstep  # noqa: E402

UNITS = (ROOT / "data" / "ninh-thuan-2023-units.csv").read_text(encoding="utf-8")
VILLAGES = "code,parent_code,level,kind,name\n22738-01,22738,village,khu phố,Khu phố 1\n"
ROSTER = """household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account
HH001,22738-01,12 Lê Lợi,Nguyễn Văn A,1975-03-12,nam,,0912345678,chủ hộ,
HH001,22738-01,12 Lê Lợi,Trần Thị Bình,1980,nữ,,,vợ,level1_pending
HH002,22738-01,5 Trần Phú,Đặng Thị Đào,1990,nữ,,,chủ hộ,
"""


# The tests' store key; an app's comes from the platform's key store, never from a file.
KEY = bytes(range(32))


@pytest.fixture()
def field(tmp_path):
    store = doorstep.FieldStore.open(str(tmp_path / "phone.db"), KEY)
    assert store.import_units_csv(UNITS).rejected == []
    assert store.import_units_csv(VILLAGES).accepted == 1
    today = datetime.date.fromisoformat(store.today())
    campaign = doorstep.new_id()
    store.put_campaign(
        doorstep.Campaign(
            id=campaign,
            name="Cao điểm 80 ngày đêm",
            start_date=str(today - datetime.timedelta(days=10)),
            end_date=str(today + datetime.timedelta(days=70)),
            target=264720,
            unit_code="58",
        )
    )
    officer = doorstep.new_id()
    store.put_officer(
        doorstep.Officer(id=officer, name="CSKV Trần Văn Bình", role=doorstep.Role.FIELD, unit_code="22738")
    )
    store.assign_village(officer, "22738-01")
    report = store.import_roster(campaign, ROSTER)
    assert (report.accepted, report.households_changed, report.rejected) == (3, 2, [])
    return store, officer, campaign


def test_visit_list_and_search(field):
    store, officer, campaign = field
    day = store.today()
    households = store.my_households(officer, day)
    assert [h.code for h in households] == ["HH001", "HH002"] or len(households) == 2
    hh = next(h for h in households if h.code == "HH001")
    visit = store.record_visit(
        doorstep.NewVisit(household_id=hh.id, officer_id=officer, outcome=doorstep.VisitOutcome.MET)
    )
    assert len(visit) == 36
    after = {h.code: h for h in store.my_households(officer, day)}
    assert after["HH001"].visited_today and not after["HH002"].visited_today
    assert after["HH001"].last_visit_outcome == doorstep.VisitOutcome.MET

    hits = store.search_residents("nguyen van a", 10)
    assert [h.full_name for h in hits] == ["Nguyễn Văn A"]
    assert store.search_residents("dang thi dao", 10)[0].full_name == "Đặng Thị Đào"

    store.record_assist(
        doorstep.NewAssist(
            resident_id=hits[0].id,
            officer_id=officer,
            step=doorstep.AssistStep.LEVEL1_ACTIVATED,
        )
    )
    progress = store.progress(officer, campaign, day)
    assert (progress.day.visits, progress.day.level1_activated) == (1, 1)


def test_invalid_phone_names_the_field_not_the_digits(field):
    store, _, _ = field
    resident = store.search_residents("Trần Thị Bình", 1)[0]
    bad = "0111222333"
    with pytest.raises(doorstep.DoorstepError.InvalidInput) as err:
        store.edit_resident_phone(resident.id, bad)
    assert err.value.field == "phone"
    assert bad not in str(err.value) and bad not in err.value.expected
    assert store.edit_resident_phone(resident.id, "0912 345 679") == 1


def test_unknown_id_is_not_found(field):
    store, officer, _ = field
    with pytest.raises(doorstep.DoorstepError.NotFound):
        store.record_visit(
            doorstep.NewVisit(
                household_id=doorstep.new_id(), officer_id=officer, outcome=doorstep.VisitOutcome.MET
            )
        )
    with pytest.raises(doorstep.DoorstepError.InvalidInput):
        store.my_households("not-a-uuid", store.today())


def test_sessions_and_outreach(field):
    store, officer, _campaign = field
    now_ms = int(datetime.datetime.now().timestamp() * 1000)
    session = store.record_session(
        doorstep.NewSession(
            unit_code="22738",
            officer_id=officer,
            kind=doorstep.SessionKind.MOBILE,
            place="Chợ Đô Vinh",
            starts_at_ms=now_ms,
            ends_at_ms=now_ms,
            applications=12,
        )
    )
    assert len(session) == 36
    meeting = store.record_outreach(
        doorstep.NewOutreach(
            unit_code="22738-01",
            officer_id=officer,
            kind=doorstep.OutreachKind.MEETING,
            place="Nhà văn hoá khu phố 1",
            people_reached=80,
        )
    )
    store.retract(meeting, "ghi trùng")
    # A session belongs to a commune: a village is refused, naming the field.
    with pytest.raises(doorstep.DoorstepError) as e:
        store.record_session(
            doorstep.NewSession(
                unit_code="22738-01",
                officer_id=officer,
                kind=doorstep.SessionKind.FIXED,
                place="Nhà văn hoá",
                starts_at_ms=now_ms,
                ends_at_ms=now_ms,
                applications=1,
            )
        )
    assert "unit_code" in str(e.value)


def test_a_wrong_key_is_typed_and_the_key_can_be_changed(tmp_path):
    path = str(tmp_path / "phone.db")
    store = doorstep.FieldStore.open(path, KEY)
    assert store.is_encrypted()
    assert store.import_units_csv(UNITS).rejected == []
    new_key = bytes([42] * 32)
    store.rekey(new_key)
    del store  # the last reference: the handle closes
    with pytest.raises(doorstep.DoorstepError.WrongKey) as e:
        doorstep.FieldStore.open(path, KEY)
    assert e.value.field == "key"
    with pytest.raises(doorstep.DoorstepError.WrongKey):
        doorstep.FieldStore.open(path, None)
    with pytest.raises(doorstep.DoorstepError.InvalidInput):
        doorstep.FieldStore.open(path, b"short")
    again = doorstep.FieldStore.open(path, new_key)
    assert again.is_encrypted()
    with open(path, "rb") as f:
        assert b"SQLite format 3" not in f.read()
