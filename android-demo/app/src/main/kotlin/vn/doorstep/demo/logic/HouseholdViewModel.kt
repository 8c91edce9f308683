package vn.doorstep.demo.logic

import vn.doorstep.core.AssistStep
import vn.doorstep.core.FailureReason
import vn.doorstep.core.FieldStore
import vn.doorstep.core.NewAssist
import vn.doorstep.core.NewVisit
import vn.doorstep.core.Need
import vn.doorstep.core.ResidentNeed
import vn.doorstep.core.VisitOutcome

/** What was just recorded, so the screen can confirm it and offer to undo it. */
sealed class Recorded {
    abstract val factId: String

    data class Visit(override val factId: String, val outcome: VisitOutcome) : Recorded()
    data class Assist(
        override val factId: String,
        val residentId: String,
        val step: AssistStep,
        val failure: FailureReason?,
    ) : Recorded()
}

data class HouseholdState(
    val householdId: String,
    /** Residents of the household who still need help (done ones drop off). */
    val residents: List<ResidentNeed> = emptyList(),
    val lastRecorded: Recorded? = null,
    /** Set after an undo of [lastRecorded]. */
    val undone: Boolean = false,
    val error: UiError? = null,
)

/** The steps offered first for a resident's next need: one tap for the usual case. */
fun suggestedSteps(need: Need): List<AssistStep> = when (need) {
    Need.NO_ACCOUNT -> listOf(AssistStep.LEVEL1_GUIDED, AssistStep.LEVEL1_ACTIVATED, AssistStep.LEVEL2_RECEIVED)
    Need.LEVEL1_PENDING -> listOf(AssistStep.LEVEL1_ACTIVATED, AssistStep.LEVEL2_RECEIVED)
    Need.LEVEL2_TO_TAKE -> listOf(AssistStep.LEVEL2_RECEIVED)
    Need.LEVEL2_TO_ACTIVATE -> listOf(AssistStep.LEVEL2_ACTIVATED)
    Need.PORTAL_GUIDANCE -> listOf(AssistStep.PORTAL_GUIDED)
    Need.DONE -> emptyList()
}

/**
 * One household: record the visit's outcome and each resident's assistance step in a few taps,
 * and undo the last one (a retraction: facts are never edited).
 */
class HouseholdViewModel(
    private val store: FieldStore,
    private val sessions: SessionStore,
    householdId: String,
    private val nowMs: () -> Long = System::currentTimeMillis,
) : StateHolder<HouseholdState>(HouseholdState(householdId)) {

    private val householdId get() = state.householdId

    private fun officer(): String? = sessions.session()?.officerId.also { id ->
        if (id == null) update { it.copy(error = UiError(Problem.NOT_ENROLLED)) }
    }

    fun refresh() {
        val officer = officer() ?: return
        val result = attempt { store.residentsNeedingHelp(officer).filter { it.householdId == householdId } }
        result.onSuccess { list -> update { it.copy(residents = list) } }
        result.uiError?.let { err -> update { it.copy(error = err) } }
    }

    /**
     * Record the visit's outcome. [VisitOutcome.COME_BACK] needs [revisitAtMs]; see
     * [comeBackTomorrow] for the one-tap case.
     */
    fun recordVisit(outcome: VisitOutcome, revisitAtMs: Long? = null, note: String? = null) {
        val officer = officer() ?: return
        val result = attempt {
            store.recordVisit(
                NewVisit(
                    householdId = householdId,
                    officerId = officer,
                    outcome = outcome,
                    revisitAtMs = revisitAtMs,
                    note = note?.takeIf { it.isNotBlank() },
                ),
            )
        }
        result.onSuccess { id -> update { it.copy(lastRecorded = Recorded.Visit(id, outcome), undone = false, error = null) } }
        result.uiError?.let { err -> update { it.copy(error = err) } }
    }

    /** "Come back tomorrow": a revisit 24 hours from now. */
    fun comeBackTomorrow() = recordVisit(VisitOutcome.COME_BACK, revisitAtMs = nowMs() + DAY_MS)

    /**
     * Record an assistance step for a resident of this household; [failure] null means it
     * succeeded. A successful level-2 reception needs the [receivingPoint].
     */
    fun recordAssist(
        residentId: String,
        step: AssistStep,
        failure: FailureReason? = null,
        receivingPoint: String? = null,
        note: String? = null,
    ) {
        val officer = officer() ?: return
        val result = attempt {
            store.recordAssist(
                NewAssist(
                    residentId = residentId,
                    officerId = officer,
                    step = step,
                    failure = failure,
                    receivingPoint = receivingPoint?.takeIf { it.isNotBlank() },
                    note = note?.takeIf { it.isNotBlank() },
                ),
            )
        }
        result.onSuccess { id ->
            update { it.copy(lastRecorded = Recorded.Assist(id, residentId, step, failure), undone = false, error = null) }
            refresh()
        }
        result.uiError?.let { err -> update { it.copy(error = err) } }
    }

    /** Undo the last thing recorded on this screen (retracts it; the retraction syncs too). */
    fun undoLast() {
        val last = state.lastRecorded ?: return
        if (state.undone) return
        val result = attempt { store.retract(last.factId, "undone on the phone") }
        result.onSuccess {
            update { it.copy(undone = true, error = null) }
            refresh()
        }
        result.uiError?.let { err -> update { it.copy(error = err) } }
    }

    companion object {
        const val DAY_MS = 24L * 60 * 60 * 1000
    }
}
