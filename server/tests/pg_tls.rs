//! TLS to PostgreSQL (server/src/pg/tls.rs) against the test cluster, whose certificate is
//! for 127.0.0.1 from a CA of its own (`scripts/pg.sh ca`, `DOORSTEP_TEST_PG_CA`): verified
//! TLS with that CA, refused without it, plain TCP when TLS is not asked for.

use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::PgBackend;

/// The cluster's URL (a fresh database) and its CA; `None` when PostgreSQL is not set up
/// (an error under CI, where both must be there).
fn cluster() -> Option<(String, String)> {
    let base = testing::base_url()?;
    let ca = match std::env::var("DOORSTEP_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => ca,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "DOORSTEP_TEST_PG_CA must name the test cluster's CA under CI (scripts/test.sh)"
            );
            eprintln!("DOORSTEP_TEST_PG_CA not set: TLS tests not run");
            return None;
        }
    };
    Some((testing::fresh_database(&base).unwrap(), ca))
}

fn ssl_in_use(b: &PgBackend) -> bool {
    b.with_client(|c| {
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
    })
    .unwrap()
}

fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

#[test]
fn verified_tls_with_the_clusters_ca() {
    let Some((url, ca)) = cluster() else { return };
    let tls_url = with_query(&url, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let b = PgBackend::open(&tls_url, ViewOptions::default()).unwrap();
    assert!(ssl_in_use(&b), "sslmode=verify-full connected without TLS");
    // The backend works over it: migrations ran, the feed is readable, a write lands.
    b.health().unwrap();
    b.import_units(
        doorstep_server::backend::CLI_ACTOR,
        b"code,parent_code,level,kind,name\n58,,province,province,Ninh Thuan\n",
        doorstep_server::now_ms(),
    )
    .unwrap();
    assert!(b.gauges().unwrap().feed_rows >= 1);
    // `require` verifies too (stricter than libpq).
    let b2 = PgBackend::open(
        &with_query(&url, &format!("sslmode=require&sslrootcert={ca}")),
        ViewOptions::default(),
    )
    .unwrap();
    assert!(ssl_in_use(&b2));
}

#[test]
fn an_untrusted_certificate_is_refused_by_name() {
    let Some((url, _ca)) = cluster() else { return };
    // The public roots do not include the cluster's own CA.
    let url = url.replacen("postgresql://doorstep@", "postgresql://doorstep:s3cret@", 1);
    let e = PgBackend::open(
        &with_query(&url, "sslmode=verify-full"),
        ViewOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    assert!(!e.contains("s3cret") && !e.contains("127.0.0.1"), "{e}");
    // A CA file that is not PEM: named, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let e = PgBackend::open(
        &with_query(
            &url,
            &format!("sslmode=verify-full&sslrootcert={}", bad.display()),
        ),
        ViewOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sslrootcert"), "{e}");
}

#[test]
fn plain_tcp_unless_tls_is_asked_for() {
    let Some((url, _)) = cluster() else { return };
    for q in ["", "sslmode=prefer", "sslmode=disable"] {
        let u = if q.is_empty() {
            url.clone()
        } else {
            with_query(&url, q)
        };
        let b = PgBackend::open(&u, ViewOptions::default()).unwrap();
        assert!(!ssl_in_use(&b), "{q}: TLS without being asked for");
    }
}
