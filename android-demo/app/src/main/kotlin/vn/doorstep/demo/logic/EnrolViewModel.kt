package vn.doorstep.demo.logic

import vn.doorstep.core.FieldStore

data class EnrolState(
    val busy: Boolean = false,
    val error: UiError? = null,
    /** Set once the phone holds a session. */
    val enrolled: Boolean = false,
)

/**
 * Enrolment with a one-time code from the station: server address + code → a device token kept
 * in [sessions]. Online once; everything after works offline.
 */
class EnrolViewModel(
    private val store: FieldStore,
    private val sessions: SessionStore,
    private val deviceName: String,
) : StateHolder<EnrolState>(EnrolState(enrolled = sessions.session() != null)) {

    /** Blocking (a network round trip): call it off the main thread. */
    fun enrol(serverUrl: String, code: String) {
        val url = serverUrl.trim().trimEnd('/')
        val trimmedCode = code.trim()
        val invalid = ServerAddress.problem(url)?.let { UiError(it, "server_url") }
            ?: if (trimmedCode.isEmpty()) UiError(Problem.REQUIRED, "code") else null
        if (invalid != null) {
            update { it.copy(error = invalid) }
            return
        }
        update { it.copy(busy = true, error = null) }
        val result = attempt { store.enrol(url, trimmedCode, deviceName) }
        result.onSuccess { e ->
            sessions.saveSession(Session(url, e.officerId, e.deviceId, e.token))
            update { EnrolState(enrolled = true) }
        }
        result.uiError?.let { err -> update { it.copy(busy = false, error = err) } }
    }
}
