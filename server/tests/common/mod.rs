//! What the server's integration tests share: the backend a test runs on, and running a test
//! on SQLite and then on PostgreSQL (`DOORSTEP_TEST_DATABASE_URL`, `scripts/pg.sh`; required
//! under CI). Not every test binary uses every item, hence the `allow`.
#![allow(dead_code)]

pub mod http;

use doorstep_core::Store;
use doorstep_server::backend::{AuditEntry, Backend};
use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::{PgBackend, SqliteBackend};
use std::cell::Cell;
use std::sync::Arc;

/// The backend a test runs on.
#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<SqliteBackend>),
    Pg(Arc<PgBackend>),
}

thread_local! {
    /// Whether this thread's test is running its PostgreSQL pass.
    static ON_PG: Cell<bool> = const { Cell::new(false) };
}

/// Run a test on SQLite, then on PostgreSQL when the test cluster is there (it must be under
/// CI: [`testing::base_url`] panics if it is not).
pub fn on_both_backends(test: fn()) {
    test();
    if testing::base_url().is_some() {
        ON_PG.with(|c| c.set(true));
        eprintln!("-- the same test on PostgreSQL");
        test();
        ON_PG.with(|c| c.set(false));
    }
}

pub fn open_db(dir: &std::path::Path) -> Db {
    if ON_PG.with(Cell::get) {
        let base = testing::base_url().expect("PostgreSQL pass without a cluster");
        let url = testing::fresh_database(&base).expect("create a test database");
        Db::Pg(Arc::new(
            PgBackend::open(
                &url,
                ViewOptions {
                    path: Some(dir.join("view.db")),
                    ..Default::default()
                },
            )
            .unwrap(),
        ))
    } else {
        Db::Sqlite(Arc::new(
            SqliteBackend::open(dir.join("server.db")).unwrap(),
        ))
    }
}

impl Db {
    /// Write with the core API as the console does (on PostgreSQL: into the instance's view,
    /// then filed in the shared feed).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> doorstep_server::Result<T> {
        match self {
            Db::Sqlite(b) => b.with_store(f),
            Db::Pg(b) => b.with_view_write(f),
        }
    }

    pub fn dyn_backend(&self) -> Arc<Backend> {
        match self {
            Db::Sqlite(b) => b.clone(),
            Db::Pg(b) => b.clone(),
        }
    }

    pub fn audit(&self, limit: u32) -> doorstep_server::Result<Vec<AuditEntry>> {
        self.dyn_backend().audit(limit)
    }
}

/// Put units `(code, parent, level)` into a store, each named `Đơn vị <code>` of kind `thôn`.
pub fn put_units(s: &mut Store, units: &[(&str, Option<&str>, doorstep_core::UnitLevel)]) {
    for (code, parent, level) in units {
        s.put_unit(doorstep_core::UnitInput {
            code: (*code).into(),
            parent_code: parent.map(Into::into),
            level: *level,
            kind: "thôn".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
}
