package vn.doorstep.demo.logic

import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.URI
import java.security.GeneralSecurityException
import javax.net.ssl.HostnameVerifier
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLPeerUnverifiedException
import javax.net.ssl.SSLSocketFactory
import vn.doorstep.core.HttpAnswer
import vn.doorstep.core.HttpFailure
import vn.doorstep.core.HttpHeader
import vn.doorstep.core.HttpTransport

/**
 * The core's enrolment and sync over the platform's own HTTP stack (`HttpURLConnection`),
 * given to the store with `FieldStore.useHttpTransport` ([vn.doorstep.demo.ui.DoorstepApp]).
 * The phone's library is built without an HTTP stack of its own (scripts/android-build.sh), and
 * the app's network security configuration (res/xml/network_security_config.xml) governs every
 * request: no cleartext except to this phone itself, the system's certificate authorities, and
 * a `<pin-set>` where a province pins its server's key in the app.
 *
 * [pinned] is the pin handed out with the enrolment code ([ServerPin]), when there is one: the
 * server is then trusted by its key alone, checked on every connection before anything is sent
 * (a province's own certificate needs no new app). Only over `https://`.
 *
 * Plain `java.net` and `javax.net.ssl` (no `android.*`): the JVM check runs it against a real
 * server.
 */
class PlatformHttp(
    private val pinned: PinnedServer = PinnedServer(),
    private val maxAnswerBytes: Int = 64 shl 20,
) : HttpTransport {

    override fun post(url: String, headers: List<HttpHeader>, body: ByteArray, timeoutMs: Long): HttpAnswer {
        val connection = try {
            URI(url).toURL().openConnection() as HttpURLConnection
        } catch (e: Exception) {
            // The core checked the address already; this is a platform refusal (no handler).
            throw HttpFailure.Failed("cannot open ${e.javaClass.simpleName}")
        }
        // Connecting and each read are bounded by the time the core gives the request.
        val timeout = timeoutMs.coerceIn(1, Int.MAX_VALUE.toLong()).toInt()
        pinned.pin?.let { text ->
            val https = connection as? HttpsURLConnection
                ?: throw HttpFailure.Untrusted("a pinned server must be reached over https://")
            https.sslSocketFactory = pinnedFactory(text)
            // The pinned key authenticates the server; its name is not what is trusted.
            https.hostnameVerifier = ANY_NAME
        }
        try {
            connection.requestMethod = "POST"
            connection.instanceFollowRedirects = false
            connection.useCaches = false
            connection.doOutput = true
            connection.connectTimeout = timeout
            connection.readTimeout = timeout
            // No streaming mode: the body is in memory already, and a streamed POST answered
            // 401 (a wrong enrolment code, a revoked token) throws HttpRetryException instead of
            // giving the answer, whose body says why.
            for (h in headers) connection.setRequestProperty(h.name, h.value)
            connection.outputStream.use { it.write(body) }
            val status = connection.responseCode
            // An error status is an answer: its JSON body says what went wrong.
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val bytes = stream?.use { read(it) } ?: ByteArray(0)
            val answerHeaders = connection.headerFields
                .filterKeys { it != null }
                .flatMap { (name, values) -> values.map { HttpHeader(name, it) } }
            return HttpAnswer(status, answerHeaders, bytes)
        } catch (e: IOException) {
            // Never the request's headers or body here: the authorization header is the token.
            val detail = "${e.javaClass.simpleName}: ${e.message ?: "no detail"}"
            throw if (certificateRefused(e)) HttpFailure.Untrusted(detail) else HttpFailure.Failed(detail)
        } finally {
            connection.disconnect()
        }
    }

    /** The socket factory for [text]'s pin, made once per pin: the same factory (and host name
     * verifier) on every request lets the platform keep the connection and its TLS session
     * alive between the sync's requests, instead of a new handshake each time on a slow link. */
    @Volatile private var factory: Pair<String, SSLSocketFactory>? = null

    private fun pinnedFactory(text: String): SSLSocketFactory {
        factory?.let { (pin, f) -> if (pin == text) return f }
        val pin = ServerPin.parse(text)
            ?: throw HttpFailure.Untrusted("the pinned key is not a pin (sha256/ and base64)")
        val tls = SSLContext.getInstance("TLS")
        tls.init(null, arrayOf(ServerPin.Trust(pin)), null)
        return tls.socketFactory.also { factory = text to it }
    }

    private fun read(stream: InputStream): ByteArray {
        val out = ByteArrayOutputStream()
        val buffer = ByteArray(16 * 1024)
        while (true) {
            val n = stream.read(buffer)
            if (n < 0) return out.toByteArray()
            if (out.size() + n > maxAnswerBytes) throw IOException("an answer of more than $maxAnswerBytes bytes")
            out.write(buffer, 0, n)
        }
    }

    companion object {
        private val ANY_NAME = HostnameVerifier { _, _ -> true }

        /**
         * Whether the handshake failed on the server's certificate (an unknown authority, a pin
         * that does not match, expired, another name) rather than on the link: retrying cannot
         * help, and the worker must be told. Android reports a failed pin as an
         * `SSLHandshakeException` caused by a `CertificateException`; the JVM's own checks also
         * end in a `GeneralSecurityException` (`CertificateException`, `CertPathValidatorException`).
         */
        fun certificateRefused(e: Throwable): Boolean {
            var cause: Throwable? = e
            var depth = 0
            while (cause != null && depth < 16) {
                if (cause is SSLPeerUnverifiedException || cause is GeneralSecurityException) return true
                cause = cause.cause
                depth++
            }
            return false
        }
    }
}
