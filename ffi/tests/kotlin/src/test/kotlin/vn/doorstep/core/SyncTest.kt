package vn.doorstep.core

import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * Two phones and a real `doorstep serve` process. The server is prepared with the `doorstep`
 * console (units, officers, enrolment codes); province command's phone then adds the village,
 * the campaign, the roster and the field officer's assignment through the bindings and pushes
 * them, the field officer's phone pulls its area, works, pushes, and the command phone sees the
 * field officer's visit and assistance step arrive.
 */
class SyncTest {
    private val dir: File = Files.createTempDirectory("doorstep-kt-sync").toFile()
    private val server = TestServer(dir)

    @AfterTest
    fun stop() = server.stop()

    private fun doorstep(vararg args: String): String = server.doorstep(*args)

    private fun serve(): String = server.serve()

    private class Progress : SyncListener {
        val seen = CopyOnWriteArrayList<SyncProgress>()
        override fun onProgress(progress: SyncProgress) {
            seen.add(progress)
        }
    }

    private class Log : LogSink {
        val lines = CopyOnWriteArrayList<String>()
        override fun log(level: LogLevel, target: String, line: String) {
            lines.add("$level $target $line")
        }
    }

    /**
     * Province command's phone on a running server at [url] (enrolled with [leadCode]): the village, the campaign and the roster, with each of [fields] assigned to
     * the village, pushed to the server.
     */
    private fun commandPhone(url: String, leadCode: String, vararg fields: String) {
        val c = FieldStore.open(File(dir, "command.db").path, Fixtures.key)
        val cToken = c.enrol(url, leadCode, "command phone").token
        c.sync(url, cToken, null)
        c.importUnitsCsv(Fixtures.villagesCsv)
        c.sync(url, cToken, null)
        val campaign = Fixtures.campaign(c)
        c.putCampaign(campaign)
        c.importRoster(campaign.id, Fixtures.roster)
        for (f in fields) c.assignVillage(f, Fixtures.VILLAGE)
        assertTrue(c.sync(url, cToken, null).refused.isEmpty())
    }

    @Test
    fun `a second device's changes arrive after both sync`() {
        doorstep("units", "import", Fixtures.unitsCsv.path)
        // Units and campaigns are province command's (the server refuses them from a commune
        // lead's phone, docs/sync-protocol.md "Authority"): the first phone is the province's.
        val lead = doorstep("officer", "add", "--name", "Trực ban Công an tỉnh", "--role", "province", "--unit", "58")
        val field = doorstep("officer", "add", "--name", "CSKV Trần Văn Bình", "--role", "field", "--unit", Fixtures.COMMUNE)
        val leadCode = doorstep("enrol-code", "--officer", lead)
        val fieldCode = doorstep("enrol-code", "--officer", field)
        val url = serve()
        val log = Log()
        setLogSink(log)

        // Province command's phone: a village, the campaign and the roster, pushed to the server.
        val a = FieldStore.open(File(dir, "lead.db").path, Fixtures.key)
        val aToken = a.enrol(url, leadCode, "command phone").token
        assertEquals(0, a.sync(url, aToken, null).refused.size)
        a.importUnitsCsv(Fixtures.villagesCsv)
        assertEquals(0, a.sync(url, aToken, null).refused.size) // the village, before what is filed under it
        val campaign = Fixtures.campaign(a)
        a.putCampaign(campaign)
        assertEquals(3L, a.importRoster(campaign.id, Fixtures.roster).accepted)
        a.assignVillage(field, Fixtures.VILLAGE)
        val pushedByLead = a.sync(url, aToken, null)
        assertTrue(pushedByLead.refused.isEmpty(), "refused: ${pushedByLead.refused}")
        assertTrue(pushedByLead.pushed >= 5L, "pushed ${pushedByLead.pushed}")

        // The field officer's phone: enrol, pull the area, work, push.
        val b = FieldStore.open(File(dir, "field.db").path, Fixtures.key)
        val enrolment = b.enrol(url, fieldCode, "field phone")
        assertEquals(field, enrolment.officerId)
        val progress = Progress()
        val pulled = b.sync(url, enrolment.token, progress)
        assertTrue(pulled.pulled > 0L)
        assertTrue(progress.seen.any { it is SyncProgress.Pulled })
        val day = b.today()
        val households = b.myHouseholds(field, day)
        assertEquals(setOf("HH001", "HH002"), households.map { it.code }.toSet())
        b.recordVisit(NewVisit(households.first { it.code == "HH001" }.id, field, VisitOutcome.MET))
        val an = b.searchResidents("nguyen van a", 5).single()
        b.recordAssist(NewAssist(an.id, field, AssistStep.LEVEL1_ACTIVATED))
        val pushed = b.sync(url, enrolment.token, progress)
        assertEquals(2L, pushed.pushed)
        assertTrue(pushed.refused.isEmpty())
        assertTrue(progress.seen.any { it is SyncProgress.Pushed })

        // Back on the command phone: nothing yet, then the field officer's work arrives.
        assertEquals(0L, a.progress(field, campaign.id, day).day.visits)
        val arrived = a.sync(url, aToken, null)
        assertEquals(2L, arrived.pulled)
        val seen = a.progress(field, campaign.id, day)
        assertEquals(1L, seen.day.visits)
        assertEquals(1L, seen.day.level1Activated)
        assertTrue(a.myHouseholds(field, day).first { it.code == "HH001" }.visitedToday)
        assertEquals(Need.LEVEL2_TO_TAKE, a.searchResidents("Nguyễn Văn A", 1).single().need)

        // The log saw sync events with counts, never a token.
        assertTrue(log.lines.any { "sync finished" in it }, "log: ${log.lines}")
        assertTrue(log.lines.none { aToken in it || enrolment.token in it })
        clearLogSink()

        // A token the server does not know asks the app to enrol again.
        val e = runCatching { b.sync(url, "not-a-token", null) }.exceptionOrNull()
        assertTrue(e is DoorstepException.ReEnrol, "got $e")
    }

