package vn.doorstep.demo.logic

import java.util.concurrent.CopyOnWriteArrayList

/**
 * A plain-Kotlin state holder: the screen's state as one immutable value, and observers told of
 * every change. No Android types, so the logic runs in JVM tests as it does on the phone.
 *
 * Every action is blocking (the core's calls are): the UI runs them on a background thread and
 * posts the observed state to the main thread itself (see `ui/Background.kt`).
 */
abstract class StateHolder<S : Any>(initial: S) {
    @Volatile
    var state: S = initial
        private set

    private val observers = CopyOnWriteArrayList<(S) -> Unit>()

    /** Call [observer] now with the current state and on every change; returns a way to stop. */
    fun observe(observer: (S) -> Unit): () -> Unit {
        observers.add(observer)
        observer(state)
        return { observers.remove(observer) }
    }

    protected fun update(change: (S) -> S) {
        val next = synchronized(this) {
            state = change(state)
            state
        }
        observers.forEach { it(next) }
    }
}
