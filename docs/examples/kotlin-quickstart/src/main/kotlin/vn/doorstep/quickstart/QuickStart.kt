// Doorstep Kotlin quick start: one field day of an area police officer (CSKV), on the JVM,
// with the generated bindings (package vn.doorstep.core) and a real `doorstep serve`.
//
//   usage: QuickStart <server URL> <enrolment code> <store file> [<CA PEM file>]
//   or the environment: DOORSTEP_SERVER, DOORSTEP_CODE, DOORSTEP_STORE [, DOORSTEP_CA_PEM]
//
// The enrolment code comes from the station: `doorstep --db server.db enrol-code --officer <id>`.
// The CA PEM file is the "pin" of a server whose certificate the public roots do not vouch for
// (a province's own authority). See README.md beside this project, and docs/bindings.md.
//
// Exit codes: 0 the day is done; 2 wrong usage; 3 this device must be enrolled again (revoked,
// or the code was refused): run again with a new code from the station.
package vn.doorstep.quickstart

import java.io.File
import java.net.ServerSocket
import java.time.LocalDate
import java.time.ZoneId
import java.util.Properties
import kotlin.system.exitProcess
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import vn.doorstep.core.AssistStep
import vn.doorstep.core.CodeRefusal
import vn.doorstep.core.DoorstepException
import vn.doorstep.core.FailureReason
import vn.doorstep.core.FieldStore
import vn.doorstep.core.LogLevel
import vn.doorstep.core.LogSink
import vn.doorstep.core.Need
import vn.doorstep.core.NewAssist
import vn.doorstep.core.NewVisit
import vn.doorstep.core.SyncListener
import vn.doorstep.core.SyncProgress
import vn.doorstep.core.SyncReport
import vn.doorstep.core.VisitOutcome
import vn.doorstep.core.libraryVersion
import vn.doorstep.core.newId
import vn.doorstep.core.setLogSink

/** Where the server is; `caPem`: the pin handed out with the enrolment code, if any. */
data class Server(val url: String, val caPem: String?)

/** What enrolment gave. Keep the token secret (Android: the Keystore): it is the device's key. */
data class Session(val officerId: String, val token: String)

/** The campaign's days are Vietnam's local days. */
private val VIETNAM: ZoneId = ZoneId.of("Asia/Ho_Chi_Minh")

/** The error kinds this run met and handled (printed in the summary). */
private val handled = sortedSetOf<String>()

/**
 * What the app does about each error: one branch per subtype of `DoorstepException`
 * (docs/bindings.md). No `else`: when the bindings gain a subtype, this stops compiling here,
 * which is where an app decides what to tell the user.
 */
fun advice(e: DoorstepException): String = when (e) {
    is DoorstepException.InvalidInput -> "fix the field '${e.field}': expected ${e.expected}"
    is DoorstepException.NotFound -> "no ${e.kind} with that ${e.field} here: a wrong id, or not synced yet"
    is DoorstepException.Storage -> "the phone's storage failed (${e.detail}): free some space or check the path"
    is DoorstepException.WrongKey -> "the store's ${e.field} does not open it: the key in the platform key store was lost; sync again into a new store"
    is DoorstepException.ReEnrol -> "the server no longer accepts this device (${e.detail}): ask the station for a new code"
    is DoorstepException.CodeRefused -> "the enrolment code was refused (${e.reason}): " +
        if (e.reason == CodeRefusal.UNKNOWN) "check it for a typo" else "ask the station for a new one"
    is DoorstepException.Cancelled -> "cancelled: what was done stays, the next call goes on"
    is DoorstepException.Closed -> "the store was closed (${e.detail}): open it again"
    is DoorstepException.UpdateApp -> "update the app (${e.detail})"
    is DoorstepException.Network -> "no connection (${e.detail}): nothing is lost, sync again later"
    is DoorstepException.UntrustedServer -> "the server's certificate is not trusted (${e.detail}): check the address and the pin"
    is DoorstepException.LeaseExpired -> "the offline lease ended (${e.untilMs}): sync to see residents again; recording work still works"
    is DoorstepException.Other -> "unexpected (${e.detail}): report it"
}

/** Note an error that was met and handled, and show its advice. */
fun noteHandled(what: String, e: DoorstepException) {
    handled += e::class.simpleName ?: "DoorstepException"
    println("   ! $what -> ${e::class.simpleName}: ${advice(e)}")
}

/** Run [block]; a `DoorstepException` is shown with its advice and noted instead of thrown. */
inline fun <T> handling(what: String, block: () -> T): T? = try {
    block()
} catch (e: DoorstepException) {
    noteHandled(what, e)
    null
}

