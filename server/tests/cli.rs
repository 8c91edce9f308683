//! The `doorstep` console commands on both backends: the same commands against an SQLite file
//! (`--db`) and a PostgreSQL database (`--database`, from `DOORSTEP_TEST_DATABASE_URL`'s
//! cluster); a connection string's password never shows in what the binary prints; and `serve`
//! refuses plain HTTP off loopback.

use doorstep_server::pg::testing;
use std::process::{Command, Output};

fn doorstep(db_args: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(db_args)
        .args(args)
        .env_remove("DOORSTEP_DB")
        .env_remove("DOORSTEP_DATABASE_URL")
        .output()
        .expect("run doorstep")
}

fn ok(db_args: &[&str], args: &[&str]) -> String {
    let out = doorstep(db_args, args);
    assert!(
        out.status.success(),
        "doorstep {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Units, an officer, an assignment, an enrolment code, the device list: each command a new
/// process (on PostgreSQL each builds its view from the feed), each seeing the last's work.
fn console_session(db_args: &[&str]) {
    let units = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/ninh-thuan-2023-units.csv"
    );
    let out = ok(db_args, &["units", "import", units]);
    assert!(out.contains("0 rejected"), "{out}");
    ok(
        db_args,
        &[
            "units",
            "add",
            "--code",
            "22738-01",
            "--parent",
            "22738",
            "--level",
            "village",
            "--kind",
            "khu phố",
            "--name",
            "Khu phố 1",
        ],
    );
    let officer = ok(
        db_args,
        &[
            "officer",
            "add",
            "--name",
            "Trần Văn Bình",
            "--role",
            "field",
            "--unit",
            "22738",
        ],
    );
    let officer = officer.trim();
    assert_eq!(officer.len(), 36, "an officer id: {officer}");
    ok(
        db_args,
        &["assign", "--officer", officer, "--village", "22738-01"],
    );
    let code = ok(db_args, &["enrol-code", "--officer", officer]);
    assert_eq!(code.trim().len(), 10, "a code: {code}");
    let admin = ok(db_args, &["admin", "bootstrap", "--name", "Quản trị"]);
    assert!(admin.contains("token"), "{admin}");
    // A second bootstrap is refused.
    assert!(
        !doorstep(db_args, &["admin", "bootstrap", "--name", "Khác"])
            .status
            .success()
    );
    // An enrolment code for an officer that does not exist is refused.
    let nobody = uuid::Uuid::now_v7().to_string();
    assert!(!doorstep(db_args, &["enrol-code", "--officer", &nobody])
        .status
        .success());
    let list = ok(db_args, &["device", "list"]);
    assert_eq!(list.lines().count(), 1, "no devices yet: {list}");
    second_factor(db_args);
}

/// `user totp enable` prints the `otpauth://` URI and the secret once (a second `enable`
/// replaces them), `disable` removes it; a name nobody signs in with is refused, naming the
/// field.
fn second_factor(db_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a-long-password\n").unwrap();
    let pw = pw.to_str().unwrap();
    let args = ["user", "add", "--name", "Trưởng ban", "--role", "province"];
    ok(
        db_args,
        &[&args[..], &["--unit", "58", "--password-file", pw]].concat(),
    );
    let out = ok(db_args, &["user", "totp", "enable", "--name", "Trưởng ban"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (uri, secret) = (lines[0], lines[1]);
    assert!(
        uri.starts_with("otpauth://totp/Doorstep%3ATr%C6%B0%E1%BB%9Fng%20ban?"),
        "{uri}"
    );
    assert!(
        uri.contains(&format!("secret={secret}&issuer=Doorstep")),
        "{uri}"
    );
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    // Shown once: enabling again gives a new secret (the old one stops working).
    let again = ok(db_args, &["user", "totp", "enable", "--name", "Trưởng ban"]);
    assert!(!again.contains(secret), "{again}");
    let out = ok(
        db_args,
        &["user", "totp", "disable", "--name", "Trưởng ban"],
    );
    assert!(out.contains("removed"), "{out}");
    let out = ok(
        db_args,
        &["user", "totp", "disable", "--name", "Trưởng ban"],
    );
    assert!(out.contains("had no second factor"), "{out}");
    let refused = doorstep(db_args, &["user", "totp", "enable", "--name", "nobody"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("name"), "{err}");
}

#[test]
fn console_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    console_session(&["--db", db.to_str().unwrap()]);
}

#[test]
fn console_commands_on_postgres() {
    let Some(base) = testing::base_url() else {
        return;
    };
    let url = testing::fresh_database(&base).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    console_session(&["--database", &url, "--view-cache", cache_dir]);
    // The commands shared one cached view of this database (each caught it up rather than
    // rebuilding it), kept private to the server's user.
    let mut names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db") || n.ends_with(".lock"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("view-") && names[0].ends_with(".db"),
        "{names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the view cache is readable by others: {mode:o}"
        );
    }
}

#[test]
fn a_connection_password_is_never_printed() {
    // Nothing listens on port 1: the connection fails.
    let url = "postgres://officer:s3cr3t-pw@127.0.0.1:1/doorstep";
    let out = doorstep(&["--database", url], &["device", "list"]);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("PostgreSQL"), "says what failed: {all}");
    assert!(!all.contains("s3cr3t-pw"), "the password leaked: {all}");
    // A malformed string is refused without echoing it either.
    let out = doorstep(
        &["--database", "postgres://x:s3cr3t-pw@[bad"],
        &["device", "list"],
    );
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cr3t-pw"));
}

/// Without TLS, `serve` refuses an address that is not loopback (residents' data must not cross
/// a network in clear), naming both ways out; half a TLS pair is a usage error.
#[test]
fn plain_http_is_served_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    let out = doorstep(&["--db", db], &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address")
            && err.contains("--tls-cert")
            && err.contains("--insecure-plain-http"),
        "{err}"
    );
    let out = doorstep(
        &["--db", db],
        &["serve", "--listen", "127.0.0.1:0", "--tls-cert", "c.pem"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
