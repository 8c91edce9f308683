package vn.doorstep.demo.ui

import android.app.Application
import android.os.Build
import java.io.File
import vn.doorstep.core.FieldStore
import vn.doorstep.demo.logic.PinnedServer
import vn.doorstep.demo.logic.PlatformHttp
import vn.doorstep.demo.logic.SessionStore
import vn.doorstep.demo.logic.SyncController

/**
 * The process-wide objects: one [FieldStore] (the core's SQLite file in the app's private
 * storage, encrypted), the session, and the sync controller shared by the screens and the background job.
 */
class DoorstepApp : Application() {
    /**
     * Encrypted at rest with a key wrapped by AndroidKeyStore ([StoreKeyring]); enrols and syncs
     * over the platform's HTTP stack ([PlatformHttp]: the phone's library has none of its own).
     */
    val store: FieldStore by lazy {
        val key = StoreKeyring(this).storeKey()
        try {
            FieldStore.open(File(filesDir, "doorstep.db").path, key).also {
                it.useHttpTransport(PlatformHttp(pinned))
            }
        } finally {
            key.fill(0)
        }
    }
    val sessions: SessionStore by lazy { PrefsSessionStore(this) }

    /** The pin of the server's key given with the enrolment code, if any ([PinnedServer]). */
    val pinned: PinnedServer by lazy { PinnedServer(sessions.session()?.serverPin) }
    val sync: SyncController by lazy { SyncController(store, sessions) }
    val scheduler: SyncScheduler by lazy { SyncScheduler(this) }

    /** The name the station sees for this phone (model only: no owner name, no number). */
    val deviceName: String get() = "${Build.MANUFACTURER} ${Build.MODEL}"

    override fun onCreate() {
        super.onCreate()
        if (sessions.session() != null) scheduler.schedulePeriodic()
    }
}