/** Called on the syncing thread: it only hands each step over to the main coroutine. */
private class ProgressToChannel(val updates: Channel<SyncProgress>) : SyncListener {
    override fun onProgress(progress: SyncProgress) {
        updates.trySend(progress)
    }
}

/**
 * Push this device's work and pull its area. `syncAsync` suspends while the library syncs on a
 * thread of its own; progress is printed by the calling coroutine as it comes (in an app: the
 * UI's). Cancelling the coroutine stops the sync at its next safe point, keeping what it did.
 * Without coroutines: `store.sync(…)` (blocking) on a background thread or in a Worker.
 */
suspend fun sync(store: FieldStore, server: Server, token: String): SyncReport = coroutineScope {
    val updates = Channel<SyncProgress>(Channel.UNLIMITED)
    val printer = launch {
        for (p in updates) {
            when (p) {
                is SyncProgress.Pushed -> println("   … pushed ${p.ops} operations, ${p.remaining} to go")
                is SyncProgress.Pulled -> println("   … pulled ${p.ops} operations${if (p.more) ", more to come" else ""}")
            }
        }
    }
    try {
        store.syncAsync(server.url, token, ProgressToChannel(updates), server.caPem)
    } finally {
        updates.close()
        printer.join()
    }
}

// The token and officer are kept beside the store, so a second run does not enrol again.
private fun sessionFile(storePath: String) = File("$storePath.session")

private fun loadSession(storePath: String): Session? {
    val f = sessionFile(storePath)
    if (!f.exists()) return null
    val p = Properties().apply { f.reader().use { load(it) } }
    return Session(p.getProperty("officer") ?: return null, p.getProperty("token") ?: return null)
}

private fun saveSession(storePath: String, s: Session) {
    val p = Properties().apply {
        setProperty("officer", s.officerId)
        setProperty("token", s.token)
    }
    sessionFile(storePath).writer().use { p.store(it, "Doorstep quick start: this device's token (secret)") }
}

/** Stop: this device has to be enrolled again with a new code. */
private fun mustEnrolAgain(storePath: String, wiped: Boolean = false): Nothing {
    sessionFile(storePath).delete()
    println("QUICKSTART stopped=enrol-again wiped=$wiped handled=${handled.joinToString(",")}")
    exitProcess(3)
}

private fun arg(args: Array<String>, i: Int, env: String): String? =
    args.getOrNull(i)?.takeIf { it.isNotBlank() } ?: System.getenv(env)?.takeIf { it.isNotBlank() }

