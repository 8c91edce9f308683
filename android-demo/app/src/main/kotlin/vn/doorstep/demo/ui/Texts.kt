package vn.doorstep.demo.ui

import android.content.Context
import vn.doorstep.core.AssistStep
import vn.doorstep.core.FailureReason
import vn.doorstep.core.Need
import vn.doorstep.core.VisitOutcome
import vn.doorstep.demo.R
import vn.doorstep.demo.logic.Metric
import vn.doorstep.demo.logic.Problem
import vn.doorstep.demo.logic.UiError

/** The translated text of each value the logic layer reports (Vietnamese by default). */
object Texts {
    fun outcome(o: VisitOutcome) = when (o) {
        VisitOutcome.MET -> R.string.outcome_met
        VisitOutcome.NOBODY_HOME -> R.string.outcome_nobody_home
        VisitOutcome.MOVED_AWAY -> R.string.outcome_moved_away
        VisitOutcome.REFUSED -> R.string.outcome_refused
        VisitOutcome.COME_BACK -> R.string.outcome_come_back
    }

    fun step(s: AssistStep) = when (s) {
        AssistStep.LEVEL1_GUIDED -> R.string.step_level1_guided
        AssistStep.LEVEL1_ACTIVATED -> R.string.step_level1_activated
        AssistStep.LEVEL2_RECEIVED -> R.string.step_level2_received
        AssistStep.LEVEL2_ACTIVATED -> R.string.step_level2_activated
        AssistStep.PORTAL_GUIDED -> R.string.step_portal_guided
    }

    fun failure(f: FailureReason) = when (f) {
        FailureReason.PHONE_NOT_OWN_NAME -> R.string.failure_phone_not_own_name
        FailureReason.OTP_NOT_RECEIVED -> R.string.failure_otp_not_received
        FailureReason.NO_CHIP_ID_CARD -> R.string.failure_no_chip_id_card
        FailureReason.BOUND_TO_OTHER_DEVICE -> R.string.failure_bound_to_other_device
        FailureReason.OTHER -> R.string.failure_other
    }

    fun need(n: Need) = when (n) {
        Need.NO_ACCOUNT -> R.string.need_no_account
        Need.LEVEL1_PENDING -> R.string.need_level1_pending
        Need.LEVEL2_TO_TAKE -> R.string.need_level2_to_take
        Need.LEVEL2_TO_ACTIVATE -> R.string.need_level2_to_activate
        Need.PORTAL_GUIDANCE -> R.string.need_portal_guidance
        Need.DONE -> R.string.need_done
    }

    fun metric(m: Metric) = when (m) {
        Metric.VISITS -> R.string.metric_visits
        Metric.LEVEL1_ACTIVATED -> R.string.metric_level1
        Metric.LEVEL2_RECEIVED -> R.string.metric_level2_received
        Metric.LEVEL2_ACTIVATED -> R.string.metric_level2_activated
        Metric.PORTAL_GUIDED -> R.string.metric_portal
    }

    /** The message for an error; input problems name the field (never its value). */
    fun error(context: Context, e: UiError): String {
        val field = e.field ?: ""
        return when (e.problem) {
            Problem.NETWORK -> context.getString(R.string.problem_network)
            Problem.RE_ENROL -> context.getString(R.string.problem_re_enrol)
            Problem.UPDATE_APP -> context.getString(R.string.problem_update_app)
            Problem.INVALID_INPUT -> context.getString(R.string.problem_invalid_input, fieldLabel(context, field))
            Problem.NOT_FOUND -> context.getString(R.string.problem_not_found, fieldLabel(context, field))
            Problem.STORAGE -> context.getString(R.string.problem_storage)
            Problem.WRONG_KEY -> context.getString(R.string.problem_wrong_key)
            Problem.UNTRUSTED_SERVER -> context.getString(R.string.problem_untrusted_server)
            Problem.LEASE_EXPIRED -> context.getString(R.string.problem_lease_expired)
            Problem.CODE_UNKNOWN -> context.getString(R.string.problem_code_unknown)
            Problem.CODE_USED -> context.getString(R.string.problem_code_used)
            Problem.CODE_EXPIRED -> context.getString(R.string.problem_code_expired)
            Problem.CANCELLED -> context.getString(R.string.problem_cancelled)
            Problem.OTHER -> context.getString(R.string.problem_other)
            Problem.NOT_ENROLLED -> context.getString(R.string.problem_not_enrolled)
            Problem.REQUIRED -> context.getString(R.string.problem_required, fieldLabel(context, field))
            Problem.BAD_URL -> context.getString(R.string.problem_bad_url)
            Problem.CLEARTEXT -> context.getString(R.string.problem_cleartext)
            Problem.BAD_PIN -> context.getString(R.string.problem_bad_pin)
        }
    }

    private fun fieldLabel(context: Context, field: String): String = when (field) {
        "server_url" -> context.getString(R.string.enrol_server_url)
        "code" -> context.getString(R.string.enrol_code)
        "server_pin" -> context.getString(R.string.enrol_server_pin)
        "receiving_point" -> context.getString(R.string.receiving_point_hint)
        else -> field
    }
}