    /**
     * Two field phones of one village meet without coverage: one gives its work to the other
     * through [PeerExchange] (the test moves the bytes, as an app would over Bluetooth), and
     * the second phone's sync delivers both phones' work; the first phone's own sync then has
     * nothing left to push.
     */
    @Test
    fun `work given phone to phone reaches the server with the phone that syncs`() {
        doorstep("units", "import", Fixtures.unitsCsv.path)
        val lead = doorstep("officer", "add", "--name", "Trực ban Công an tỉnh", "--role", "province", "--unit", "58")
        val one = doorstep("officer", "add", "--name", "CSKV Trần Văn Bình", "--role", "field", "--unit", Fixtures.COMMUNE)
        val two = doorstep("officer", "add", "--name", "CSKV Lê Thị Hoa", "--role", "field", "--unit", Fixtures.COMMUNE)
        val leadCode = doorstep("enrol-code", "--officer", lead)
        val oneCode = doorstep("enrol-code", "--officer", one)
        val twoCode = doorstep("enrol-code", "--officer", two)
        val url = serve()

        commandPhone(url, leadCode, one, two)

        val a = FieldStore.open(File(dir, "one.db").path, Fixtures.key)
        val aToken = a.enrol(url, oneCode, "phone one").token
        val b = FieldStore.open(File(dir, "two.db").path, Fixtures.key)
        val bToken = b.enrol(url, twoCode, "phone two").token
        a.sync(url, aToken, null)
        b.sync(url, bToken, null)

        // Without coverage: phone one works.
        val day = a.today()
        val hh = a.myHouseholds(one, day).first { it.code == "HH001" }
        a.recordVisit(NewVisit(hh.id, one, VisitOutcome.MET))
        assertEquals(1L, a.syncStatus(url).unsentOps)

        // The phones meet: the app moves bytes until both are done.
        val x = PeerExchange(a)
        val y = PeerExchange(b)
        var toY = listOf(x.start())
        var toX = listOf(y.start())
        var rounds = 0
        while (!(x.isDone() && y.isDone())) {
            rounds += 1
            assertTrue(rounds < 20, "the exchange does not end")
            val nextY = toX.flatMap { x.receive(it) }
            val nextX = toY.flatMap { y.receive(it) }
            toY = nextY
            toX = nextX
        }
        assertEquals(1L, x.report().opsSent)
        assertEquals(1L, y.report().opsNew)
        assertTrue(y.report().refused.isEmpty())
        assertTrue(b.myHouseholds(two, day).first { it.code == "HH001" }.visitedToday)

        // Phone two reaches coverage: phone one's visit goes with it.
        val delivered = b.sync(url, bToken, null)
        assertEquals(1L, delivered.relayed)
        assertTrue(delivered.refused.isEmpty())
        val later = a.sync(url, aToken, null)
        assertEquals(0L, later.pushed)
        assertEquals(0L, later.pushDuplicates)
        assertEquals(0L, a.syncStatus(url).unsentOps)
    }

    /**
     * A new officer's phone at a station with a slow link: the station writes the phone's whole
     * area to a file (`doorstep bundle area`), the phone opens it with [FieldStore.importAreaBundle]
     * and shows its households before any sync; its first sync then brings nothing twice.
     */
    @Test
    fun `a new phone takes its whole area from a file the station made`() {
        doorstep("units", "import", Fixtures.unitsCsv.path)
        val lead = doorstep("officer", "add", "--name", "Trực ban Công an tỉnh", "--role", "province", "--unit", "58")
        val field = doorstep("officer", "add", "--name", "CSKV Trần Văn Bình", "--role", "field", "--unit", Fixtures.COMMUNE)
        val leadCode = doorstep("enrol-code", "--officer", lead)
        val fieldCode = doorstep("enrol-code", "--officer", field)
        val url = serve()

        commandPhone(url, leadCode, field)

        val b = FieldStore.open(File(dir, "new.db").path, Fixtures.key)
        val enrolment = b.enrol(url, fieldCode, "new phone")
        val file = File(dir, "area.bundle")
        doorstep("bundle", "area", "--device", enrolment.deviceId, "--out", file.path)
        val imported = b.importAreaBundle(file.readBytes(), url)
        assertTrue(imported.applied > 0L && imported.duplicates == 0L, "$imported")
        val day = b.today()
        assertEquals(setOf("HH001", "HH002"), b.myHouseholds(field, day).map { it.code }.toSet())
        // The same file again: nothing more. The first sync: nothing pulled twice.
        assertEquals(0L, b.importAreaBundle(file.readBytes(), url).applied)
        val first = b.sync(url, enrolment.token, null)
        assertEquals(0L, first.pullDuplicates)
        // A bent file is refused, naming the bundle.
        val bent = file.readBytes().also { it[it.size / 2] = (it[it.size / 2].toInt() xor 1).toByte() }
        val e = runCatching { b.importAreaBundle(bent, url) }.exceptionOrNull()
        assertTrue(e is DoorstepException.InvalidInput && e.field == "bundle", "got $e")
    }
}
