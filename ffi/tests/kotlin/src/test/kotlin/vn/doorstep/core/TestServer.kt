package vn.doorstep.core

import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.util.concurrent.TimeUnit
import kotlin.test.fail

/** A `doorstep` server database in [dir], its console, and a `doorstep serve` process on it. */
class TestServer(private val dir: File) {
    private val bin: String = System.getProperty("doorstep.bin") ?: fail("-Ddoorstep.bin is not set")
    private val db = File(dir, "server.db").path
    private var process: Process? = null

    /** Run a console command on the server's database; its standard output, trimmed. */
    fun doorstep(vararg args: String): String {
        val p = ProcessBuilder(listOf(bin, "--db", db) + args)
            .redirectError(File(dir, "console.err"))
            .start()
        val out = p.inputStream.bufferedReader().readText().trim()
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            fail("doorstep ${args.joinToString(" ")} failed: ${File(dir, "console.err").readText()}")
        }
        return out
    }

    /** Start `doorstep serve` on a free loopback port; its URL once healthy. */
    fun serve(): String {
        val port = ServerSocket(0).use { it.localPort }
        val log = File(dir, "server.log")
        process = ProcessBuilder(bin, "--db", db, "serve", "--listen", "127.0.0.1:$port")
            .redirectErrorStream(true)
            .redirectOutput(log)
            .start()
        val url = "http://127.0.0.1:$port"
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < deadline) {
            if (process?.isAlive != true) fail("the server exited: ${log.readText()}")
            try {
                val c = URI("$url/health").toURL().openConnection() as HttpURLConnection
                c.connectTimeout = 500
                if (c.responseCode == 200) return url
            } catch (_: Exception) {
            }
            Thread.sleep(100)
        }
        fail("the server did not become healthy: ${log.readText()}")
    }

    fun stop() {
        process?.destroy()
        process?.waitFor(10, TimeUnit.SECONDS)
        process?.destroyForcibly()
    }
}
