package vn.doorstep.demo.logic

import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.util.concurrent.TimeUnit
import com.sun.net.httpserver.HttpsConfigurator
import com.sun.net.httpserver.HttpsServer
import java.io.FileInputStream
import java.net.InetSocketAddress
import java.security.KeyStore
import java.security.cert.X509Certificate
import java.util.concurrent.atomic.AtomicInteger
import javax.net.ssl.KeyManagerFactory
import javax.net.ssl.SSLContext
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import vn.doorstep.core.AssistStep
import vn.doorstep.core.FieldStore
import vn.doorstep.core.HttpAnswer
import vn.doorstep.core.HttpHeader
import vn.doorstep.core.HttpTransport
import vn.doorstep.core.VisitOutcome

/**
 * Enrolment and sync through the view models against a real `doorstep serve` process: the
 * province command's phone pushes the area, the field phone enrols with a code through
 * [EnrolViewModel], pulls with [SyncController], works offline through the screens' view models,
 * pushes, and reports a network failure once the server is gone — all of it over the
 * platform's HTTP stack ([PlatformHttp]), as the app does. A server whose certificate the
 * platform does not trust is refused at once, without retries.
 */
class EnrolAndSyncTest {
    private val dir: File = Fixtures.tempDir("doorstep-android-sync")
    private val bin: String = System.getProperty("doorstep.bin") ?: fail("-Ddoorstep.bin is not set")
    private val db = File(dir, "server.db").path
    private var server: Process? = null

    @AfterTest
    fun stop() {
        stopServer()
    }

    private fun stopServer() {
        server?.destroy()
        server?.waitFor(10, TimeUnit.SECONDS)
        server?.destroyForcibly()
    }

