package vn.doorstep.demo.logic

import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import vn.doorstep.core.AssistStep
import vn.doorstep.core.Need

/** Pure logic and the app's sources and resources, checked without the core. */
class UnitsTest {
    private val app = File(Fixtures.root, "android-demo/app/src/main")

    @Test
    fun `meters give a percent only against a quota, capped at 100`() {
        assertEquals(30, Meter(3, 10).percent)
        assertEquals(100, Meter(12, 10).percent)
        assertNull(Meter(5, 0).percent)
    }

    @Test
    fun `every open need suggests a step, done suggests none`() {
        Need.values().forEach { need ->
            assertEquals(need == Need.DONE, suggestedSteps(need).isEmpty(), "$need")
        }
        assertEquals(listOf(AssistStep.LEVEL2_ACTIVATED), suggestedSteps(Need.LEVEL2_TO_ACTIVATE))
    }

    private fun stringNames(values: String): Map<String, String> {
        val doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(File(app, "res/$values/strings.xml"))
        val nodes = doc.getElementsByTagName("string")
        return (0 until nodes.length).associate { i ->
            val e = nodes.item(i) as org.w3c.dom.Element
            e.getAttribute("name") to e.textContent
        }
    }

    @Test
    fun `Vietnamese is the default language and English has the same strings`() {
        val vi = stringNames("values")
        val en = stringNames("values-en")
        assertEquals(vi.keys, en.keys)
        assertEquals("Đăng ký", vi["enrol_button"])
        assertEquals("Enrol", en["enrol_button"])
        // Same format arguments in both languages.
        val args = Regex("%\\d\\$[sd]")
        vi.forEach { (name, text) ->
            assertEquals(args.findAll(text).map { it.value }.toSet(), args.findAll(en.getValue(name)).map { it.value }.toSet(), name)
        }
    }

    @Test
    fun `the view models import nothing from Android`() {
        val logic = File(app, "kotlin/vn/doorstep/demo/logic").listFiles()!!.filter { it.name.endsWith(".kt") }
        assertTrue(logic.size >= 8, "found ${logic.map { it.name }}")
        logic.forEach { f ->
            val imports = f.readLines().filter { it.startsWith("import ") }
            assertTrue(imports.none { it.startsWith("import android.") || it.startsWith("import androidx.") }, "${f.name}: $imports")
        }
    }
}
