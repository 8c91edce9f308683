package vn.doorstep.demo.ui

import android.app.job.JobParameters
import android.app.job.JobService
import vn.doorstep.demo.logic.AfterSync

/**
 * The background sync: JobScheduler starts it when a network is connected; the sync (blocking,
 * seconds on 2G) runs on its own thread; a network failure asks for a retry with backoff.
 */
class SyncJobService : JobService() {
    @Volatile private var worker: Thread? = null

    override fun onStartJob(params: JobParameters): Boolean {
        val app = application as DoorstepApp
        worker = Thread({
            val after = app.sync.syncNow()
            jobFinished(params, after == AfterSync.RETRY)
        }, "doorstep-sync").also { it.start() }
        return true
    }

    /** The network went away mid-sync: the core resumes from its cursor next time. */
    override fun onStopJob(params: JobParameters): Boolean = true
}
