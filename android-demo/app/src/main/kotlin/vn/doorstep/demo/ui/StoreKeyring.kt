package vn.doorstep.demo.ui

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import java.security.KeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The store's 32-byte encryption key (issue #13, ADR 0008), the Android Keystore way.
 *
 * The key itself is random, made once with [SecureRandom]. It is kept only *wrapped*: encrypted
 * with AES-256-GCM under a key that lives inside AndroidKeyStore (hardware-backed where the
 * phone has it) and never leaves it. The wrapped bytes are in the app's no-backup private
 * storage, so neither the key nor the store is ever readable beside the file, and a backup or
 * a copied file cannot be opened elsewhere.
 *
 * Losing the AndroidKeyStore key (the app's data cleared, a factory reset) loses the store:
 * the core then answers `DoorstepException.WrongKey`, and the phone syncs again into a new
 * store (everything it recorded and pushed is on the server).
 */
class StoreKeyring(context: Context) {
    private val wrappedFile = File(context.noBackupFilesDir, "store.key.wrapped")

    /** The store key: unwrapped from its file, or made and wrapped the first time. */
    fun storeKey(): ByteArray {
        val wrapping = wrappingKey()
        if (wrappedFile.exists()) {
            val bytes = wrappedFile.readBytes()
            val iv = bytes.copyOfRange(0, IV_BYTES)
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.DECRYPT_MODE, wrapping, GCMParameterSpec(TAG_BITS, iv))
            return cipher.doFinal(bytes, IV_BYTES, bytes.size - IV_BYTES)
        }
        val key = ByteArray(KEY_BYTES).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, wrapping) // the Keystore picks a fresh IV
        val sealed = cipher.iv + cipher.doFinal(key)
        // Write beside, then rename: a crash never leaves half a wrapped key.
        val tmp = File(wrappedFile.path + ".tmp")
        tmp.writeBytes(sealed)
        check(tmp.renameTo(wrappedFile)) { "could not save the wrapped store key" }
        return key
    }

    /** The AES key held in AndroidKeyStore under [ALIAS], made the first time. */
    private fun wrappingKey(): SecretKey {
        val keyStore = KeyStore.getInstance(ANDROID_KEY_STORE).apply { load(null) }
        (keyStore.getEntry(ALIAS, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEY_STORE)
        generator.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    private companion object {
        const val ANDROID_KEY_STORE = "AndroidKeyStore"
        const val ALIAS = "doorstep-store-key-wrap"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val KEY_BYTES = 32
        const val IV_BYTES = 12
        const val TAG_BITS = 128
    }
}
