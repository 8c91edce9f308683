package vn.doorstep.demo.logic

import java.security.MessageDigest
import java.security.cert.CertificateException
import java.security.cert.X509Certificate
import javax.net.ssl.X509TrustManager

/**
 * A pin of the server's key, handed out with the enrolment code (typed, or read from the QR
 * code the station prints): `sha256/` and the base64 of the SHA-256 of the key's
 * SubjectPublicKeyInfo — the first line `doorstep tls-pin server.pem` prints, the form Android's
 * network security configuration and OkHttp use. A pinned server is trusted by its key alone:
 * a province's own certificate, self-signed or from its own authority, needs no change to the
 * app, and a certificate renewed with the same key keeps the pin.
 */
object ServerPin {
    const val PREFIX = "sha256/"

    /** The 32 bytes [text] pins, or null when it is not a pin (blanks around it are ignored). */
    fun parse(text: String): ByteArray? {
        val t = text.trim()
        if (!t.startsWith(PREFIX)) return null
        return base64(t.substring(PREFIX.length))?.takeIf { it.size == 32 }
    }

    /** The pin of [certificate]'s key, as text. */
    fun of(certificate: X509Certificate): String = PREFIX + encode(digest(certificate))

    private fun digest(certificate: X509Certificate): ByteArray =
        MessageDigest.getInstance("SHA-256").digest(certificate.publicKey.encoded)

    /**
     * Trusts a server whose own certificate (the first of the chain it presents) holds the
     * pinned key, and nothing else. The handshake proves the server holds that key's private
     * half, so neither the issuer nor the host name is checked: the pin replaces both.
     */
    class Trust(private val pin: ByteArray) : X509TrustManager {
        override fun checkServerTrusted(chain: Array<out X509Certificate>?, authType: String?) {
            val leaf = chain?.firstOrNull() ?: throw CertificateException("no server certificate")
            if (!MessageDigest.isEqual(digest(leaf), pin)) {
                throw CertificateException("pin verification failed: the server's key is not the pinned one")
            }
        }

        override fun checkClientTrusted(chain: Array<out X509Certificate>?, authType: String?) {
            throw CertificateException("this trust manager checks servers only")
        }

        override fun getAcceptedIssuers(): Array<X509Certificate> = emptyArray()
    }

    private const val ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /** Standard base64 with padding (java.util.Base64 needs API 26; the app's minimum is 24). */
    private fun base64(text: String): ByteArray? {
        if (text.isEmpty() || text.length % 4 != 0) return null
        val body = text.trimEnd('=')
        if (text.length - body.length > 2) return null
        val out = java.io.ByteArrayOutputStream()
        var bits = 0
        var count = 0
        for (c in body) {
            val v = ALPHABET.indexOf(c)
            if (v < 0) return null
            bits = (bits shl 6) or v
            count += 6
            if (count >= 8) {
                count -= 8
                out.write((bits shr count) and 0xff)
            }
        }
        // The bits left over must be zero padding, or the text is not canonical.
        if (bits and ((1 shl count) - 1) != 0) return null
        return out.toByteArray()
    }

    private fun encode(bytes: ByteArray): String {
        val sb = StringBuilder()
        var i = 0
        while (i < bytes.size) {
            val n = minOf(3, bytes.size - i)
            var chunk = 0
            for (k in 0 until 3) chunk = (chunk shl 8) or (if (k < n) bytes[i + k].toInt() and 0xff else 0)
            for (k in 0 until 4) sb.append(if (k <= n) ALPHABET[(chunk shr (18 - 6 * k)) and 63] else '=')
            i += 3
        }
        return sb.toString()
    }
}

/**
 * The pin in force for this phone's server, shared by the enrolment screen (the pin typed with
 * the code) and [PlatformHttp] (which checks it on every connection). Null: the system's
 * certificate authorities and the network security configuration decide.
 */
class PinnedServer(@Volatile var pin: String? = null)
