package vn.doorstep.demo.logic

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import vn.doorstep.core.AssistStep
import vn.doorstep.core.FailureReason
import vn.doorstep.core.Need
import vn.doorstep.core.VisitOutcome

/** A field day through the view models, offline, against the real core. */
class FieldDayTest {
    private val phone = Fixtures.Phone()

    private fun today() = TodayViewModel(phone.store, phone.sessions).apply { refresh() }.state
    private fun needsHelp() = NeedsHelpViewModel(phone.store, phone.sessions).apply { refresh() }.state
    private fun household(code: String) = HouseholdViewModel(
        phone.store,
        phone.sessions,
        today().households.single { it.code == code }.id,
    ).apply { refresh() }

    private fun TodayState.day(metric: Metric) = progress!!.day.single { it.first == metric }.second
    private fun TodayState.campaign(metric: Metric) = progress!!.campaign.single { it.first == metric }.second

    @Test
    fun `today lists the officer's households and the campaign's progress`() {
        val s = today()
        assertNull(s.error)
        assertEquals(phone.store.today(), s.day)
        assertEquals(listOf("HH001", "HH002"), s.households.map { it.code }.sorted())
        assertEquals(0, s.visitedToday)
        assertEquals(4L, s.residentsNeedingHelp)
        val p = assertNotNull(s.progress)
        assertEquals(Fixtures.CAMPAIGN_NAME, p.campaignName)
        assertEquals(Metric.values().toList(), p.day.map { it.first })
        assertEquals(Meter(0, 0), s.day(Metric.VISITS))
    }

    @Test
    fun `a visit and an assistance step show in today's progress and the needs`() {
        val hh = household("HH001")
        assertEquals(setOf("Nguyễn Văn A", "Trần Thị Bình"), hh.state.residents.map { it.fullName }.toSet())
        hh.recordVisit(VisitOutcome.MET)
        assertNull(hh.state.error)
        assertTrue(hh.state.lastRecorded is Recorded.Visit)

        val an = hh.state.residents.single { it.fullName == "Nguyễn Văn A" }
        assertEquals(Need.NO_ACCOUNT, an.need)
        assertEquals(AssistStep.LEVEL1_ACTIVATED, suggestedSteps(an.need)[1])
        hh.recordAssist(an.id, AssistStep.LEVEL1_ACTIVATED)
        assertNull(hh.state.error)
        // The refreshed household shows the resident's next need.
        assertEquals(Need.LEVEL2_TO_TAKE, hh.state.residents.single { it.id == an.id }.need)

        val s = today()
        assertEquals(1, s.visitedToday)
        assertTrue(s.households.single { it.code == "HH001" }.visitedToday)
        assertEquals(1L, s.day(Metric.VISITS).done)
        assertEquals(1L, s.day(Metric.LEVEL1_ACTIVATED).done)
        assertEquals(1L, s.campaign(Metric.LEVEL1_ACTIVATED).done)
        assertEquals(0L, s.day(Metric.LEVEL2_RECEIVED).done)

        val needs = needsHelp()
        assertEquals(4, needs.total)
        val byNeed = needs.sections.associate { it.need to it.residents.map { r -> r.fullName } }
        assertEquals(listOf("Nguyễn Văn A"), byNeed[Need.LEVEL2_TO_TAKE])
        assertEquals(listOf("Trần Thị Bình"), byNeed[Need.LEVEL1_PENDING])
        assertEquals(listOf("Đặng Thị Đào", "Đặng Văn Đức"), byNeed[Need.NO_ACCOUNT])
        // Sections follow the path to an account.
        assertEquals(needs.sections.map { it.need }, needs.sections.map { it.need }.sortedBy { it.ordinal })
    }

    @Test
    fun `undo retracts the last step`() {
        val hh = household("HH002")
        val dao = hh.state.residents.single { it.fullName == "Đặng Thị Đào" }
        hh.recordAssist(dao.id, AssistStep.LEVEL1_ACTIVATED)
        assertEquals(1L, today().day(Metric.LEVEL1_ACTIVATED).done)
        hh.undoLast()
        assertTrue(hh.state.undone)
        assertNull(hh.state.error)
        assertEquals(0L, today().day(Metric.LEVEL1_ACTIVATED).done)
        assertEquals(Need.NO_ACCOUNT, hh.state.residents.single { it.id == dao.id }.need)
        hh.undoLast() // a second undo does nothing
        assertNull(hh.state.error)
    }

