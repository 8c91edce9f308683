package vn.doorstep.demo.ui

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Seals what the app keeps secret at rest — the store's key ([StoreKeyring]), the device token
 * ([PrefsSessionStore]) — with AES-256-GCM under a key that lives inside AndroidKeyStore
 * (hardware-backed where the phone has it) under [alias], made the first time, which never
 * leaves it. A sealed value is the 12-byte IV followed by the ciphertext and its tag; a copied
 * file or a backup cannot be opened elsewhere.
 */
class KeystoreSealer(private val alias: String) {
    /** [plain] sealed (a fresh IV each time, chosen by the Keystore). */
    fun seal(plain: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        return cipher.iv + cipher.doFinal(plain)
    }

    /** The plain bytes of a value [seal] made; throws if it was altered or sealed elsewhere. */
    fun open(sealed: ByteArray): ByteArray {
        require(sealed.size > IV_BYTES) { "a sealed value is longer than its IV" }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BITS, sealed, 0, IV_BYTES))
        return cipher.doFinal(sealed, IV_BYTES, sealed.size - IV_BYTES)
    }

    /** The AES key held in AndroidKeyStore under [alias], made the first time. */
    private fun key(): SecretKey {
        val keyStore = KeyStore.getInstance(ANDROID_KEY_STORE).apply { load(null) }
        (keyStore.getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEY_STORE)
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    private companion object {
        const val ANDROID_KEY_STORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
        const val TAG_BITS = 128
    }
}
