//! A server on loopback for the integration tests, and a client speaking its sync protocol in
//! either media type: enrolment, push, pull, raw requests, and reads of the server's tables.

use super::{open_db, Db};
use doorstep_core::wire::*;
use doorstep_core::*;
use doorstep_server::backend::Backend;
use reqwest::blocking::Client;
use std::sync::Arc;
use uuid::Uuid;

pub fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

pub struct Server {
    pub base: String,
    pub backend: Arc<Backend>,
    pub db: Db,
    pub http: Client,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

pub fn server_with_limit(max_body_bytes: usize) -> Server {
    server_with(max_body_bytes, |_| {})
}

/// A server whose state `tweak` adjusts first (as `serve`'s options do).
pub fn server_with(
    max_body_bytes: usize,
    tweak: impl FnOnce(&mut doorstep_server::AppState),
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let backend: Arc<Backend> = match &db {
        Db::Sqlite(b) => b.clone(),
        Db::Pg(b) => b.clone(),
    };
    let mut state = doorstep_server::state(backend.clone(), max_body_bytes);
    tweak(&mut state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(doorstep_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Server {
        base: format!("http://{addr}"),
        backend,
        db,
        http: Client::new(),
        _rt: rt,
        _dir: dir,
    }
}

pub fn server() -> Server {
    server_with_limit(doorstep_server::http::DEFAULT_MAX_BODY_BYTES)
}

#[derive(Clone, Copy, PartialEq)]
pub enum Fmt {
    Json,
    Postcard,
}

impl Fmt {
    pub fn media(self) -> &'static str {
        match self {
            Fmt::Json => "application/json",
            Fmt::Postcard => POSTCARD_MEDIA_TYPE,
        }
    }
    pub fn encode<T: serde::Serialize>(self, v: &T) -> Vec<u8> {
        match self {
            Fmt::Json => serde_json::to_vec(v).unwrap(),
            Fmt::Postcard => postcard::to_allocvec(v).unwrap(),
        }
    }
    pub fn decode<T: serde::de::DeserializeOwned>(self, b: &[u8]) -> T {
        match self {
            Fmt::Json => serde_json::from_slice(b).unwrap(),
            Fmt::Postcard => postcard::from_bytes(b).unwrap(),
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not an ErrorBody: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Server {
    pub fn raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req.send().unwrap();
        Answer {
            status: resp.status().as_u16(),
            body: resp.bytes().unwrap().to_vec(),
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        Answer {
            status: resp.status().as_u16(),
            body: resp.bytes().unwrap().to_vec(),
        }
    }

    pub fn enrol_raw(&self, code: &str, replica: Uuid) -> Answer {
        let req = EnrolRequest {
            protocol: PROTOCOL_VERSION,
            code: code.into(),
            device_name: "Galaxy A03".into(),
            replica,
            device_time_ms: now_ms(),
            public_key: None,
        };
        self.raw(
            "/v1/enrol",
            None,
            "application/json",
            None,
            Fmt::Json.encode(&req),
        )
    }

    pub fn code(&self, officer: Uuid) -> String {
        self.backend
            .issue_enrol_code("test", officer, 60, now_ms())
            .unwrap()
            .code
    }

    /// Enrol a device store of `officer`; returns the token.
    pub fn enrol(&self, officer: Uuid, replica: ReplicaId) -> String {
        let a = self.enrol_raw(&self.code(officer), replica.0);
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let r: EnrolResponse = Fmt::Json.decode(&a.body);
        assert_eq!(r.officer_id, officer);
        r.token
    }

    pub fn push_as(&self, token: &str, fmt: Fmt, ops: Vec<Op>) -> PushResponse {
        let req = PushRequest {
            protocol: PROTOCOL_VERSION,
            device_time_ms: now_ms(),
            ops,
            segments: Vec::new(),
        };
        let a = self.raw(
            "/v1/sync/push",
            Some(token),
            fmt.media(),
            None,
            fmt.encode(&req),
        );
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        fmt.decode(&a.body)
    }

    pub fn pull_as(
        &self,
        token: &str,
        fmt: Fmt,
        cursor: Option<String>,
        limit: u32,
    ) -> PullResponse {
        let req = PullRequest {
            protocol: PROTOCOL_VERSION,
            device_time_ms: now_ms(),
            cursor,
            limit,
            own: u64::MAX,
            relaying: Vec::new(),
        };
        let a = self.raw(
            "/v1/sync/pull",
            Some(token),
            fmt.media(),
            None,
            fmt.encode(&req),
        );
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        fmt.decode(&a.body)
    }

    /// Pull until done; every op received and the final cursor.
    pub fn pull_all(
        &self,
        token: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> (Vec<Op>, String, usize) {
        let mut cursor = cursor;
        let mut ops = Vec::new();
        let mut pages = 0;
        loop {
            let page = self.pull_as(token, Fmt::Postcard, cursor.clone(), limit);
            assert!(page.ops.len() <= limit as usize);
            pages += 1;
            ops.extend(page.ops);
            cursor = Some(page.cursor);
            if !page.has_more {
                return (ops, cursor.unwrap(), pages);
            }
            assert!(pages < 1000, "pull does not end");
        }
    }

    pub fn dump(&self) -> String {
        match &self.db {
            Db::Sqlite(b) => b.with_store(|s| s.canonical_dump().unwrap()).unwrap(),
            Db::Pg(b) => b.with_view(|s| s.canonical_dump().unwrap()).unwrap(),
        }
    }

    /// A count from the server's tables (PostgreSQL's for the server's own, the view's for
    /// the materialised ones) or the store's.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.db {
            Db::Sqlite(b) => b
                .with_store(|s| s.connection().query_row(sql, [], |r| r.get(0)).unwrap())
                .unwrap(),
            Db::Pg(b) => {
                let shared = ["devices", "enrol_codes", "feed", "quarantine", "audit"]
                    .iter()
                    .any(|t| sql.contains(&format!("FROM {t}")));
                if shared {
                    b.with_client(|c| c.query_one(sql, &[]).unwrap().get(0))
                        .unwrap()
                } else {
                    b.with_view(|s| s.connection().query_row(sql, [], |r| r.get(0)).unwrap())
                        .unwrap()
                }
            }
        }
    }
}
