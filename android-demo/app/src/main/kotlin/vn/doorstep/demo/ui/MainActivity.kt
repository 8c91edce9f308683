package vn.doorstep.demo.ui

import android.app.Activity
import android.app.AlertDialog
import android.os.Bundle
import android.text.Editable
import android.text.InputType
import android.text.TextWatcher
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import java.text.DateFormat
import java.util.Date
import vn.doorstep.core.FailureReason
import vn.doorstep.core.VisitOutcome
import vn.doorstep.demo.R
import vn.doorstep.demo.logic.EnrolViewModel
import vn.doorstep.demo.logic.HouseholdViewModel
import vn.doorstep.demo.logic.LastSync
import vn.doorstep.demo.logic.Meter
import vn.doorstep.demo.logic.Metric
import vn.doorstep.demo.logic.NeedsHelpViewModel
import vn.doorstep.demo.logic.Recorded
import vn.doorstep.demo.logic.SearchViewModel
import vn.doorstep.demo.logic.SyncState
import vn.doorstep.demo.logic.TodayViewModel
import vn.doorstep.demo.logic.suggestedSteps

/**
 * The whole UI: classic platform views built in code (no layouts, no Jetpack), one screen at a
 * time. Every decision is in the view models of `vn.doorstep.demo.logic`; this class only draws
 * their state and forwards taps.
 */