    @Test
    fun `a failed step is a blocker, and input the core refuses names its field`() {
        val hh = household("HH001")
        val binh = hh.state.residents.single { it.fullName == "Trần Thị Bình" }
        hh.recordAssist(binh.id, AssistStep.LEVEL1_ACTIVATED, failure = FailureReason.OTP_NOT_RECEIVED)
        assertNull(hh.state.error)
        val blockers = needsHelp().blockers
        val otp = blockers.single { it.reason == FailureReason.OTP_NOT_RECEIVED }
        assertEquals(1L, otp.residents)
        assertEquals(1L, otp.attempts)
        assertEquals(Need.LEVEL1_PENDING, hh.state.residents.single { it.id == binh.id }.need)

        // A level-2 application needs the receiving point.
        hh.recordAssist(binh.id, AssistStep.LEVEL2_RECEIVED, receivingPoint = " ")
        assertEquals(UiError(Problem.INVALID_INPUT, "receiving_point"), hh.state.error)
        hh.recordAssist(binh.id, AssistStep.LEVEL2_RECEIVED, receivingPoint = "Điểm tiếp nhận lưu động phường Đô Vinh")
        assertNull(hh.state.error)
        assertEquals(1L, today().day(Metric.LEVEL2_RECEIVED).done)
    }

    @Test
    fun `come back tomorrow records a revisit, a bare come-back is refused`() {
        val hh = household("HH002")
        hh.recordVisit(VisitOutcome.COME_BACK)
        assertEquals(UiError(Problem.INVALID_INPUT, "revisit_at"), hh.state.error)
        assertNull(hh.state.lastRecorded)
        hh.comeBackTomorrow()
        assertNull(hh.state.error)
        val row = today().households.single { it.code == "HH002" }
        assertEquals(VisitOutcome.COME_BACK, row.lastVisitOutcome)
        assertNotNull(row.revisitAtMs)
    }

    @Test
    fun `search folds diacritics in the core, exact matches first`() {
        val search = SearchViewModel(phone.store)
        search.search("dang thi dao")
        assertEquals(listOf("Đặng Thị Đào"), search.state.hits.map { it.fullName })
        assertNull(search.state.error)

        search.search("Đặng")
        assertEquals(setOf("Đặng Thị Đào", "Đặng Văn Đức"), search.state.hits.map { it.fullName }.toSet())
        assertTrue(search.state.hits.all { it.exact })

        search.search("nguyen van a")
        val an = search.state.hits.single()
        assertEquals("Nguyễn Văn A", an.fullName)
        assertFalse(an.exact)
        assertEquals("1975-03-12", an.birthDate)

        search.search("   ")
        assertTrue(search.state.hits.isEmpty())
        search.search("không có ai tên này")
        assertTrue(search.state.hits.isEmpty())
        assertNull(search.state.error)
    }

    @Test
    fun `no running campaign on the phone means no progress, not an error`() {
        val dir = Fixtures.tempDir("doorstep-android-empty")
        val store = vn.doorstep.core.FieldStore.open(java.io.File(dir, "phone.db").path, Fixtures.key)
        val sessions = MemorySessionStore()
        val vm = TodayViewModel(store, sessions)
        vm.refresh()
        assertEquals(UiError(Problem.NOT_ENROLLED), vm.state.error)

        sessions.saveSession(Session("http://127.0.0.1:9", vn.doorstep.core.newId(), "d", "t"))
        vm.refresh()
        assertNull(vm.state.error)
        assertTrue(vm.state.loaded)
        assertTrue(vm.state.households.isEmpty())
        assertNull(vm.state.progress)
    }

    @Test
    fun `observers see every state change`() {
        val vm = SearchViewModel(phone.store)
        val seen = mutableListOf<SearchState>()
        val stop = vm.observe { seen.add(it) }
        vm.search("dao")
        stop()
        vm.search("binh")
        assertEquals(2, seen.size) // the initial state, then the search; none after stop
        assertEquals("dao", seen[1].query)
        assertEquals(1, seen[1].hits.size)
    }
}
