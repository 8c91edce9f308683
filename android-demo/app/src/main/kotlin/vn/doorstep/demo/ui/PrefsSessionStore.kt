package vn.doorstep.demo.ui

import android.content.Context
import android.util.Base64
import vn.doorstep.demo.logic.LastSync
import vn.doorstep.demo.logic.Problem
import vn.doorstep.demo.logic.Session
import vn.doorstep.demo.logic.SessionStore

/**
 * The session and the last sync's result in SharedPreferences (the app's private storage). The
 * device token is kept only sealed by a key in AndroidKeyStore ([KeystoreSealer]): a copy of the
 * preferences file (a backup, a rooted phone's dump) does not give it away. A token an older
 * version saved in clear is sealed, and the clear copy removed, the first time it is read.
 */
class PrefsSessionStore(context: Context) : SessionStore {
    private val prefs = context.getSharedPreferences("doorstep", Context.MODE_PRIVATE)
    private val sealer = KeystoreSealer(TOKEN_ALIAS)

    override fun session(): Session? {
        val url = prefs.getString("server_url", null) ?: return null
        val officer = prefs.getString("officer_id", null) ?: return null
        val device = prefs.getString("device_id", null) ?: return null
        val token = prefs.getString("token_sealed", null)?.let(::unseal)
            ?: prefs.getString("token", null)?.also { clear ->
                prefs.edit().putString("token_sealed", seal(clear)).remove("token").apply()
            }
            ?: return null
        return Session(url, officer, device, token, prefs.getString("server_pin", null))
    }

    override fun saveSession(session: Session) {
        prefs.edit()
            .putString("server_url", session.serverUrl)
            .putString("officer_id", session.officerId)
            .putString("device_id", session.deviceId)
            .putString("token_sealed", seal(session.token))
            .putString("server_pin", session.serverPin)
            .remove("token")
            .apply()
    }

    override fun clearSession() {
        prefs.edit().remove("server_url").remove("officer_id").remove("device_id")
            .remove("token").remove("token_sealed").remove("server_pin").apply()
    }

    private fun seal(token: String): String =
        Base64.encodeToString(sealer.seal(token.toByteArray(Charsets.UTF_8)), Base64.NO_WRAP)

    private fun unseal(sealed: String): String =
        String(sealer.open(Base64.decode(sealed, Base64.NO_WRAP)), Charsets.UTF_8)

    private companion object {
        const val TOKEN_ALIAS = "doorstep-token-seal"
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
