package vn.doorstep.core

import java.io.File
import java.time.LocalDate

/** Shared data of the binding tests: the official units, one village, a tiny roster. */
object Fixtures {
    val root: File = File(System.getProperty("doorstep.root") ?: "../../..").canonicalFile
    val unitsCsv: File = File(root, "data/ninh-thuan-2023-units.csv")
    /** The tests' store key. An app's comes from Android Keystore / the iOS Keychain. */
    val key: ByteArray = ByteArray(32) { (it * 7 + 1).toByte() }
    const val COMMUNE = "22738" // Phường Đô Vinh
    const val VILLAGE = "22738-01"
    val villagesCsv = "code,parent_code,level,kind,name\n$VILLAGE,$COMMUNE,village,khu phố,Khu phố 1\n"
    val roster = """
        household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account
        HH001,$VILLAGE,12 Lê Lợi,Nguyễn Văn A,1975-03-12,nam,,0912345678,chủ hộ,
        HH001,$VILLAGE,12 Lê Lợi,Trần Thị Bình,1980,nữ,,,vợ,level1_pending
        HH002,$VILLAGE,5 Trần Phú,Đặng Thị Đào,1990,nữ,,,chủ hộ,
    """.trimIndent() + "\n"

    /** A campaign running from ten days ago to seventy days from the store's today. */
    fun campaign(store: FieldStore): Campaign {
        val today = LocalDate.parse(store.today())
        return Campaign(
            id = newId(),
            name = "Cao điểm 80 ngày đêm",
            startDate = today.minusDays(10).toString(),
            endDate = today.plusDays(70).toString(),
            target = 264720,
            unitCode = "58",
        )
    }
}
