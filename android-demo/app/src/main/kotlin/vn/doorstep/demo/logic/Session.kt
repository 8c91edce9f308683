package vn.doorstep.demo.logic

/**
 * What enrolment gave this phone. The token is a secret: never log it. [serverPin]: the pin of
 * the server's key given with the code ([ServerPin]), null when the system's authorities decide.
 */
data class Session(
    val serverUrl: String,
    val officerId: String,
    val deviceId: String,
    val token: String,
    val serverPin: String? = null,
) {
    override fun toString(): String =
        "Session(serverUrl=$serverUrl, officerId=$officerId, deviceId=$deviceId, token=…, serverPin=$serverPin)"
}

/** The result of the latest sync attempt, shown on the home screen. */
data class LastSync(
    /** When it ended, Unix ms (the phone's clock). */
    val atMs: Long,
    /** Null when it succeeded. */
    val error: Problem?,
    val pushed: Long = 0,
    val pulled: Long = 0,
    /** Operations the server refused (they stay on the phone). */
    val refused: Int = 0,
) {
    val ok: Boolean get() = error == null
}

/**
 * Where the session and the last sync's result are kept. On the phone: `ui/PrefsSessionStore`
 * (SharedPreferences in the app's private storage); in tests: [MemorySessionStore].
 */
interface SessionStore {
    fun session(): Session?
    fun saveSession(session: Session)
    fun clearSession()
    fun lastSync(): LastSync?
    fun saveLastSync(result: LastSync)
}

/** A [SessionStore] in memory, for tests and previews. */
class MemorySessionStore : SessionStore {
    @Volatile private var session: Session? = null

    @Volatile private var last: LastSync? = null

    override fun session() = session
    override fun saveSession(session: Session) {
        this.session = session
    }

    override fun clearSession() {
        session = null
    }

    override fun lastSync() = last
    override fun saveLastSync(result: LastSync) {
        last = result
    }
}