class MainActivity : Activity() {
    private val app: DoorstepApp get() = application as DoorstepApp
    private lateinit var root: LinearLayout
    private val stops = mutableListOf<() -> Unit>()
    private var onHome = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        root = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 32, 32, 32)
        }
        setContentView(ScrollView(this).apply { addView(root) })
        if (app.sessions.session() == null) showEnrol() else showToday()
    }

    override fun onDestroy() {
        clear()
        super.onDestroy()
    }

    @Deprecated("Deprecated in Java")
    override fun onBackPressed() {
        if (onHome || app.sessions.session() == null) {
            @Suppress("DEPRECATION")
            super.onBackPressed()
        } else {
            showToday()
        }
    }

    private fun clear() {
        stops.forEach { it() }
        stops.clear()
        root.removeAllViews()
        onHome = false
    }

    private fun text(s: CharSequence = "", size: Float = 16f) =
        TextView(this).apply { this.text = s; textSize = size }.also { root.addView(it) }

    private fun button(label: CharSequence, into: LinearLayout = root, onClick: () -> Unit) =
        Button(this).apply { text = label; setOnClickListener { onClick() } }.also { into.addView(it) }

    private fun field(hint: Int, type: Int = InputType.TYPE_CLASS_TEXT) =
        EditText(this).apply { setHint(hint); inputType = type }.also { root.addView(it) }

    private fun list() = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }.also { root.addView(it) }

    private fun time(ms: Long): String = DateFormat.getDateTimeInstance(DateFormat.SHORT, DateFormat.SHORT).format(Date(ms))

    // Enrolment -----------------------------------------------------------------------------

    private fun showEnrol() {
        clear()
        val vm = EnrolViewModel(app.store, app.sessions, app.deviceName, app.pinned)
        text(getString(R.string.enrol_title), 22f)
        text(getString(R.string.enrol_help))
        val url = field(R.string.enrol_server_url, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI)
        val code = field(R.string.enrol_code)
        val pin = field(R.string.enrol_server_pin, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS)
        val enrol = button(getString(R.string.enrol_button)) {
            val u = url.text.toString()
            val c = code.text.toString()
            val p = pin.text.toString()
            Background.run { vm.enrol(u, c, p) }
        }
        val status = text()
        stops += Background.observeOnMain(vm) { s ->
            enrol.isEnabled = !s.busy
            status.text = when {
                s.busy -> getString(R.string.working)
                s.error != null -> Texts.error(this, s.error)
                else -> ""
            }
            if (s.enrolled) {
                app.scheduler.schedulePeriodic()
                app.scheduler.requestSync()
                showToday()
            }
        }
    }

    // Today ---------------------------------------------------------------------------------

    private fun showToday() {
        clear()
        onHome = true
        val vm = TodayViewModel(app.store, app.sessions)
        val title = text(size = 22f)
        val summary = text()
        val syncLine = text()
        val actions = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }.also { root.addView(it) }
        button(getString(R.string.button_sync), actions) { app.scheduler.requestSync() }
        button(getString(R.string.button_search), actions) { showSearch() }
        button(getString(R.string.button_needs_help), actions) { showNeedsHelp() }
        val progress = list()
        val households = list()
        stops += Background.observeOnMain(vm) { s ->
            title.text = getString(R.string.today_title, s.day)
            summary.text = getString(R.string.visited_count, s.visitedToday, s.households.size, s.residentsNeedingHelp.toInt())
            progress.removeAllViews()
            val p = s.progress
            if (p == null) {
                progress.addView(TextView(this).apply { setText(R.string.no_campaign) })
            } else {
                progress.addView(TextView(this).apply { setText(R.string.progress_day) })
                p.day.forEach { (m, meter) -> progress.addView(TextView(this).apply { text = meterText(m, meter) }) }
                progress.addView(TextView(this).apply { text = getString(R.string.progress_campaign, p.campaignName) })
                p.campaign.forEach { (m, meter) -> progress.addView(TextView(this).apply { text = meterText(m, meter) }) }
            }
            households.removeAllViews()
            if (s.loaded && s.households.isEmpty()) households.addView(TextView(this).apply { setText(R.string.no_households) })
            s.households.forEach { h ->
                val mark = when {
                    h.visitedToday -> " " + getString(R.string.household_visited)
                    h.revisitAtMs != null -> " " + getString(R.string.household_revisit)
                    else -> ""
                }
                val label = getString(R.string.household_row, h.code, h.address ?: "", h.residentsNeedingHelp.toInt()) + mark
                button(label, households) { showHousehold(h.id, h.code) }
            }
            s.error?.let { summary.text = Texts.error(this, it) }
        }
        stops += Background.observeOnMain(app.sync) { s ->
            syncLine.text = syncText(s)
            if (!s.running) Background.run { vm.refresh() }
        }
    }

    private fun meterText(m: Metric, meter: Meter): String {
        val pct = meter.percent
        return if (pct == null) {
            getString(R.string.meter_no_quota, getString(Texts.metric(m)), meter.done.toInt())
        } else {
            getString(R.string.meter_with_quota, getString(Texts.metric(m)), meter.done.toInt(), meter.quota.toInt(), pct)
        }
    }

    private fun syncText(s: SyncState): String {
        if (s.running) return getString(R.string.sync_running, s.pushedSoFar.toInt(), s.pulledSoFar.toInt())
        val last: LastSync = s.last ?: return getString(R.string.sync_never) + " " + getString(R.string.sync_scheduled)
        val error = last.error
        return if (error == null) {
            val refused = if (last.refused > 0) " " + getString(R.string.sync_refused, last.refused) else ""
            getString(R.string.sync_ok, time(last.atMs), last.pushed.toInt(), last.pulled.toInt()) + refused
        } else {
            getString(R.string.sync_failed, time(last.atMs), Texts.error(this, vn.doorstep.demo.logic.UiError(error)))
        }
    }

    // One household: visit and assistance ----------------------------------------------------

    private fun showHousehold(householdId: String, label: String) {
        clear()
        val vm = HouseholdViewModel(app.store, app.sessions, householdId)
        text(getString(R.string.household_title, label), 22f)
        text(getString(R.string.visit_outcome))
        val outcomes = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }.also { root.addView(it) }
        listOf(VisitOutcome.MET, VisitOutcome.NOBODY_HOME, VisitOutcome.MOVED_AWAY, VisitOutcome.REFUSED).forEach { o ->
            button(getString(Texts.outcome(o)), outcomes) { recorded { vm.recordVisit(o) } }
        }
        button(getString(Texts.outcome(VisitOutcome.COME_BACK)), outcomes) { recorded { vm.comeBackTomorrow() } }
        val status = text()
        val undo = button(getString(R.string.button_undo)) { recorded { vm.undoLast() } }
        val point = field(R.string.receiving_point_hint)
        text(getString(R.string.residents_needing_help), 18f)
        val residents = list()
        button(getString(R.string.button_back)) { showToday() }
        stops += Background.observeOnMain(vm) { s ->
            val last = s.lastRecorded
            status.text = when {
                s.error != null -> Texts.error(this, s.error)
                s.undone -> getString(R.string.undone)
                last is Recorded.Visit -> getString(R.string.recorded_visit, getString(Texts.outcome(last.outcome)))
                last is Recorded.Assist && last.failure != null ->
                    getString(R.string.recorded_failure, getString(Texts.step(last.step)), getString(Texts.failure(last.failure)))
                last is Recorded.Assist -> getString(R.string.recorded_assist, getString(Texts.step(last.step)))
                else -> ""
            }
            undo.visibility = if (last != null && !s.undone) View.VISIBLE else View.GONE
            residents.removeAllViews()
            if (s.residents.isEmpty()) residents.addView(TextView(this).apply { setText(R.string.household_all_done) })
            s.residents.forEach { r ->
                residents.addView(TextView(this).apply { text = "${r.fullName} · ${getString(Texts.need(r.need))}"; textSize = 17f })
                suggestedSteps(r.need).forEach { step ->
                    button(getString(Texts.step(step)), residents) {
                        val p = point.text.toString()
                        recorded { vm.recordAssist(r.id, step, receivingPoint = p) }
                    }
                    button(getString(R.string.button_failed, getString(Texts.step(step))), residents) {
                        chooseFailure { reason -> recorded { vm.recordAssist(r.id, step, failure = reason) } }
                    }
                }
            }
        }
        Background.run { vm.refresh() }
    }

    /** Record something, then ask for a sync: it runs now if a network is connected, else later. */
    private fun recorded(work: () -> Unit) {
        Background.run {
            work()
            app.scheduler.requestSync()
        }
    }

    private fun chooseFailure(chosen: (FailureReason) -> Unit) {
        val reasons = FailureReason.values()
        AlertDialog.Builder(this)
            .setItems(reasons.map { getString(Texts.failure(it)) }.toTypedArray()) { _, which -> chosen(reasons[which]) }
            .show()
    }

    // Search ----------------------------------------------------------------------------------

    private fun showSearch() {
        clear()
        val vm = SearchViewModel(app.store)
        text(getString(R.string.search_title), 22f)
        val query = field(R.string.search_hint, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PERSON_NAME)
        val hits = list()
        button(getString(R.string.button_back)) { showToday() }
        query.addTextChangedListener(object : TextWatcher {
            override fun beforeTextChanged(s: CharSequence?, start: Int, count: Int, after: Int) {}
            override fun onTextChanged(s: CharSequence?, start: Int, before: Int, count: Int) {}
            override fun afterTextChanged(s: Editable?) {
                val q = s?.toString() ?: ""
                Background.run { vm.search(q) }
            }
        })
        stops += Background.observeOnMain(vm) { s ->
            hits.removeAllViews()
            s.error?.let { hits.addView(TextView(this).apply { text = Texts.error(this@MainActivity, it) }) }
            if (s.query.isNotBlank() && s.hits.isEmpty() && s.error == null) {
                hits.addView(TextView(this).apply { setText(R.string.search_none) })
            }
            s.hits.forEach { h ->
                val label = getString(R.string.search_hit, h.fullName, h.birthDate ?: "—", getString(Texts.need(h.need)))
                button(label, hits) { showHousehold(h.householdId, h.fullName) }
            }
        }
    }

    // Who still needs help ----------------------------------------------------------------------

    private fun showNeedsHelp() {
        clear()
        val vm = NeedsHelpViewModel(app.store, app.sessions)
        val title = text(size = 22f)
        val sections = list()
        text(getString(R.string.blockers_title), 18f)
        val blockers = list()
        button(getString(R.string.button_back)) { showToday() }
        stops += Background.observeOnMain(vm) { s ->
            title.text = getString(R.string.needs_help_title, s.total)
            sections.removeAllViews()
            s.error?.let { sections.addView(TextView(this).apply { text = Texts.error(this@MainActivity, it) }) }
            s.sections.forEach { section ->
                sections.addView(
                    TextView(this).apply {
                        text = getString(R.string.needs_help_section, getString(Texts.need(section.need)), section.residents.size)
                        textSize = 18f
                    },
                )
                section.residents.forEach { r -> button(r.fullName, sections) { showHousehold(r.householdId, r.fullName) } }
            }
            blockers.removeAllViews()
            s.blockers.forEach { b ->
                blockers.addView(
                    TextView(this).apply {
                        text = getString(R.string.blocker_row, getString(Texts.failure(b.reason)), b.residents.toInt(), b.attempts.toInt())
                    },
                )
            }
        }
        Background.run { vm.refresh() }
    }
}
