// The Doorstep Android demo. Open this folder in Android Studio after running
// scripts/android-build.sh (it puts the native libraries and the generated bindings in app/).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "doorstep-android-demo"
include(":app")
