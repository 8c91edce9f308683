package vn.doorstep.demo.ui

import android.content.Context
import vn.doorstep.demo.logic.LastSync
import vn.doorstep.demo.logic.Problem
import vn.doorstep.demo.logic.Session
import vn.doorstep.demo.logic.SessionStore

/**
 * The session and the last sync's result in SharedPreferences (the app's private storage).
 * A production app keeps the token in the Android Keystore (e.g. Jetpack Security's
 * EncryptedSharedPreferences); this demo keeps its compile dependencies to the platform.
 */
class PrefsSessionStore(context: Context) : SessionStore {
    private val prefs = context.getSharedPreferences("doorstep", Context.MODE_PRIVATE)

    override fun session(): Session? {
        val url = prefs.getString("server_url", null) ?: return null
        val officer = prefs.getString("officer_id", null) ?: return null
        val device = prefs.getString("device_id", null) ?: return null
        val token = prefs.getString("token", null) ?: return null
        return Session(url, officer, device, token)
    }

    override fun saveSession(session: Session) {
        prefs.edit()
            .putString("server_url", session.serverUrl)
            .putString("officer_id", session.officerId)
            .putString("device_id", session.deviceId)
            .putString("token", session.token)
            .apply()
    }

    override fun clearSession() {
        prefs.edit().remove("server_url").remove("officer_id").remove("device_id").remove("token").apply()
    }

    override fun lastSync(): LastSync? {
        if (!prefs.contains("sync_at")) return null
        return LastSync(
            atMs = prefs.getLong("sync_at", 0),
            error = prefs.getString("sync_error", null)?.let { name -> Problem.values().firstOrNull { it.name == name } },
            pushed = prefs.getLong("sync_pushed", 0),
            pulled = prefs.getLong("sync_pulled", 0),
            refused = prefs.getInt("sync_refused", 0),
        )
    }

    override fun saveLastSync(result: LastSync) {
        prefs.edit()
            .putLong("sync_at", result.atMs)
            .putString("sync_error", result.error?.name)
            .putLong("sync_pushed", result.pushed)
            .putLong("sync_pulled", result.pulled)
            .putInt("sync_refused", result.refused)
            .apply()
    }
}
