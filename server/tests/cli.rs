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

/// `officer add` of the field officer the sessions use; prints the id.
fn add_officer(db_args: &[&str]) -> String {
    ok(
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
    )
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
    let officer = add_officer(db_args);
    let officer = officer.trim();
    assert_eq!(officer.len(), 36, "an officer id: {officer}");
    ok(
        db_args,
        &["assign", "--officer", officer, "--village", "22738-01"],
    );
    let code = ok(db_args, &["enrol-code", "--officer", officer]);
    assert_eq!(code.trim().len(), 10, "a code: {code}");
    resident_export(db_args);
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

/// `resident export`: everything held about one person, found by their ID number (read from
/// a file or stdin, never the command line), written to a file only its owner can read;
/// audited without the ID number; an unknown number finds nothing (and is audited too); a
/// malformed one is refused naming the field, never echoing it.
fn resident_export(db_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let campaign = ok(
        db_args,
        &[
            "campaign",
            "add",
            "--name",
            "Cao điểm",
            "--start",
            "2023-06-27",
            "--end",
            "2023-09-15",
            "--target",
            "10",
            "--unit",
            "58",
        ],
    );
    let roster = dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        "household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account
         HH1,22738-01,12 Lê Lợi,Trần Thị Bí Mật,1990-05-17,nữ,058190001234,0912345678,chủ hộ,
         HH1,22738-01,12 Lê Lợi,Nguyễn Văn Khác,1988,nam,,,chồng,
",
    )
    .unwrap();
    let out = ok(
        db_args,
        &[
            "roster",
            "import",
            "--campaign",
            campaign.trim(),
            roster.to_str().unwrap(),
        ],
    );
    assert!(out.contains("0 rejected"), "{out}");
    let id_file = dir.path().join("id");
    std::fs::write(
        &id_file,
        "0581 9000 1234
",
    )
    .unwrap();
    let export = dir.path().join("export.json");
    ok(
        db_args,
        &[
            "resident",
            "export",
            "--id-number-file",
            id_file.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only: {mode:o}");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    let residents = json["residents"].as_array().unwrap();
    assert_eq!(residents.len(), 1, "{json}");
    let r = &residents[0];
    assert_eq!(r["resident"]["full_name"], "Trần Thị Bí Mật");
    assert_eq!(r["resident"]["phone"], "0912345678");
    assert_eq!(r["household"]["address"], "12 Lê Lợi");
    assert!(r["visits_to_household"].as_array().unwrap().is_empty());
    assert!(r["account_state"].is_object() || r["account_state"].is_null());
    // Not another resident of the household.
    assert!(!json.to_string().contains("Nguyễn Văn Khác"));
    // The file is not overwritten.
    assert!(!doorstep(
        db_args,
        &[
            "resident",
            "export",
            "--id-number-file",
            id_file.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
        ],
    )
    .status
    .success());
    // Unknown (well-formed): nothing found, on stdout.
    std::fs::write(
        &id_file,
        "058190009999
",
    )
    .unwrap();
    let none = ok(
        db_args,
        &[
            "resident",
            "export",
            "--id-number-file",
            id_file.to_str().unwrap(),
        ],
    );
    let none: serde_json::Value = serde_json::from_str(&none).unwrap();
    assert_eq!(none["residents"].as_array().unwrap().len(), 0);
    // Malformed: refused, naming the field, not echoing the value.
    std::fs::write(
        &id_file,
        "05819-ABC
",
    )
    .unwrap();
    let bad = doorstep(
        db_args,
        &[
            "resident",
            "export",
            "--id-number-file",
            id_file.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("id_number") && !err.contains("05819-ABC"),
        "{err}"
    );
    // Audited: one row per export, the resident's id or `-`, never the ID number.
    if let ["--db", path] = db_args {
        let conn = rusqlite::Connection::open(path).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare(
                "SELECT target, detail FROM audit WHERE action = 'resident_export' ORDER BY rowid",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].0, r["resident"]["id"].as_str().unwrap());
        assert_eq!(rows[1], ("-".to_owned(), "found=0".to_owned()));
        assert!(rows
            .iter()
            .all(|(t, d)| !t.contains("0581") && !d.contains("0581")));
    }
    // Erasure: refused without --yes; then every personal field blanked and the resident
    // deleted; the household's other resident untouched; audited with the resident's id.
    std::fs::write(&id_file, "058190001234\n").unwrap();
    let id = id_file.to_str().unwrap();
    assert!(
        !doorstep(db_args, &["resident", "erase", "--id-number-file", id])
            .status
            .success()
    );
    let out = ok(
        db_args,
        &["resident", "erase", "--id-number-file", id, "--yes"],
    );
    assert!(out.contains("1 resident(s) erased"), "{out}");
    let after = ok(db_args, &["resident", "export", "--id-number-file", id]);
    assert!(
        !after.contains("Bí Mật"),
        "the number finds nobody now: {after}"
    );
    if let ["--db", path] = db_args {
        let conn = rusqlite::Connection::open(path).unwrap();
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        );
        let row: Row = conn
            .query_row(
                "SELECT full_name, birth_date, id_number, phone, deleted FROM residents WHERE id = ?1",
                [r["resident"]["id"].as_str().unwrap()],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (None, None, None, None, 1));
        let other: i64 = conn
            .query_row(
                "SELECT count(*) FROM residents WHERE full_name = 'Nguyễn Văn Khác' AND deleted = 0",
                [],
                |x| x.get(0),
            )
            .unwrap();
        assert_eq!(other, 1);
        let audited: String = conn
            .query_row(
                "SELECT target FROM audit WHERE action = 'resident_erase'",
                [],
                |x| x.get(0),
            )
            .unwrap();
        assert_eq!(audited, r["resident"]["id"].as_str().unwrap());
    }
    campaign_retention(db_args, campaign.trim());
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

/// `campaign retention` and `campaign purge`: a purge before the retention has run out is
/// refused naming the field; a period out of range too; once it has run out, the purge runs
/// and says what it erased (nothing here: the roster was written after the 2023 campaign's
/// last day, so it is not the campaign's to erase).
fn campaign_retention(db_args: &[&str], campaign: &str) {
    let retention = |days: &str| {
        doorstep(
            db_args,
            &[
                "campaign",
                "retention",
                "--campaign",
                campaign,
                "--days",
                days,
            ],
        )
    };
    assert!(retention("3650").status.success());
    let early = doorstep(db_args, &["campaign", "purge", "--campaign", campaign]);
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(
        err.contains("retention_days") && err.contains("--early"),
        "{err}"
    );
    let wrong = retention("99999");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("retention_days"));
    let set = retention("0");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let out = ok(db_args, &["campaign", "purge", "--campaign", campaign]);
    assert!(
        out.contains("0 household(s), 0 resident(s) and 0 fact(s) erased"),
        "{out}"
    );
}

#[test]
fn console_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    console_session(&["--db", db.to_str().unwrap()]);
}

