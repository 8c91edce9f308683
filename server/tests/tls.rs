//! TLS on the server itself, with certificates made in the test (rcgen): a client trusting the
//! test CA is served (HSTS, `Secure` session cookie), one trusting only the public roots or
//! another CA is refused at the handshake, plain HTTP to the TLS port gets no answer, a
//! certificate replaced on disk is served without a restart, and a broken replacement leaves the
//! previous one in place. The core's sync client pinned to the CA enrols and syncs; pinned to
//! another, or trusting the public roots, it gets a typed refusal at once (no retries).
//! `doorstep tls-pin` prints the pins (SHA-256 of each key) a phone's platform pins the server by.

use doorstep_core::{UnitInput, UnitLevel};
use doorstep_server::web::tls::{ReloadingCert, TlsFiles, RELOAD_EVERY};
use doorstep_server::SqliteBackend;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// A CA, and a server certificate for localhost and 127.0.0.1 that it signed (PEM: CA
/// certificate, server chain, server key).
struct Pki {
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
    /// SubjectPublicKeyInfo (DER) of the server's key, then of the CA's.
    spki: [Vec<u8>; 2],
}

fn pki(name: &str) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, format!("Doorstep test CA {name}"));
    let ca_key = KeyPair::generate().unwrap();
    let ca_spki = ca_key.subject_public_key_info();
    let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "doorstep test server");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", cert.pem(), ca.pem()),
        key_pem: key.serialize_pem(),
        spki: [key.subject_public_key_info(), ca_spki],
    }
}

fn write(files: &TlsFiles, p: &Pki) {
    // Key first, then the chain: the pair is consistent once the chain lands.
    std::fs::write(&files.key, &p.key_pem).unwrap();
    std::fs::write(&files.cert, &p.chain_pem).unwrap();
}

/// A client that trusts only `ca_pem` (or the public roots when `None`).
fn client(ca_pem: Option<&str>) -> ureq::Agent {
    let roots = match ca_pem {
        Some(pem) => RootCerts::from([Certificate::from_pem(pem.as_bytes()).unwrap()]),
        None => RootCerts::WebPki,
    };
    ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct Served {
    base: String,
    officer: uuid::Uuid,
    backend: Arc<SqliteBackend>,
    addr: std::net::SocketAddr,
    cert: Arc<ReloadingCert>,
    _rt: tokio::runtime::Runtime,
}

fn serve(dir: &Path, files: &TlsFiles) -> Served {
    let backend = Arc::new(SqliteBackend::open(dir.join("server.db")).unwrap());
    backend
        .with_store(|s| {
            s.put_unit(UnitInput {
                code: "58".into(),
                parent_code: None,
                level: UnitLevel::Province,
                kind: "tỉnh".into(),
                name: "Ninh Thuận".into(),
            })
        })
        .unwrap()
        .unwrap();
    let officer = uuid::Uuid::now_v7();
    backend
        .with_store(|s| {
            s.put_officer(doorstep_core::OfficerInput {
                id: officer,
                name: "Cán bộ".into(),
                role: doorstep_core::Role::Province,
                unit_code: "58".into(),
            })
        })
        .unwrap()
        .unwrap();
    let hash = doorstep_server::auth::hash_password("password-1234").unwrap();
    backend
        .add_command_user("test", "chief", "province", "58", &hash, 0)
        .unwrap();
    let state = doorstep_server::state(
        backend.clone(),
        doorstep_server::http::DEFAULT_MAX_BODY_BYTES,
    );
    let cert = ReloadingCert::open(files.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(doorstep_server::serve_tls(
        listener,
        state,
        cert.clone(),
        std::future::pending(),
    ));
    Served {
        base: format!("https://localhost:{}", addr.port()),
        officer,
        backend,
        addr,
        cert,
        _rt: rt,
    }
}

fn health(agent: &ureq::Agent, base: &str) -> Result<u16, ureq::Error> {
    agent
        .get(format!("{base}/health"))
        .call()
        .map(|r| r.status().as_u16())
}

#[test]
fn https_with_a_test_ca_is_verified_refused_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    let first = pki("one");
    write(&files, &first);
    let srv = serve(dir.path(), &files);

    // Verified against the test CA: served, with HSTS.
    let trusting = client(Some(&first.ca_pem));
    let resp = trusting.get(format!("{}/health", srv.base)).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // A refused sign-in over TLS is audited with the client's address.
    trusting
        .post(format!("{}/signin", srv.base))
        .content_type("application/x-www-form-urlencoded")
        .send("name=chief&password=wrong")
        .unwrap();
    assert!(srv
        .backend
        .audit(20)
        .unwrap()
        .iter()
        .any(|a| a.action == "sign_in_failed" && a.detail == "web from 127.0.0.1"));
    // The session cookie of a sign-in over TLS is Secure.
    let resp = trusting
        .post(format!("{}/signin", srv.base))
        .content_type("application/x-www-form-urlencoded")
        .send("name=chief&password=password-1234")
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Beside a new enrolment code, the devices page shows the pin of the key served, for the
    // phone to pin the server by (the pin `doorstep tls-pin` prints first for the same chain).
    let pin = doorstep_server::web::tls::pins(&files.cert)
        .unwrap()
        .remove(0);
    assert_eq!(srv.cert.pin().as_deref(), Some(pin.as_str()));
    let session = cookie.split(';').next().unwrap();
    let page = trusting
        .get(format!("{}/admin/devices?done=TESTCODE", srv.base))
        .header("cookie", session)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(page.contains("TESTCODE"), "{page}");
    assert!(page.contains(&format!("<code>{pin}</code>")), "{page}");
    // Refused: the public roots, another CA.
    assert!(health(&client(None), &srv.base).is_err());
    let second = pki("two");
    assert!(health(&client(Some(&second.ca_pem)), &srv.base).is_err());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .new_agent();
    assert!(plain
        .get(format!("http://{}/health", srv.addr))
        .call()
        .is_err());

    // A broken replacement (half-written chain) is not served; the old certificate stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    assert!(!srv.cert.reload_if_changed());
    assert_eq!(health(&trusting, &srv.base).unwrap(), 200);

    // A renewal on disk is served without a restart, by the server's own watcher.
    write(&files, &second);
    let renewed = client(Some(&second.ca_pem));
    let deadline = Instant::now() + RELOAD_EVERY * 3;
    while health(&renewed, &srv.base).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The pin follows the key now served.
    let renewed_pin = doorstep_server::web::tls::pins(&files.cert)
        .unwrap()
        .remove(0);
    assert_ne!(renewed_pin, pin);
    assert_eq!(srv.cert.pin(), Some(renewed_pin));
    // A new connection trusting only the old CA is refused (open ones keep their session).
    assert!(
        health(&client(Some(&first.ca_pem)), &srv.base).is_err(),
        "the old CA no longer verifies"
    );
}

#[test]
fn a_pair_that_does_not_load_names_the_file_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    let p = pki("three");
    std::fs::write(&files.cert, &p.chain_pem).unwrap();
    std::fs::write(&files.key, "no key here").unwrap();
    let e = ReloadingCert::open(files.clone()).unwrap_err().to_string();
    assert!(e.contains("key.pem") && e.contains("no private key"), "{e}");
    // A key of another certificate.
    std::fs::write(&files.key, pki("four").key_pem).unwrap();
    let e = ReloadingCert::open(files.clone()).unwrap_err().to_string();
    assert!(e.contains("cert.pem") && !e.contains("BEGIN"), "{e}");
    assert!(ReloadingCert::open(TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: files.key.clone(),
    })
    .unwrap_err()
    .to_string()
    .contains("missing.pem"));
}

