package vn.doorstep.demo.logic

import java.io.File
import java.nio.file.Files
import java.time.LocalDate
import vn.doorstep.core.Campaign
import vn.doorstep.core.FieldStore
import vn.doorstep.core.Officer
import vn.doorstep.core.Role
import vn.doorstep.core.newId

/** The official units, one village, a small roster: a commune's field day on one phone. */
object Fixtures {
    val root: File = File(System.getProperty("doorstep.root") ?: "../..").canonicalFile
    val unitsCsv: File = File(root, "data/ninh-thuan-2023-units.csv")
    /** The tests' store key; the app's is made and wrapped by AndroidKeyStore (ui/StoreKeyring.kt). */
    val key: ByteArray = ByteArray(32) { (it * 11 + 3).toByte() }
    const val COMMUNE = "22738" // Phường Đô Vinh
    const val VILLAGE = "22738-01"
    const val CAMPAIGN_NAME = "Cao điểm 80 ngày đêm"
    val villagesCsv = "code,parent_code,level,kind,name\n$VILLAGE,$COMMUNE,village,khu phố,Khu phố 1\n"
    val roster = """
        household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account
        HH001,$VILLAGE,12 Lê Lợi,Nguyễn Văn A,1975-03-12,nam,,0912345678,chủ hộ,
        HH001,$VILLAGE,12 Lê Lợi,Trần Thị Bình,1980,nữ,,,vợ,level1_pending
        HH002,$VILLAGE,5 Trần Phú,Đặng Thị Đào,1990,nữ,,,chủ hộ,
        HH002,$VILLAGE,5 Trần Phú,Đặng Văn Đức,1988,nam,,,chồng,
    """.trimIndent() + "\n"

    /** A campaign running from ten days ago to seventy days from the store's today. */
    fun campaign(store: FieldStore): Campaign {
        val today = LocalDate.parse(store.today())
        return Campaign(
            id = newId(),
            name = CAMPAIGN_NAME,
            startDate = today.minusDays(10).toString(),
            endDate = today.plusDays(70).toString(),
            target = 264720,
            unitCode = "58",
        )
    }

    fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile()

    /**
     * A phone whose store holds the units, the village, a campaign, the roster and an officer
     * assigned to the village, as a station would hand it over; the session says the phone
     * belongs to that officer (no server: the token is never used).
     */
    class Phone(dir: File = tempDir("doorstep-android")) {
        val store: FieldStore = FieldStore.open(File(dir, "phone.db").path, Fixtures.key)
        val sessions = MemorySessionStore()
        val officerId: String = newId()
        val campaign: Campaign = campaign(store)

        init {
            store.importUnitsCsv(unitsCsv.readText())
            store.importUnitsCsv(villagesCsv)
            store.putCampaign(campaign)
            store.putOfficer(Officer(officerId, "CSKV Trần Văn Bình", Role.FIELD, COMMUNE))
            check(store.importRoster(campaign.id, roster).accepted == 4L)
            store.assignVillage(officerId, VILLAGE)
            sessions.saveSession(Session("http://127.0.0.1:9", officerId, newId(), "unused-token"))
        }
    }
}
