package vn.doorstep.demo.ui

import android.content.Context
import java.io.File
import java.security.SecureRandom

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
    private val sealer = KeystoreSealer(ALIAS)

    /** The store key: unwrapped from its file, or made and wrapped the first time. */
    fun storeKey(): ByteArray {
        if (wrappedFile.exists()) return sealer.open(wrappedFile.readBytes())
        val key = ByteArray(KEY_BYTES).also { SecureRandom().nextBytes(it) }
        // Write beside, then rename: a crash never leaves half a wrapped key.
        val tmp = File(wrappedFile.path + ".tmp")
        tmp.writeBytes(sealer.seal(key))
        check(tmp.renameTo(wrappedFile)) { "could not save the wrapped store key" }
        return key
    }

    private companion object {
        const val ALIAS = "doorstep-store-key-wrap"
        const val KEY_BYTES = 32
    }
}
