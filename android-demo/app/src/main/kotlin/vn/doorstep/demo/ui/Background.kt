package vn.doorstep.demo.ui

import android.os.Handler
import android.os.Looper
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import vn.doorstep.demo.logic.StateHolder

/**
 * Threads for the screens: the core's calls are blocking, so they run on one background thread
 * (in order), and state changes are posted to the main thread to be drawn. Syncs run on the
 * job's own thread (`SyncJobService`); the core lets the screens keep working meanwhile.
 */
object Background {
    private val executor: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, "doorstep-store") }
    private val main = Handler(Looper.getMainLooper())

    fun run(work: () -> Unit) {
        executor.execute(work)
    }

    /** Observe [holder] on the main thread; returns a way to stop. */
    fun <S : Any> observeOnMain(holder: StateHolder<S>, render: (S) -> Unit): () -> Unit =
        holder.observe { state -> main.post { render(state) } }
}
