//! Throwaway databases for tests: `DOORSTEP_TEST_DATABASE_URL` names a cluster
//! (`scripts/pg.sh url`), and each test gets a database of its own in it. Compiled only for
//! tests (the `test-utils` feature, which the server's tests and benches and the `tests` crate
//! turn on): not part of the production library.

/// The variable naming the test cluster.
pub const ENV: &str = "DOORSTEP_TEST_DATABASE_URL";

/// The test cluster's URL; `None` when it is not set, which is an error under CI (where
/// `scripts/test.sh` starts PostgreSQL): the PostgreSQL tests must not silently vanish.
pub fn base_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{ENV} is not set under CI: scripts/test.sh must start PostgreSQL \
                 (scripts/pg.sh start)"
            );
            eprintln!("{ENV} not set: PostgreSQL variant skipped (run scripts/test.sh)");
            None
        }
    }
}

/// Create an empty database in the cluster at `base` and return its URL.
pub fn fresh_database(base: &str) -> Result<String, postgres::Error> {
    let name = format!("doorstep_t_{}", uuid::Uuid::new_v4().simple());
    let mut c = postgres::Client::connect(base, postgres::NoTls)?;
    c.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok(with_dbname(base, &name))
}

/// `base` with its database name replaced by `name` (URL form `postgres://…/db?opts`).
pub fn with_dbname(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let head = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbname_is_replaced() {
        assert_eq!(
            with_dbname("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            with_dbname("postgresql://u@h:5", "x"),
            "postgresql://u@h:5/x"
        );
        assert_eq!(
            with_dbname("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
