package vn.doorstep.demo.logic

import vn.doorstep.core.CodeRefusal
import vn.doorstep.core.DoorstepException

/** What went wrong, as the UI shows it: each kind maps to one translated message. */
enum class Problem {
    /** No network or the server did not answer: try again later (a sync retries by itself). */
    NETWORK,

    /** The server does not know this code or device any more: ask the station for a new code. */
    RE_ENROL,

    /** The server speaks a newer protocol, or the store was written by a newer app. */
    UPDATE_APP,

    /** An input the core refused; [UiError.field] names it. */
    INVALID_INPUT,

    /** An id the store does not know (not synced yet, or removed). */
    NOT_FOUND,

    /** The phone's storage failed. */
    STORAGE,

    /** The store's key does not open it (the key in the Keystore was lost): sync into a new store. */
    WRONG_KEY,

    /** The server's certificate is not the trusted one: check the address and the pin. */
    UNTRUSTED_SERVER,

    /** The offline lease is over: residents are hidden until the phone syncs (work can still be recorded). */
    LEASE_EXPIRED,

    /** The server knows no such enrolment code: most often a typing mistake. */
    CODE_UNKNOWN,

    /** The enrolment code enrolled a phone already: ask the station for a new one. */
    CODE_USED,

    /** The enrolment code has expired: ask the station for a new one. */
    CODE_EXPIRED,

    /** The user cancelled the call; nothing is lost, it can be started again. */
    CANCELLED,

    /** Anything else: report it. */
    OTHER,

    /** This phone has not enrolled yet. */
    NOT_ENROLLED,

    /** A required field is empty; [UiError.field] names it. */
    REQUIRED,

    /** The server address is not an http:// or https:// URL. */
    BAD_URL,

    /** An http:// address to another machine: residents' data would cross the network in
     * clear (ServerAddress). */
    CLEARTEXT,

    /** The server pin typed is not one (`sha256/` and base64, as the station prints it), or
     * comes with an http:// address. */
    BAD_PIN,
}

/** A problem and, for input problems, the field it is about (never the value typed). */
data class UiError(val problem: Problem, val field: String? = null)

/** The action the UI offers for a core error (the core's messages name fields, never values). */
fun DoorstepException.toUiError(): UiError = when (this) {
    is DoorstepException.InvalidInput -> UiError(Problem.INVALID_INPUT, field)
    is DoorstepException.NotFound -> UiError(Problem.NOT_FOUND, field)
    is DoorstepException.Storage -> UiError(Problem.STORAGE)
    is DoorstepException.WrongKey -> UiError(Problem.WRONG_KEY)
    is DoorstepException.ReEnrol -> UiError(Problem.RE_ENROL)
    is DoorstepException.UpdateApp -> UiError(Problem.UPDATE_APP)
    is DoorstepException.Network -> UiError(Problem.NETWORK)
    is DoorstepException.UntrustedServer -> UiError(Problem.UNTRUSTED_SERVER)
    is DoorstepException.LeaseExpired -> UiError(Problem.LEASE_EXPIRED)
    is DoorstepException.CodeRefused -> when (reason) {
        CodeRefusal.UNKNOWN -> UiError(Problem.CODE_UNKNOWN)
        CodeRefusal.USED -> UiError(Problem.CODE_USED)
        CodeRefusal.EXPIRED -> UiError(Problem.CODE_EXPIRED)
    }
    is DoorstepException.Cancelled -> UiError(Problem.CANCELLED)
    // A call after close(): a bug of the app, reported like any other.
    is DoorstepException.Closed -> UiError(Problem.OTHER)
    is DoorstepException.Other -> UiError(Problem.OTHER)
}

/** Run a core call, turning its error into a [UiError]. */
internal inline fun <T> attempt(call: () -> T): Result<T> = try {
    Result.success(call())
} catch (e: DoorstepException) {
    Result.failure(CoreFailure(e.toUiError()))
}

/** A failed core call carried through [Result]. */
internal class CoreFailure(val error: UiError) : Exception(error.problem.name)

internal val Result<*>.uiError: UiError?
    get() = (exceptionOrNull() as? CoreFailure)?.error
