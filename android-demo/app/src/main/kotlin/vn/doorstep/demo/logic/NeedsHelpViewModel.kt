package vn.doorstep.demo.logic

import vn.doorstep.core.BlockerCount
import vn.doorstep.core.FieldStore
import vn.doorstep.core.Need
import vn.doorstep.core.ResidentNeed

/** Residents who need the same next help. */
data class NeedSection(val need: Need, val residents: List<ResidentNeed>)

data class NeedsHelpState(
    val loaded: Boolean = false,
    /** One section per need, in the order of the path to an account (no account first). */
    val sections: List<NeedSection> = emptyList(),
    /** The officer's failed attempts by reason, most residents first. */
    val blockers: List<BlockerCount> = emptyList(),
    val error: UiError? = null,
) {
    val total: Int get() = sections.sumOf { it.residents.size }
}

/** Who in the officer's area still needs which help, and what blocks them. */
class NeedsHelpViewModel(
    private val store: FieldStore,
    private val sessions: SessionStore,
) : StateHolder<NeedsHelpState>(NeedsHelpState()) {

    fun refresh() {
        val officer = sessions.session()?.officerId
        if (officer == null) {
            update { NeedsHelpState(loaded = true, error = UiError(Problem.NOT_ENROLLED)) }
            return
        }
        val result = attempt {
            val residents = store.residentsNeedingHelp(officer).filter { it.need != Need.DONE }
            val sections = residents.groupBy { it.need }
                .toSortedMap(compareBy { it.ordinal })
                .map { (need, list) -> NeedSection(need, list.sortedBy { it.fullName }) }
            val blockers = store.blockers(officer).sortedByDescending { it.residents }
            NeedsHelpState(loaded = true, sections = sections, blockers = blockers)
        }
        result.onSuccess { s -> update { s } }
        result.uiError?.let { err -> update { NeedsHelpState(loaded = true, error = err) } }
    }
}
