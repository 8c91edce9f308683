package vn.doorstep.demo.ui

import android.app.job.JobInfo
import android.app.job.JobScheduler
import android.content.ComponentName
import android.content.Context
import java.util.concurrent.TimeUnit

/**
 * Sync through the platform's JobScheduler, constrained to a connected network
 * (`NETWORK_TYPE_ANY`, the equivalent of WorkManager's `NetworkType.CONNECTED`): a job asked for
 * offline waits until the phone reaches coverage, and survives a reboot (`setPersisted`).
 * WorkManager would do the same; it is a Jetpack AAR, which this demo's JVM check cannot
 * compile against (see README).
 */
class SyncScheduler(private val context: Context) {
    private val jobs: JobScheduler
        get() = context.getSystemService(Context.JOB_SCHEDULER_SERVICE) as JobScheduler

    private fun builder(id: Int) = JobInfo.Builder(id, ComponentName(context, SyncJobService::class.java))
        .setRequiredNetworkType(JobInfo.NETWORK_TYPE_ANY)
        .setPersisted(true)
        .setBackoffCriteria(TimeUnit.SECONDS.toMillis(30), JobInfo.BACKOFF_POLICY_EXPONENTIAL)

    /** Sync as soon as a network is connected (now, if it is). Replaces a pending request. */
    fun requestSync() {
        jobs.schedule(builder(ONE_OFF).build())
    }

    /** Sync about every hour while a network is connected. */
    fun schedulePeriodic() {
        if (jobs.getPendingJob(PERIODIC) != null) return
        jobs.schedule(builder(PERIODIC).setPeriodic(TimeUnit.HOURS.toMillis(1)).build())
    }

    companion object {
        const val ONE_OFF = 1
        const val PERIODIC = 2
    }
}
