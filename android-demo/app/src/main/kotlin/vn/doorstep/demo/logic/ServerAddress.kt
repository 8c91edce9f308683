package vn.doorstep.demo.logic

import java.net.URI

/**
 * The rule for a server address: `https://`, or `http://` to this phone itself only (loopback:
 * `127.0.0.1`, `localhost`, `[::1]`; with `adb reverse tcp:8080 tcp:8080` a developer reaches
 * a server on their machine that way). Residents' data never crosses a network in clear.
 *
 * The app checks it itself, before enrolment and before every sync, because the core syncs
 * through its own HTTP client (Rust), which Android's network security configuration
 * (`res/xml/network_security_config.xml`, the same rule for the app's own connections) does
 * not govern.
 */
object ServerAddress {
    /** What is wrong with [url] as a server address (field `server_url`), or null. */
    fun problem(url: String): Problem? {
        val u = url.trim()
        if (u.isEmpty()) return Problem.REQUIRED
        val parsed = try {
            URI(u)
        } catch (_: Exception) {
            return Problem.BAD_URL
        }
        val host = parsed.host?.lowercase() ?: return Problem.BAD_URL
        return when (parsed.scheme?.lowercase()) {
            "https" -> null
            "http" -> if (isLoopback(host)) null else Problem.CLEARTEXT
            else -> Problem.BAD_URL
        }
    }

    /** Whether [host] names this phone itself. */
    fun isLoopback(host: String): Boolean =
        host == "localhost" || host == "[::1]" || host == "::1" || host.startsWith("127.")
}