#[test]
fn backup_copies_the_database_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let db_args = ["--db", db.to_str().unwrap()];
    console_session(&db_args);
    let out = dir.path().join("copy.db");
    let printed = ok(&db_args, &["backup", out.to_str().unwrap()]);
    assert!(printed.starts_with("backed up "), "{printed}");
    // The copy is a database the console can read: the officer made above is in it.
    let listed = ok(&["--db", out.to_str().unwrap()], &["device", "list"]);
    assert!(listed.starts_with("id\t"), "{listed}");
    let n: i64 = rusqlite::Connection::open(&out)
        .unwrap()
        .query_row("SELECT count(*) FROM officers", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1, "{n}");
    // A second backup to the same name is refused, naming the argument, and leaves it whole.
    let again = doorstep(&db_args, &["backup", out.to_str().unwrap()]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("out:") && err.contains("never overwrites"),
        "{err}"
    );
    // On PostgreSQL it says what to use instead.
    let pg = doorstep(
        &["--database", "postgres://nobody@127.0.0.1:1/none"],
        &["backup", "x.dump"],
    );
    assert!(!pg.status.success());
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
}

#[test]
fn bundle_import_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let db_args = ["--db", db.to_str().unwrap()];
    let missing = doorstep(&db_args, &["bundle", "import", "/nonexistent/x.bundle"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading the bundle"));
    let junk = dir.path().join("junk.bundle");
    std::fs::write(&junk, b"DOORSTEP-BUNDLE-1\n0912345678").unwrap();
    let out = doorstep(&db_args, &["bundle", "import", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bundle"), "{err}");
    assert!(
        !err.contains("0912345678"),
        "the error repeats the file's content: {err}"
    );
    // An area bundle for a device the server does not know: refused, no file written.
    let out_file = dir.path().join("area.bundle");
    let unknown = doorstep(
        &db_args,
        &[
            "bundle",
            "area",
            "--device",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("no such device"), "{err}");
    assert!(!out_file.exists());
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

#[test]
fn a_hub_without_an_enrolment_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("hub.db");
    let out = doorstep(
        &[],
        &[
            "hub",
            "--upstream",
            "http://127.0.0.1:9",
            "--store",
            store.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--code"), "{err}");
    // Its store and key were made (encrypted, owner-only key); no token without enrolment.
    assert!(store.exists());
    let key = dir.path().join("hub.db.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!dir.path().join("hub.db.token").exists());

    // With --db-key-file the store takes that key and no key file is made beside it.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("hub.key");
    ok(&[], &["db-key", key.to_str().unwrap()]);
    let store2 = dir.path().join("hub2.db");
    let hub = |k: &std::path::Path| {
        doorstep(
            &["--db-key-file", k.to_str().unwrap()],
            &[
                "hub",
                "--upstream",
                "http://127.0.0.1:9",
                "--store",
                store2.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
        )
    };
    let out = hub(&key);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--code"));
    assert!(store2.exists() && !dir.path().join("hub2.db.key").exists());
    let other = keys.path().join("other.key");
    ok(&[], &["db-key", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&hub(&other).stderr).into_owned();
    assert!(err.contains("wrong key"), "{err}");
}

/// Every file in `dir` but `skip`, concatenated.
fn bytes_of_files(dir: &std::path::Path, skip: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p != skip {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// `--db FILE --db-key-file KEY`.
fn keyed<'a>(db: &'a std::path::Path, key: &'a std::path::Path) -> [&'a str; 4] {
    [
        "--db",
        db.to_str().unwrap(),
        "--db-key-file",
        key.to_str().unwrap(),
    ]
}

/// `--db-key-file`: the whole console session on a database encrypted from its creation (no
/// name in any byte of its files), a plain database encrypted in place at its first start with
/// a key, refused without it or with a key file others may read, backed up encrypted, and
/// given a new key.
#[test]
fn a_database_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("db.key");
    let made = ok(&[], &["db-key", key.to_str().unwrap()]);
    assert!(made.starts_with("wrote a new key"), "{made}");
    assert!(!doorstep(&[], &["db-key", key.to_str().unwrap()])
        .status
        .success());

    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("server.db");
    let enc = keyed(&db, &key);
    console_session(&enc);
    let files = bytes_of_files(data.path(), &key);
    assert!(files.len() > 100_000, "{}", files.len());
    for clear in [
        "Trần Văn Bình",
        "Khu phố 1",
        "SQLite format 3",
        "CREATE TABLE",
    ] {
        assert!(!holds(&files, clear), "{clear} in clear");
    }
    let without = doorstep(&["--db", db.to_str().unwrap()], &["device", "list"]);
    assert!(!without.status.success());
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(err.contains("wrong key"), "{err}");

    // Backed up encrypted: the copy opens with the key only.
    let copy = data.path().join("copy.db");
    ok(&enc, &["backup", copy.to_str().unwrap()]);
    let copy_bytes = std::fs::read(&copy).unwrap();
    assert!(!holds(&copy_bytes, "Trần Văn Bình"));
    let listed = ok(&keyed(&copy, &key), &["device", "list"]);
    assert!(listed.starts_with("id\t"), "{listed}");

    // A new key: the database opens with it, not with the old one.
    let new_key = dir.path().join("db2.key");
    ok(&[], &["db-key", new_key.to_str().unwrap()]);
    let moved = ok(&enc, &["db-rekey", new_key.to_str().unwrap()]);
    assert!(moved.contains("key is now"), "{moved}");
    let old_key = doorstep(&enc, &["device", "list"]);
    assert!(String::from_utf8_lossy(&old_key.stderr).contains("wrong key"));
    let with_new = keyed(&db, &new_key);
    assert!(ok(&with_new, &["device", "list"]).starts_with("id\t"));
    assert!(!holds(&bytes_of_files(data.path(), &key), "Trần Văn Bình"));
    let unkeyed = doorstep(
        &["--db", db.to_str().unwrap()],
        &["db-rekey", key.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&unkeyed.stderr)
        .contains("db-key-file: give the database's current key"));

    // A plain database is encrypted in place by its first open with a key.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = plain_dir.path().join("server.db");
    let plain_args = ["--db", plain.to_str().unwrap()];
    ok(
        &plain_args,
        &[
            "units",
            "import",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../data/ninh-thuan-2023-units.csv"
            ),
        ],
    );
    add_officer(&plain_args);
    assert!(holds(
        &bytes_of_files(plain_dir.path(), &key),
        "Trần Văn Bình"
    ));
    let plain_enc = keyed(&plain, &key);
    ok(&plain_enc, &["device", "list"]);
    let after = bytes_of_files(plain_dir.path(), &key);
    assert!(!holds(&after, "Trần Văn Bình") && !holds(&after, "SQLite format 3"));
    let conn = rusqlite::Connection::open(&plain).unwrap();
    let k = doorstep_server::key_file::read(&key).unwrap();
    doorstep_core::key::unlock_connection(&conn, Some(&k)).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM officers WHERE name = 'Trần Văn Bình'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);

    // The demo's synthetic data set stays a plain file.
    let demo = doorstep(&keyed(&plain, &key), &["serve", "--demo"]);
    assert!(!demo.status.success());
    assert!(String::from_utf8_lossy(&demo.stderr).contains("without --db-key-file"));

    // A key file other users may read is refused (it is read before anything is opened).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = dir.path().join("loose.key");
        std::fs::write(&loose, "07".repeat(32)).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o640)).unwrap();
        let out = doorstep(&keyed(&plain, &loose), &["device", "list"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("db-key-file: other users may read it"),
            "{err}"
        );
    }
}
