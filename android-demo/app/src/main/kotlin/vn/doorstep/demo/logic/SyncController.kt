package vn.doorstep.demo.logic

import vn.doorstep.core.DoorstepException
import vn.doorstep.core.FieldStore
import vn.doorstep.core.SyncListener
import vn.doorstep.core.SyncProgress

/** What the background job should do after a sync attempt. */
enum class AfterSync {
    /** Done (or nothing to do until the worker acts: not enrolled, re-enrol, update the app). */
    DONE,

    /** A network failure: the scheduler should try again (with its backoff). */
    RETRY,
}

data class SyncState(
    val running: Boolean = false,
    /** Operations moved so far in the running sync. */
    val pulledSoFar: Long = 0,
    val pushedSoFar: Long = 0,
    val last: LastSync? = null,
)

/**
 * One sync of this phone with its server, shared by the "sync now" button and the background
 * job (`ui/SyncJobService`, run by JobScheduler when a network is connected). Records the result
 * in [sessions] so the home screen shows the last sync even after the app restarts.
 */
class SyncController(
    private val store: FieldStore,
    private val sessions: SessionStore,
    private val nowMs: () -> Long = System::currentTimeMillis,
) : StateHolder<SyncState>(SyncState(last = sessions.lastSync())) {

    private val lock = Any()

    /** Blocking, seconds on a slow link: call it from a background thread. One at a time. */
    fun syncNow(): AfterSync = synchronized(lock) {
        val session = sessions.session()
        if (session == null) {
            finish(LastSync(nowMs(), Problem.NOT_ENROLLED))
            return AfterSync.DONE
        }
        // A session saved by an older app with a cleartext address is not used (ServerAddress).
        ServerAddress.problem(session.serverUrl)?.let { problem ->
            finish(LastSync(nowMs(), problem))
            return AfterSync.DONE
        }
        update { it.copy(running = true, pulledSoFar = 0, pushedSoFar = 0) }
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                when (progress) {
                    is SyncProgress.Pulled -> update { it.copy(pulledSoFar = progress.ops.toLong()) }
                    is SyncProgress.Pushed -> update { it.copy(pushedSoFar = progress.ops.toLong()) }
                }
            }
        }
        return try {
            val r = store.sync(session.serverUrl, session.token, listener)
            finish(LastSync(nowMs(), null, r.pushed.toLong(), r.pulled.toLong(), r.refused.size))
            AfterSync.DONE
        } catch (e: DoorstepException) {
            val problem = e.toUiError().problem
            finish(LastSync(nowMs(), problem))
            if (problem == Problem.NETWORK) AfterSync.RETRY else AfterSync.DONE
        }
    }

    private fun finish(result: LastSync) {
        sessions.saveLastSync(result)
        update { SyncState(running = false, last = result) }
    }
}
