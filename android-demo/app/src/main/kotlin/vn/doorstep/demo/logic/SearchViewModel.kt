package vn.doorstep.demo.logic

import vn.doorstep.core.FieldStore
import vn.doorstep.core.SearchHit

data class SearchState(
    val query: String = "",
    /** Exact-diacritic matches first (the core ranks them). */
    val hits: List<SearchHit> = emptyList(),
    val error: UiError? = null,
)

/**
 * Resident search. The core folds both sides (NFD, marks stripped, đ→d, lower case), so a worker
 * can type "dang thi dao" without a Vietnamese keyboard and find "Đặng Thị Đào". The screen
 * does no folding of its own.
 */
class SearchViewModel(
    private val store: FieldStore,
    private val limit: Int = 30,
) : StateHolder<SearchState>(SearchState()) {

    fun search(query: String) {
        if (query.isBlank()) {
            update { SearchState(query = query) }
            return
        }
        val result = attempt { store.searchResidents(query.trim(), limit) }
        result.onSuccess { hits -> update { SearchState(query = query, hits = hits) } }
        result.uiError?.let { err -> update { SearchState(query = query, error = err) } }
    }
}