    private fun doorstep(vararg args: String): String {
        val err = File(dir, "console.err")
        val p = ProcessBuilder(listOf(bin, "--db", db) + args).redirectError(err).start()
        val out = p.inputStream.bufferedReader().readText().trim()
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            fail("doorstep ${args.first()} failed: ${err.readText()}")
        }
        return out
    }

    private fun serve(): String {
        val port = ServerSocket(0).use { it.localPort }
        val log = File(dir, "server.log")
        server = ProcessBuilder(bin, "--db", db, "serve", "--listen", "127.0.0.1:$port")
            .redirectErrorStream(true)
            .redirectOutput(log)
            .start()
        val url = "http://127.0.0.1:$port"
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < deadline) {
            if (server?.isAlive != true) fail("the server exited: ${log.readText()}")
            try {
                val c = URI("$url/health").toURL().openConnection() as HttpURLConnection
                c.connectTimeout = 500
                if (c.responseCode == 200) return url
            } catch (_: Exception) {
            }
            Thread.sleep(100)
        }
        fail("the server did not become healthy: ${log.readText()}")
    }

    @Test
    fun `enrol validates its input before going online`() {
        val store = FieldStore.open(File(dir, "phone.db").path, Fixtures.key)
        val sessions = MemorySessionStore()
        val vm = EnrolViewModel(store, sessions, "test phone")
        vm.enrol(" ", "ABC")
        assertEquals(UiError(Problem.REQUIRED, "server_url"), vm.state.error)
        vm.enrol("ftp://station.example", "ABC")
        assertEquals(UiError(Problem.BAD_URL, "server_url"), vm.state.error)
        vm.enrol("http://127.0.0.1:9", "  ")
        assertEquals(UiError(Problem.REQUIRED, "code"), vm.state.error)
        // Cleartext HTTP only to the phone itself: residents' data never crosses a network in
        // clear; https:// anywhere.
        for (clear in listOf("http://192.168.1.10:8080", "http://station.example", "HTTP://10.0.2.2:8080")) {
            vm.enrol(clear, "ABC")
            assertEquals(UiError(Problem.CLEARTEXT, "server_url"), vm.state.error, clear)
        }
        for (ok in listOf("https://station.example", "http://localhost:9", "http://[::1]:9", "http://127.0.0.1:9")) {
            assertNull(ServerAddress.problem(ok), ok)
        }
        assertFalse(vm.state.enrolled)
        assertNull(sessions.session())

        // Not enrolled: a sync does nothing and says why.
        val sync = SyncController(store, sessions) { 42L }
        assertEquals(AfterSync.DONE, sync.syncNow())
        assertEquals(LastSync(42L, Problem.NOT_ENROLLED), sessions.lastSync())
        // A session with a cleartext address to another machine (an older app's) is not used.
        sessions.saveSession(Session("http://192.168.1.10:8080", "o", "d", "t"))
        assertEquals(AfterSync.DONE, sync.syncNow())
        assertEquals(LastSync(42L, Problem.CLEARTEXT), sessions.lastSync())
    }

    @Test
    fun `a field phone enrols, pulls its area, works offline and pushes`() {
        doorstep("units", "import", Fixtures.unitsCsv.path)
        // Units and campaigns are province command's (docs/sync-protocol.md "Authority").
        val lead = doorstep("officer", "add", "--name", "Trực ban Công an tỉnh", "--role", "province", "--unit", "58")
        val field = doorstep("officer", "add", "--name", "CSKV Trần Văn Bình", "--role", "field", "--unit", Fixtures.COMMUNE)
        val leadCode = doorstep("enrol-code", "--officer", lead)
        val fieldCode = doorstep("enrol-code", "--officer", field)
        val url = serve()

        // Province command's phone adds the village, campaign, roster, assignment.
        val a = FieldStore.open(File(dir, "lead.db").path, Fixtures.key)
        val aToken = a.enrol(url, leadCode, "command phone").token
        a.sync(url, aToken, null)
        a.importUnitsCsv(Fixtures.villagesCsv)
        a.sync(url, aToken, null)
        val campaign = Fixtures.campaign(a)
        a.putCampaign(campaign)
        a.importRoster(campaign.id, Fixtures.roster)
        a.assignVillage(field, Fixtures.VILLAGE)
        assertTrue(a.sync(url, aToken, null).refused.isEmpty())

        // The field phone, as the app makes it: over the platform's HTTP stack (PlatformHttp),
        // every request counted. A wrong code first, then the right one.
        val store = FieldStore.open(File(dir, "field.db").path, Fixtures.key)
        val requests = AtomicInteger()
        store.useHttpTransport(counting(PlatformHttp(), requests))
        val sessions = MemorySessionStore()
        val enrol = EnrolViewModel(store, sessions, "field phone")
        enrol.enrol("$url/", "WRONG-CODE")
        assertEquals(UiError(Problem.CODE_UNKNOWN), enrol.state.error)
        assertFalse(enrol.state.enrolled)
        enrol.enrol("$url/", fieldCode)
        assertNull(enrol.state.error)
        assertTrue(enrol.state.enrolled)
        val session = assertNotNull(sessions.session())
        assertEquals(field, session.officerId)
        assertEquals(url, session.serverUrl) // the trailing slash is gone
        assertFalse(session.token in session.toString())

        // Before the first pull: nothing to do yet.
        val today = TodayViewModel(store, sessions)
        today.refresh()
        assertTrue(today.state.households.isEmpty())
        assertNull(today.state.progress)

        var clock = 1_000L
        val sync = SyncController(store, sessions) { clock }
        val progressSeen = mutableListOf<SyncState>()
        sync.observe { progressSeen.add(it) }
        assertEquals(AfterSync.DONE, sync.syncNow())
        val first = assertNotNull(sessions.lastSync())
        assertTrue(first.ok, "$first")
        assertTrue(first.pulled > 0)
        assertEquals(1_000L, first.atMs)
        assertTrue(progressSeen.any { it.running && it.pulledSoFar > 0 })
        assertFalse(sync.state.running)

        // Offline work on what was pulled.
        today.refresh()
        assertEquals(listOf("HH001", "HH002"), today.state.households.map { it.code }.sorted())
        assertEquals(Fixtures.CAMPAIGN_NAME, assertNotNull(today.state.progress).campaignName)
        val hh = HouseholdViewModel(store, sessions, today.state.households.single { it.code == "HH001" }.id)
        hh.refresh()
        hh.recordVisit(VisitOutcome.MET)
        hh.recordAssist(hh.state.residents.single { it.fullName == "Nguyễn Văn A" }.id, AssistStep.LEVEL1_ACTIVATED)
        assertNull(hh.state.error)

        clock = 2_000L
        assertEquals(AfterSync.DONE, sync.syncNow())
        val second = assertNotNull(sessions.lastSync())
        assertEquals(LastSync(2_000L, null, pushed = 2, pulled = 0, refused = 0), second)

        // Every exchange went through the platform's client: the wrong code, the enrolment, the
        // pull and the push (at least one request each).
        assertTrue(requests.get() >= 4, "${requests.get()} requests")

        // The station sees the field officer's work.
        a.sync(url, aToken, null)
        val seen = a.progress(field, campaign.id, a.today())
        assertEquals(1L, seen.day.visits)
        assertEquals(1L, seen.day.level1Activated)

        // The server goes away: a network failure, which the job retries later.
        stopServer()
        clock = 3_000L
        assertEquals(AfterSync.RETRY, sync.syncNow())
        assertEquals(LastSync(3_000L, Problem.NETWORK), sessions.lastSync())
        assertEquals(sessions.lastSync(), sync.state.last)
    }

    @Test
    fun `a server the platform does not trust is refused at once, and a pinned one is reached`() {
        // An HTTPS server with a self-signed certificate made here (the JDK's keytool).
        val keystore = File(dir, "server.p12")
        val pass = "changeit"
        val keytool = File(System.getProperty("java.home"), "bin/keytool").path
        fun keytool(vararg args: String) {
            val p = ProcessBuilder(listOf(keytool) + args).redirectErrorStream(true).start()
            val out = p.inputStream.bufferedReader().readText()
            assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, out)
        }
        keytool(
            "-genkeypair", "-alias", "server", "-keyalg", "EC", "-groupname", "secp256r1",
            "-dname", "CN=localhost", "-ext", "san=ip:127.0.0.1", "-validity", "2",
            "-storetype", "PKCS12", "-keystore", keystore.path, "-storepass", pass, "-keypass", pass,
        )
        val ks = KeyStore.getInstance("PKCS12")
        FileInputStream(keystore).use { ks.load(it, pass.toCharArray()) }
        val cert = ks.getCertificate("server") as X509Certificate
        val keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm())
        keys.init(ks, pass.toCharArray())
        val tls = SSLContext.getInstance("TLS")
        tls.init(keys.keyManagers, null, null)
        val https = HttpsServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        https.httpsConfigurator = HttpsConfigurator(tls)
        val answered = AtomicInteger()
        https.createContext("/") { exchange ->
            answered.incrementAndGet()
            exchange.sendResponseHeaders(500, -1)
            exchange.close()
        }
        https.start()
        try {
            val url = "https://127.0.0.1:${https.address.port}"
            // The pin this app computes is the one `doorstep tls-pin` prints for the same
            // certificate (its first line: the server's own key).
            val pem = File(dir, "server.pem")
            keytool("-exportcert", "-rfc", "-alias", "server", "-keystore", keystore.path, "-storepass", pass, "-file", pem.path)
            val printed = doorstep("tls-pin", pem.path).lines().first().substringBefore(" ")
            val pin = ServerPin.of(cert)
            assertEquals(printed, pin)
            assertEquals(32, ServerPin.parse(pin)?.size)

            val store = FieldStore.open(File(dir, "phone.db").path, Fixtures.key)
            val requests = AtomicInteger()
            val pinned = PinnedServer()
            store.useHttpTransport(counting(PlatformHttp(pinned), requests))
            val sessions = MemorySessionStore()
            val enrol = EnrolViewModel(store, sessions, "field phone", pinned)

            // No pin: the system's authorities do not know this certificate.
            enrol.enrol(url, "ABC-123")
            assertEquals(Problem.UNTRUSTED_SERVER, enrol.state.error?.problem, "${enrol.state.error}")
            assertEquals(1, requests.get(), "no retry: retrying cannot make the certificate trusted")
            assertEquals(0, answered.get(), "nothing reached the server")

            // Another key's pin: refused the same way, before anything is sent.
            enrol.enrol(url, "ABC-123", "sha256/" + "A".repeat(43) + "=")
            assertEquals(Problem.UNTRUSTED_SERVER, enrol.state.error?.problem, "${enrol.state.error}")
            assertEquals(2, requests.get())
            assertEquals(0, answered.get())
            assertNull(pinned.pin, "a failed enrolment leaves no pin in force")

            // Not a pin, or a pin with an http:// address: refused before going online.
            for ((address, text) in listOf(url to "sha256/not-base64", url to "md5/AAAA", "http://127.0.0.1:9" to pin)) {
                enrol.enrol(address, "ABC-123", text)
                assertEquals(UiError(Problem.BAD_PIN, "server_pin"), enrol.state.error, "$address $text")
            }
            assertEquals(2, requests.get())

            // Its own key's pin: trusted by the key alone (self-signed, no authority), so the
            // requests reach it; it answers 500 to each, which the library retries.
            enrol.enrol(url, "ABC-123", " $pin ")
            assertEquals(Problem.NETWORK, enrol.state.error?.problem, "${enrol.state.error}")
            assertEquals(requests.get() - 2, answered.get(), "every attempt with the pin was answered")
            assertTrue(answered.get() >= 2, "retried: ${answered.get()}")
            assertFalse(enrol.state.enrolled)
        } finally {
            https.stop(0)
        }
    }

    /** [inner], counting its requests in [count]. */
    private fun counting(inner: HttpTransport, count: AtomicInteger) = object : HttpTransport {
        override fun post(url: String, headers: List<HttpHeader>, body: ByteArray, timeoutMs: Long): HttpAnswer {
            count.incrementAndGet()
            return inner.post(url, headers, body, timeoutMs)
        }
    }
}