#[test]
fn the_sync_client_pinned_to_the_ca_enrols_and_syncs_and_refuses_others() {
    use doorstep_core::sync::{enrol_with, sync, SyncConfig};
    use doorstep_core::{Error, Options, Store};
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    let ours = pki("pinned");
    write(&files, &ours);
    let srv = serve(dir.path(), &files);
    let code = |srv: &Served| {
        srv.backend
            .issue_enrol_code("test", srv.officer, 60, doorstep_server::now_ms())
            .unwrap()
            .code
    };
    let mut phone = Store::open_in_memory(Options::default()).unwrap();
    let config = |pin: Option<&str>| SyncConfig {
        trusted_ca_pem: pin.map(str::to_owned),
        ..SyncConfig::new(&srv.base, "")
    };
    // Pinned to another CA, or trusting the public roots: refused at once, typed, no retry.
    for pin in [Some(pki("other").ca_pem), None] {
        let started = Instant::now();
        let e = enrol_with(&mut phone, &config(pin.as_deref()), &code(&srv), "phone").unwrap_err();
        assert!(matches!(e, Error::Untrusted { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5), "retried");
    }
    // A pin that is not PEM is an input error naming the field.
    let e = enrol_with(
        &mut phone,
        &config(Some("not a certificate")),
        &code(&srv),
        "phone",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "trusted_ca_pem",
                ..
            }
        ),
        "{e}"
    );
    // Pinned to its CA: enrolled, and syncs.
    let enrolled = enrol_with(
        &mut phone,
        &config(Some(&ours.ca_pem)),
        &code(&srv),
        "phone",
    )
    .unwrap();
    assert_eq!(enrolled.officer_id, srv.officer);
    let mut pinned = config(Some(&ours.ca_pem));
    pinned.token = enrolled.token;
    let report = sync(&mut phone, &pinned, &mut |_| {}).unwrap();
    assert!(report.requests >= 1 && report.retries == 0, "{report:?}");
}

#[test]
fn tls_pin_prints_the_sha256_of_each_key_of_the_chain() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let p = pki("pins");
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, &p.chain_pem).unwrap();
    let pin = |spki: &[u8]| {
        format!(
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki))
        )
    };
    let expected = vec![pin(&p.spki[0]), pin(&p.spki[1])];
    assert_ne!(expected[0], expected[1]);
    assert_eq!(doorstep_server::web::tls::pins(&chain).unwrap(), expected);

    let run = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_doorstep"))
            .args(["tls-pin".as_ref(), file.as_os_str()])
            .env_remove("DOORSTEP_DB")
            .output()
            .unwrap()
    };
    let out = run(&chain);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with(&format!("{}  the server's certificate", expected[0])));
    assert!(lines[1].starts_with(&expected[1]));

    // A key file, or no file: refused, naming the file and never its content.
    let key = dir.path().join("key.pem");
    std::fs::write(&key, &p.key_pem).unwrap();
    for bad in [key, dir.path().join("missing.pem")] {
        let out = run(&bad);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&*bad.to_string_lossy()), "{stderr}");
        assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    }
}
