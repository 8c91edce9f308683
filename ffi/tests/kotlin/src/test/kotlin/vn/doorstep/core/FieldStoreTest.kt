package vn.doorstep.core

import java.nio.file.Files
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** The local surface on the JVM: a field day on one phone, no server. */
class FieldStoreTest {
    private val dir = Files.createTempDirectory("doorstep-kt").toFile()

    private fun openField(): Triple<FieldStore, String, String> {
        val store = FieldStore.open(dir.resolve("phone.db").path, Fixtures.key)
        assertTrue(store.importUnitsCsv(Fixtures.unitsCsv.readText()).rejected.isEmpty())
        assertEquals(1L, store.importUnitsCsv(Fixtures.villagesCsv).accepted)
        val campaign = Fixtures.campaign(store)
        store.putCampaign(campaign)
        val officer = newId()
        store.putOfficer(Officer(officer, "CSKV Trần Văn Bình", Role.FIELD, Fixtures.COMMUNE))
        store.assignVillage(officer, Fixtures.VILLAGE)
        val report = store.importRoster(campaign.id, Fixtures.roster)
        assertEquals(3L, report.accepted)
        assertEquals(2L, report.householdsChanged)
        assertTrue(report.rejected.isEmpty())
        return Triple(store, officer, campaign.id)
    }

    @Test
    fun `the store is encrypted - a wrong key is typed, and the key can be changed`() {
        val (store, _, _) = openField()
        assertTrue(store.isEncrypted())
        val path = dir.resolve("phone.db").path
        val newKey = ByteArray(32) { 42 }
        store.rekey(newKey)
        store.close()
        val wrong = assertFailsWith<DoorstepException.WrongKey> { FieldStore.open(path, Fixtures.key) }
        assertEquals("key", wrong.field)
        assertFailsWith<DoorstepException.WrongKey> { FieldStore.open(path, null) }
        assertFailsWith<DoorstepException.InvalidInput> { FieldStore.open(path, ByteArray(16)) }
        val again = FieldStore.open(path, newKey)
        assertEquals(1, again.searchResidents("nguyen van a", 10).size)
        again.close()
        val bytes = java.io.File(path).readBytes()
        assertFalse(String(bytes, Charsets.ISO_8859_1).contains("SQLite format 3"))
    }

    @Test
    fun `a field day - visits, assistance steps, progress and search`() {
        val (store, officer, campaign) = openField()
        val day = store.today()
        val households = store.myHouseholds(officer, day)
        assertEquals(setOf("HH001", "HH002"), households.map { it.code }.toSet())
        val hh1 = households.first { it.code == "HH001" }
        val hh2 = households.first { it.code == "HH002" }

        store.recordVisit(NewVisit(householdId = hh1.id, officerId = officer, outcome = VisitOutcome.MET))
        val comeBack = System.currentTimeMillis() + 3_600_000
        store.recordVisit(
            NewVisit(hh2.id, officer, VisitOutcome.COME_BACK, revisitAtMs = comeBack, note = "đi làm rẫy"),
        )

        val an = store.searchResidents("nguyen van a", 10).single()
        assertEquals("Nguyễn Văn A", an.fullName)
        assertEquals(Need.NO_ACCOUNT, an.need)
        store.recordAssist(NewAssist(an.id, officer, AssistStep.LEVEL1_ACTIVATED))
        val binh = store.searchResidents("Trần Thị Bình", 10).first()
        assertTrue(binh.exact)
        store.recordAssist(
            NewAssist(binh.id, officer, AssistStep.LEVEL1_ACTIVATED, failure = FailureReason.OTP_NOT_RECEIVED),
        )
        val dao = store.searchResidents("dang thi dao", 10).single()
        store.recordAssist(NewAssist(dao.id, officer, AssistStep.LEVEL2_RECEIVED, receivingPoint = "Công an phường Đô Vinh"))

        val after = store.myHouseholds(officer, day).associateBy { it.code }
        assertTrue(after.getValue("HH001").visitedToday)
        assertEquals(VisitOutcome.COME_BACK, after.getValue("HH002").lastVisitOutcome)
        assertEquals(comeBack, after.getValue("HH002").revisitAtMs)

        val progress = store.progress(officer, campaign, day)
        assertEquals(2L, progress.day.visits)
        assertEquals(1L, progress.day.level1Activated)
        assertEquals(1L, progress.day.level2Received)

        val blockers = store.blockers(officer).filter { it.attempts > 0 }
        assertEquals(FailureReason.OTP_NOT_RECEIVED, blockers.single().reason)
        assertEquals(1L, blockers.single().residents)
        val needs = store.residentsNeedingHelp(officer).associateBy { it.fullName }
        assertEquals(Need.LEVEL2_TO_TAKE, needs.getValue("Nguyễn Văn A").need)
        assertEquals(FailureReason.OTP_NOT_RECEIVED, needs.getValue("Trần Thị Bình").lastFailure)
        assertEquals(Need.LEVEL2_TO_ACTIVATE, needs.getValue("Đặng Thị Đào").need)
        store.destroy()
    }

    @Test
    fun `a retracted visit no longer counts`() {
        val (store, officer, campaign) = openField()
        val day = store.today()
        val hh = store.myHouseholds(officer, day).first()
        val visit = store.recordVisit(NewVisit(hh.id, officer, VisitOutcome.NOBODY_HOME))
        assertEquals(1L, store.progress(officer, campaign, day).day.visits)
        store.retract(visit, "nhầm hộ")
        assertEquals(0L, store.progress(officer, campaign, day).day.visits)
        assertFalse(store.myHouseholds(officer, day).first { it.id == hh.id }.visitedToday)
    }

    @Test
    fun `errors are actions, and never echo personal data`() {
        val (store, officer, _) = openField()
        val resident = store.searchResidents("Tran Thi Binh", 1).single()
        val bad = "0111222333"
        val e = assertFailsWith<DoorstepException.InvalidInput> { store.editResidentPhone(resident.id, bad) }
        assertEquals("phone", e.field)
        assertFalse(bad in (e.message ?: "") || bad in e.expected)
        assertEquals(1, store.editResidentPhone(resident.id, "0912 345 679"))

        val missing = assertFailsWith<DoorstepException.NotFound> {
            store.recordVisit(NewVisit(newId(), officer, VisitOutcome.MET))
        }
        assertEquals("household_id", missing.field)
        assertFailsWith<DoorstepException.InvalidInput> { store.myHouseholds("not-a-uuid", store.today()) }
    }
}