fun main(args: Array<String>) = runBlocking {
    val url = arg(args, 0, "DOORSTEP_SERVER")
    val code = arg(args, 1, "DOORSTEP_CODE")
    val storePath = arg(args, 2, "DOORSTEP_STORE")
    if (url == null || code == null || storePath == null) {
        System.err.println("usage: QuickStart <server URL> <enrolment code> <store file> [<CA PEM file>]")
        System.err.println("   or: DOORSTEP_SERVER, DOORSTEP_CODE, DOORSTEP_STORE [, DOORSTEP_CA_PEM]")
        exitProcess(2)
    }
    val server = Server(url.trimEnd('/'), arg(args, 3, "DOORSTEP_CA_PEM")?.let { File(it).readText() })
    println("Doorstep ${libraryVersion()}: quick start against ${server.url}")

    // The library's own log: sync start and end with counts, never personal data.
    setLogSink(object : LogSink {
        override fun log(level: LogLevel, target: String, line: String) {
            if (level != LogLevel.DEBUG) println("   [log $level $target] $line")
        }
    })

    // 1. Open the store: one SQLite file in the app's private folder, encrypted with a 32-byte
    // key. On a phone the key comes from Android Keystore (android-demo's StoreKeyring) or the
    // iOS Keychain and is never stored beside the file; `null` opens an unencrypted store, for
    // development only. This console takes it from DOORSTEP_STORE_KEY (64 hex digits), if set.
    println("1. open the store")
    val storeKey: ByteArray? = System.getenv("DOORSTEP_STORE_KEY")?.let { hex ->
        ByteArray(hex.length / 2) { hex.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
    }
    handling("open a store in a folder that does not exist") {
        FieldStore.open(File(File(storePath).absoluteFile.parentFile, "no-such-folder/doorstep.db").path, storeKey)
    }
    val store = FieldStore.open(storePath, storeKey)
    if (storeKey != null) {
        handling("open the encrypted store with another key") {
            FieldStore.open(storePath, ByteArray(storeKey.size) { (it + 1).toByte() })
        }
    }
    println("   $storePath: replica ${store.replicaId()}, today ${store.today()}")

    // 2. Enrol (online, once): the one-time code from the station for this device's token.
    println("2. enrol")
    var session = loadSession(storePath)
    if (session == null) {
        // A mistyped address: nothing listens there (three quick tries, then Network).
        val closedPort = ServerSocket(0).use { it.localPort }
        handling("enrol at a mistyped address") {
            store.enrolAsync("http://127.0.0.1:$closedPort", code, "Quick start phone", server.caPem)
        }
        // A mistyped code: refused as unknown (nothing is used up).
        handling("enrol with a mistyped code") {
            store.enrolAsync(server.url, code.reversed() + "X", "Quick start phone", server.caPem)
        }
        // A server with the province's own certificate authority, and the pin forgotten: the
        // device refuses the server. Retrying does not help; the pin comes with the code.
        if (server.caPem != null) {
            handling("enrol without the pin given with the code") {
                store.enrolAsync(server.url, code, "Quick start phone")
            }
        }
        val enrolment = handling("enrol") {
            store.enrolAsync(server.url, code, "Quick start phone", server.caPem)
        } ?: mustEnrolAgain(storePath)
        session = Session(enrolment.officerId, enrolment.token)
        saveSession(storePath, session)
        println("   enrolled: device ${enrolment.deviceId}, officer ${enrolment.officerId}")
    } else {
        println("   enrolled before: officer ${session.officerId}")
    }
    val officer = session.officerId

    // 3. The first sync brings the officer's area down: villages, households, residents, the
    //    campaign. On a phone it runs in the background; the store stays usable meanwhile.
    println("3. sync (pull the area)")
    val first = try {
        sync(store, server, session.token)
    } catch (e: DoorstepException.ReEnrol) {
        noteHandled("sync with the saved token", e) // revoked at the station
        mustEnrolAgain(storePath)
    }
    println("   pulled ${first.pulled}, pushed ${first.pushed} in ${first.requests} requests, ${first.durationMs} ms")
    if (first.wiped) {
        // Revoked at the station: the server's signed order made the store push what the
        // server still takes, then erase every resident it held. Tell the officer, enrol anew.
        println("   revoked at the station: the phone's data was erased after its last push")
        mustEnrolAgain(storePath, wiped = true)
    }

    // The code was one-time: tapped again (or on a second phone), the server refuses it.
    handling("enrol again with the code just used") {
        store.enrolAsync(server.url, code, "Second phone", server.caPem)
    }

    // 4. Today's work, offline from here on.
    val today = store.today()
    println("4. my households on $today")
    val households = store.myHouseholds(officer, today)
    for (h in households) {
        println("   ${h.code}  ${h.address ?: "-"}  ${h.residentsNeedingHelp} to help${if (h.visitedToday) ", visited" else ""}")
    }
    check(households.isNotEmpty()) { "no households: is a village with a roster assigned to this officer?" }

    // 5. Visits: met at the first two doors; asked to come back tomorrow at the others.
    println("5. visits")
    var visits = 0
    for ((i, h) in households.withIndex()) {
        val visit = if (i < 2) {
            NewVisit(householdId = h.id, officerId = officer, outcome = VisitOutcome.MET, note = "Đã gặp chủ hộ")
        } else {
            val tomorrow8 = LocalDate.now(VIETNAM).plusDays(1).atTime(8, 0).atZone(VIETNAM).toInstant().toEpochMilli()
            NewVisit(householdId = h.id, officerId = officer, outcome = VisitOutcome.COME_BACK, revisitAtMs = tomorrow8)
        }
        store.recordVisit(visit)
        visits++
        println("   ${h.code}: ${visit.outcome}")
    }
    // An id from an old list, or a QR code of another area: not in this store.
    handling("record a visit to a household that is not in this store") {
        store.recordVisit(NewVisit(householdId = newId(), officerId = officer, outcome = VisitOutcome.MET))
    }

    // 6. Assistance, for the residents met who still need help.
    println("6. assistance")
    val met = households.take(2).map { it.id }.toSet()
    val needing = store.residentsNeedingHelp(officer).filter { it.householdId in met }
    var assists = 0
    fun assist(a: NewAssist, name: String) {
        store.recordAssist(a)
        assists++
        println("   $name: ${a.step}${a.failure?.let { " failed ($it)" } ?: ""}")
    }
    val noAccount = needing.filter { it.need == Need.NO_ACCOUNT }
    // Level 1: guided through the VNeID app on the resident's own phone, then activated.
    noAccount.getOrNull(0)?.let {
        assist(NewAssist(it.id, officer, AssistStep.LEVEL1_GUIDED), it.fullName)
        assist(NewAssist(it.id, officer, AssistStep.LEVEL1_ACTIVATED), it.fullName)
    }
    // Level 2: the application (photo, fingerprints, chip ID card) received by the police.
    noAccount.getOrNull(1)?.let {
        assist(NewAssist(it.id, officer, AssistStep.LEVEL2_RECEIVED, receivingPoint = "Điểm thu nhận lưu động phường Đô Vinh"), it.fullName)
    }
    // Level 1 started before the campaign: the activation fails, the OTP never arrives.
    needing.filter { it.need == Need.LEVEL1_PENDING }.forEach {
        assist(NewAssist(it.id, officer, AssistStep.LEVEL1_ACTIVATED, failure = FailureReason.OTP_NOT_RECEIVED, note = "Chờ nhà mạng"), it.fullName)
    }

    // 7. A resident's mobile number: a good one, then a typo. The error names the field, never
    //    the value (no phone number reaches a log).
    println("7. phone numbers")
    var edits = 0
    needing.firstOrNull()?.let { r ->
        edits += store.editResidentPhone(r.id, "0905 123 456")
        println("   ${r.fullName}: phone set")
        handling("set a phone number with a digit missing") { store.editResidentPhone(r.id, "090512345") }
    }

    // 8. Search, with or without diacritics.
    println("8. search \"dang thi dao\"")
    for (hit in store.searchResidents("dang thi dao", 5)) {
        println("   ${hit.fullName} (${hit.birthDate ?: "?"}): next ${hit.need}")
    }

    // 9. Progress against the day's quota, and the blockers.
    println("9. progress")
    val campaign = store.campaignsRunning(today).firstOrNull()
    if (campaign != null) {
        val p = store.progress(officer, campaign.id, today)
        println(
            "   ${campaign.name}: today ${p.day.visits}/${p.dayQuota.visits} visits, " +
                "${p.day.level1Activated} level-1 activated, ${p.day.level2Received} level-2 received"
        )
    } else {
        println("   no campaign running today")
    }
    for (b in store.blockers(officer).filter { it.attempts > 0 }) {
        println("   blocker ${b.reason}: ${b.residents} residents, ${b.attempts} attempts")
    }

    // 10. Still out of coverage: a sync would keep retrying, and the user leaves the screen. The
    //     coroutine is cancelled (here by a timeout): the sync stops at its next safe point and
    //     nothing is lost. (Nothing listens on this port: it stands for "no coverage".)
    println("10. a sync with no coverage, cancelled")
    val unsentBefore = store.syncStatus(server.url).unsentOps
    println("   $unsentBefore records waiting to be sent")
    val noCoverage = Server("http://127.0.0.1:${ServerSocket(0).use { it.localPort }}", server.caPem)
    val cancelled = try {
        withTimeoutOrNull(1_500) { sync(store, noCoverage, session.token) } == null
    } catch (e: DoorstepException) {
        noteHandled("sync with no coverage", e)
        false
    }
    if (cancelled) println("   cancelled after 1.5 s; still ${store.syncStatus(server.url).unsentOps} waiting")

    // 11. Back in coverage: push the day's work.
    println("11. sync (push the day's work)")
    val second = handling("sync") { sync(store, server, session.token) }
    val unsentAfter = store.syncStatus(server.url).unsentOps
    println("   pushed ${second?.pushed}, refused ${second?.refused?.size}, pulled ${second?.pulled}; $unsentAfter waiting")

    // The store is closed when the app is done with it; a late call (a callback of a screen
    // already gone) is refused, not a crash in native code.
    store.close()
    handling("a late call after the store was closed") { store.today() }

    // Summary. The last line is for scripts/test-quickstart.sh.
    println()
    println(
        "Summary: $visits visits, $assists assistance steps and $edits phone edit recorded; " +
            "${second?.pushed ?: 0} operations pushed, ${second?.refused?.size ?: 0} refused, $unsentAfter left to send."
    )
    println("Errors met and handled: ${handled.joinToString(", ")}")
    println(
        "QUICKSTART households=${households.size} visits=$visits assists=$assists edits=$edits " +
            "pulled=${first.pulled} unsent_before=$unsentBefore cancelled=$cancelled pushed=${second?.pushed} " +
            "refused=${second?.refused?.size} unsent_after=$unsentAfter handled=${handled.joinToString(",")}"
    )
    if (second == null) exitProcess(1)
}
