package vn.doorstep.demo.logic

import vn.doorstep.core.FieldStore

data class EnrolState(
    val busy: Boolean = false,
    val error: UiError? = null,
    /** Set once the phone holds a session. */
    val enrolled: Boolean = false,
)

/**
 * Enrolment with a one-time code from the station: server address + code (and, when the station
 * gives one, the pin of the server's key) → a device token kept in [sessions]. Online once;
 * everything after works offline. [pinned] is what the phone's HTTP client checks
 * ([PlatformHttp]): the pin typed here is in force for the enrolment, and kept with the session.
 */
class EnrolViewModel(
    private val store: FieldStore,
    private val sessions: SessionStore,
    private val deviceName: String,
    private val pinned: PinnedServer = PinnedServer(),
) : StateHolder<EnrolState>(EnrolState(enrolled = sessions.session() != null)) {

    /** Blocking (a network round trip): call it off the main thread. */
    fun enrol(serverUrl: String, code: String, serverPin: String = "") {
        val url = serverUrl.trim().trimEnd('/')
        val trimmedCode = code.trim()
        val pin = serverPin.trim().ifEmpty { null }
        val invalid = when {
            ServerAddress.problem(url) != null -> UiError(ServerAddress.problem(url)!!, "server_url")
            trimmedCode.isEmpty() -> UiError(Problem.REQUIRED, "code")
            // A pin is checked over TLS only: with an http:// address it would protect nothing.
            pin != null && (ServerPin.parse(pin) == null || !url.startsWith("https://", ignoreCase = true)) ->
                UiError(Problem.BAD_PIN, "server_pin")
            else -> null
        }
        if (invalid != null) {
            update { it.copy(error = invalid) }
            return
        }
        update { it.copy(busy = true, error = null) }
        pinned.pin = pin
        val result = attempt { store.enrol(url, trimmedCode, deviceName) }
        result.onSuccess { e ->
            sessions.saveSession(Session(url, e.officerId, e.deviceId, e.token, pin))
            update { EnrolState(enrolled = true) }
        }
        result.uiError?.let { err ->
            pinned.pin = sessions.session()?.serverPin
            update { it.copy(busy = false, error = err) }
        }
    }
}
