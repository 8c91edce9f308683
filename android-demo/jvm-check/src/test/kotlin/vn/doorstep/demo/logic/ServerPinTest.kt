package vn.doorstep.demo.logic

import java.security.MessageDigest
import java.security.cert.CertificateException
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull

/** The pin's text form, as `doorstep tls-pin` prints it and the enrol screen takes it. */
class ServerPinTest {
    private val emptySha256 = MessageDigest.getInstance("SHA-256").digest(ByteArray(0))

    @Test
    fun `a pin is sha256 and the canonical base64 of 32 bytes`() {
        // The SHA-256 of nothing, e3b0c442…, in base64.
        val pin = "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        assertContentEquals(emptySha256, ServerPin.parse(pin))
        assertContentEquals(emptySha256, ServerPin.parse("  $pin\n"))
        for (bad in listOf(
            "",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", // no prefix
            "SHA256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", // another prefix
            "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=", // bits after the last byte
            "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", // no padding
            "sha256/47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", // URL-safe alphabet
            "sha256/AAAA", // 3 bytes
            "sha256/" + "A".repeat(44), // 33 bytes
            "sha256/47DEQpj8 HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF=",
        )) {
            assertNull(ServerPin.parse(bad), bad)
        }
    }

    @Test
    fun `the trust manager refuses an empty chain and client checks`() {
        val trust = ServerPin.Trust(emptySha256)
        assertFailsWith<CertificateException> { trust.checkServerTrusted(emptyArray(), "ECDHE_ECDSA") }
        assertFailsWith<CertificateException> { trust.checkClientTrusted(emptyArray(), "ECDHE_ECDSA") }
    }
}
