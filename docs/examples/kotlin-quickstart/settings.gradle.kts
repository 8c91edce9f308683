// Doorstep Kotlin quick start (Gradle). Not run on the project's machines (no Gradle there):
// scripts/test-quickstart.sh builds and runs the same sources with this folder's pom.xml.
rootProject.name = "doorstep-kotlin-quickstart"

dependencyResolutionManagement {
    repositories {
        mavenCentral()
    }
}
