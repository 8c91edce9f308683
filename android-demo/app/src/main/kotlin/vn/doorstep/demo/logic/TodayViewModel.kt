package vn.doorstep.demo.logic

import vn.doorstep.core.Counts
import vn.doorstep.core.FieldStore
import vn.doorstep.core.HouseholdToday

/** Done against a quota; [quota] 0 means none is set. */
data class Meter(val done: Long, val quota: Long) {
    /** Percent of the quota done (capped at 100), or null without a quota. */
    val percent: Int? get() = if (quota > 0) minOf(100L, done * 100 / quota).toInt() else null
}

/** The day's and the campaign's progress, per quota metric. */
data class ProgressView(
    val campaignName: String,
    val day: List<Pair<Metric, Meter>>,
    val campaign: List<Pair<Metric, Meter>>,
)

/** The quota metrics, in the order the screen shows them. */
enum class Metric { VISITS, LEVEL1_ACTIVATED, LEVEL2_RECEIVED, LEVEL2_ACTIVATED, PORTAL_GUIDED }

internal fun meters(done: Counts, quota: Counts): List<Pair<Metric, Meter>> = listOf(
    Metric.VISITS to Meter(done.visits, quota.visits),
    Metric.LEVEL1_ACTIVATED to Meter(done.level1Activated, quota.level1Activated),
    Metric.LEVEL2_RECEIVED to Meter(done.level2Received, quota.level2Received),
    Metric.LEVEL2_ACTIVATED to Meter(done.level2Activated, quota.level2Activated),
    Metric.PORTAL_GUIDED to Meter(done.portalGuided, quota.portalGuided),
)

data class TodayState(
    val loaded: Boolean = false,
    /** Today's local date (UTC+7) by the store's corrected clock. */
    val day: String = "",
    /** The officer's households, revisits due first (the core's order). */
    val households: List<HouseholdToday> = emptyList(),
    /** Progress of the running campaign; null when none runs today on this phone. */
    val progress: ProgressView? = null,
    val error: UiError? = null,
) {
    val visitedToday: Int get() = households.count { it.visitedToday }
    val residentsNeedingHelp: Long get() = households.sumOf { it.residentsNeedingHelp }
}

/** Today's households and progress against the quota, all from the local store (offline). */
class TodayViewModel(
    private val store: FieldStore,
    private val sessions: SessionStore,
) : StateHolder<TodayState>(TodayState()) {

    fun refresh() {
        val session = sessions.session()
        if (session == null) {
            update { TodayState(loaded = true, error = UiError(Problem.NOT_ENROLLED)) }
            return
        }
        val result = attempt {
            val day = store.today()
            val households = store.myHouseholds(session.officerId, day)
            // A phone sees the campaigns of its area after its first pull; the first running one
            // is the one its quotas are set in.
            val campaign = store.campaignsRunning(day).firstOrNull()
            val progress = campaign?.let {
                val p = store.progress(session.officerId, it.id, day)
                ProgressView(it.name, meters(p.day, p.dayQuota), meters(p.campaign, p.campaignQuota))
            }
            TodayState(loaded = true, day = day, households = households, progress = progress)
        }
        result.onSuccess { s -> update { s } }
        result.uiError?.let { err -> update { it.copy(loaded = true, error = err) } }
    }
}
