// Doorstep Kotlin quick start: the generated bindings + this program, on the JVM.
//
//   scripts/bindings.sh --debug            (from the repository's root: bindings and library)
//   gradle run --args="http://127.0.0.1:8080 <enrolment code> /tmp/doorstep-quickstart.db"
//
// Paths default to the repository's target/ (this folder is docs/examples/kotlin-quickstart);
// override them with -Pdoorstep.bindings=<dir of vn/doorstep/core/doorstep.kt> and
// -Pdoorstep.lib=<dir of libdoorstep_ffi.so / .dylib>.
// NOTE: this file has not been run (Gradle cannot be downloaded on the project's machines);
// the same sources are built and run by pom.xml in scripts/test-quickstart.sh.

plugins {
    kotlin("jvm") version "2.2.21"
    application
}

val repoRoot = layout.projectDirectory.dir("../../..")
val bindingsDir = providers.gradleProperty("doorstep.bindings")
    .orElse(repoRoot.dir("target/bindings/kotlin").asFile.path)
val libDir = providers.gradleProperty("doorstep.lib")
    .orElse(repoRoot.dir("target/bindings/lib").asFile.path)

dependencies {
    // The generated bindings call the native library through JNA (>= 5.12). On Android use
    // "net.java.dev.jna:jna:5.14.0@aar" instead.
    implementation("net.java.dev.jna:jna:5.14.0")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
}

// The generated Kotlin (one file, package vn.doorstep.core) is compiled with the app's sources.
sourceSets {
    main {
        kotlin.srcDir(bindingsDir)
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

application {
    mainClass.set("vn.doorstep.quickstart.QuickStartKt")
}

tasks.named<JavaExec>("run") {
    // Where JNA looks for libdoorstep_ffi.so (Linux) / libdoorstep_ffi.dylib (macOS). Instead,
    // the library can ship inside the jar under the resources folder of its platform:
    // src/main/resources/linux-x86-64/, linux-aarch64/, darwin-aarch64/, darwin-x86-64/...
    systemProperty("jna.library.path", libDir.get())
    // The server, code and store may also come from the environment:
    // DOORSTEP_SERVER, DOORSTEP_CODE, DOORSTEP_STORE (and DOORSTEP_CA_PEM for a pinned CA).
}
