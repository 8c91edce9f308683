// The demo app. Its native libraries (src/main/jniLibs/<abi>/libdoorstep_ffi.so) and the
// generated Kotlin bindings (src/main/generated/vn/doorstep/core/doorstep.kt) are produced by
// scripts/android-build.sh at the repository's root; run it before building here.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "vn.doorstep.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "vn.doorstep.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
        // Vietnamese is the default language (res/values); English is res/values-en.
        resourceConfigurations += listOf("vi", "en")
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    sourceSets {
        getByName("main") {
            java.srcDirs("src/main/kotlin", "src/main/generated")
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    // AGP strips the native libraries' debug symbols when it packages them (with the NDK's
    // llvm-strip), so the APK carries the stripped size scripts/bindings.sh reports.
}

dependencies {
    // JNA with its Android native dispatch libraries (the AAR, not the desktop jar).
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    // The bindings' suspend functions (syncAsync, enrolAsync, importRosterFileAsync).
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
