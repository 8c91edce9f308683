package vn.doorstep.core

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * The surface as a Kotlin developer meets it (issue #16): suspend functions that cancel
 * cleanly, signed types only, typed errors for a closed store, a refused code, a malformed
 * address and a missing file, and a roster imported from a file with progress.
 */
class NativeApiTest {
    private val dir: File = Files.createTempDirectory("doorstep-kt-api").toFile()
    private val server = TestServer(dir)

    @AfterTest
    fun stop() = server.stop()

    private val families = listOf("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng")
    private val middles = listOf("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Đức")
    private val givens = listOf("An", "Bình", "Cường", "Dũng", "Hòa", "Lan", "Mai", "Nam", "Oanh", "Phúc", "Quang", "Sơn")

    /** A roster of `households` households of three residents each in [Fixtures.VILLAGE]. */
    private fun roster(households: Int): String = buildString {
        append("household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account\n")
        for (h in 0 until households) {
            for (r in 0 until 3) {
                val i = h * 3 + r
                val name = "${families[i % 8]} ${middles[(i / 8) % 6]} ${givens[(i / 48) % 12]}"
                val relation = if (r == 0) "chủ hộ" else "con"
                append("H${"%04d".format(h)},${Fixtures.VILLAGE},${h + 1} Lê Lợi,$name,${1950 + r * 20 + h % 20},nam,,,$relation,\n")
            }
        }
    }

    /** A server with a field officer assigned the village of a 600-resident roster. */
    private fun campaignServer(): Pair<String, String> {
        server.doorstep("units", "import", Fixtures.unitsCsv.path)
        server.doorstep("units", "add", "--code", Fixtures.VILLAGE, "--parent", Fixtures.COMMUNE,
            "--level", "village", "--kind", "khu phố", "--name", "Khu phố 1")
        val campaign = server.doorstep("campaign", "add", "--name", "Cao điểm 80 ngày đêm",
            "--start", "2026-01-01", "--end", "2027-12-31", "--target", "1000", "--unit", "58")
        val officer = server.doorstep("officer", "add", "--name", "CSKV Trần Văn Bình",
            "--role", "field", "--unit", Fixtures.COMMUNE)
        server.doorstep("assign", "--officer", officer, "--village", Fixtures.VILLAGE)
        val file = File(dir, "roster.csv").apply { writeText(roster(200)) }
        server.doorstep("roster", "import", "--campaign", campaign, file.path)
        val code = server.doorstep("enrol-code", "--officer", officer)
        return server.serve() to code
    }

    @Test
    fun `a cancelled syncAsync keeps whole pages and the next sync takes up from there`() = runBlocking {
        val (url, code) = campaignServer()
        val phone = FieldStore.open(File(dir, "phone.db").path, Fixtures.key)
        val token = phone.enrolAsync(url, code, "field phone").token
        val heldBefore = phone.syncStatus(url).opsHeld

        // Cancel the coroutine as the first page (500 operations) is applied; the listener then
        // holds the sync's thread a moment, so the cancellation reaches it before the next page.
        val cancelled = AtomicBoolean(false)
        lateinit var job: kotlinx.coroutines.Job
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                if (progress is SyncProgress.Pulled && cancelled.compareAndSet(false, true)) {
                    job.cancel()
                    Thread.sleep(500)
                }
            }
        }
        job = launch(Dispatchers.IO, start = CoroutineStart.LAZY) {
            phone.syncAsync(url, token, listener)
            fail("the sync was cancelled and must not complete")
        }
        job.start()
        job.join()
        assertTrue(job.isCancelled)
        assertTrue(cancelled.get())
        Thread.sleep(300) // the sync's thread winds down after the listener returns
        val held = phone.syncStatus(url).opsHeld - heldBefore
        assertEquals(500L, held, "exactly the first page, applied with its cursor")

        // The next sync waits for the cancelled one's thread, then pulls the rest, once.
        val rest = phone.sync(url, token, null)
        assertEquals(0L, rest.pullDuplicates, "nothing pulled twice")
        assertTrue(rest.pulled > 0)
        val total = phone.syncStatus(url).opsHeld - heldBefore
        assertEquals(held + rest.pulled, total)
        assertEquals(0L, phone.syncStatus(url).unsentOps)
        phone.close()
    }

    @Test
    fun `errors are typed - a refused code, a malformed address, a deadline, a closed store`() = runBlocking {
        val (url, _) = campaignServer()
        val phone = FieldStore.open(File(dir, "phone.db").path, Fixtures.key)

        val refused = assertFailsWith<DoorstepException.CodeRefused> { phone.enrolAsync(url, "WRONG-CODE", "p") }
        assertEquals(CodeRefusal.UNKNOWN, refused.reason)

        for (bad in listOf("ftp://127.0.0.1", "127.0.0.1:8080", "")) {
            val e = assertFailsWith<DoorstepException.InvalidInput> { phone.enrol(bad, "ABCD", "p") }
            assertEquals("server_url", e.field)
        }
        assertEquals("deadline_ms", assertFailsWith<DoorstepException.InvalidInput> {
            phone.sync(url, "t", null, deadlineMs = 0)
        }.field)

        // A closed port: three attempts within the deadline, well under the old 15.5 s.
        val closed = "http://127.0.0.1:${ServerSocket(0).use { it.localPort }}"
        val started = System.nanoTime()
        assertFailsWith<DoorstepException.Network> { phone.enrol(closed, "ABCD", "p", deadlineMs = 1_000) }
        assertTrue((System.nanoTime() - started) / 1_000_000 < 3_000, "the deadline held")

        // A missing file names the parameter, not the path.
        val missing = assertFailsWith<DoorstepException.InvalidInput> {
            phone.importRosterFile(newId(), File(dir, "Nguyễn Văn A.csv").path)
        }
        assertTrue(missing.field == "campaign_id" || missing.field == "path")

        phone.close()
        val e = assertFailsWith<DoorstepException.Closed> { phone.today() }
        assertFalse(e.message.orEmpty().contains(dir.path))
    }

    @Test
    fun `a store error does not name the file`() {
        // A parent that is a file: no store can be made there.
        File(dir, "no-such-dir").writeText("a file, not a directory")
        val path = File(dir, "no-such-dir/Nguyễn Văn A/phone.db").path
        val e = assertFailsWith<DoorstepException.Storage> { FieldStore.open(path, null) }
        assertFalse(e.message.orEmpty().contains("no-such-dir"), "got ${e.message}")
        assertFalse(e.detail.contains("Nguyễn"), "got ${e.detail}")
    }

    @Test
    fun `a roster file imports with progress and a unit can be added by itself`() = runBlocking {
        val store = FieldStore.open(File(dir, "lead.db").path, null)
        store.importUnitsCsv(Fixtures.unitsCsv.readText())
        assertTrue(store.putUnit(AdminUnit(Fixtures.VILLAGE, Fixtures.COMMUNE, UnitLevel.VILLAGE, "khu phố", "Khu phố 1")) > 0)
        assertEquals(0, store.putUnit(AdminUnit(Fixtures.VILLAGE, Fixtures.COMMUNE, UnitLevel.VILLAGE, "khu phố", "Khu phố 1")))
        val badLevel = assertFailsWith<DoorstepException.InvalidInput> {
            store.putUnit(AdminUnit("22738-02", "58", UnitLevel.VILLAGE, "khu phố", "Khu phố 2"))
        }
        assertTrue(badLevel.field.isNotEmpty())
        val campaign = Fixtures.campaign(store)
        store.putCampaign(campaign)

        val file = File(dir, "roster.csv").apply { writeText(roster(800)) }
        val seen = CopyOnWriteArrayList<ImportProgress>()
        val listener = object : ImportListener {
            override fun onProgress(progress: ImportProgress) {
                seen.add(progress)
            }
        }
        val report = async(Dispatchers.IO) { store.importRosterFileAsync(campaign.id, file.path, listener) }.await()
        assertEquals(2400L, report.rows)
        assertEquals(2400L, report.accepted, "rejected: ${report.rejected.take(3)}")
        assertTrue(seen.size >= 3, "progress every 1,000 rows and at the end: $seen")
        assertEquals(file.length(), seen.last().bytesTotal)
        assertEquals(2400L, seen.last().rowsRead)
        // Again: nothing changes.
        assertEquals(2400L, store.importRosterFile(campaign.id, file.path).unchanged)
        store.close()
    }

    @Test
    fun `the generated Kotlin has no unsigned types in its public API`() {
        val bindings = System.getProperty("doorstep.bindings") ?: fail("-Ddoorstep.bindings is not set")
        val source = File(bindings, "vn/doorstep/core/doorstep.kt").readText()
        // The API's types are written qualified (kotlin.Long); the runtime's own converters use
        // bare ULong internally, which no caller sees.
        val unsigned = Regex("""kotlin\.U(Int|Long|Short|Byte)\b""").findAll(source).map { it.value }.toList()
        assertEquals(emptyList(), unsigned)
        for (f in listOf("syncAsync", "enrolAsync", "importRosterFileAsync")) {
            assertTrue(Regex("""suspend fun `$f`""").containsMatchIn(source), "$f is a suspend function")
        }
    }
}
