//! `doorstep serve --listen ADDR (--db PATH | --database URL [--view PATH]) [--max-body-bytes N]`, built from the server
//! library for the end-to-end tests (see `src/harness.rs` for why it is not the `doorstep`
//! binary itself; set `DOORSTEP_BIN` to test that one instead).

use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.first().map(String::as_str) != Some("serve") {
        eprintln!("usage: doorstep-under-test serve --listen ADDR (--db PATH | --database URL)");
        std::process::exit(2);
    }
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:8080".into());
    let backend: Arc<doorstep_server::Backend> = match value("--database") {
        Some(url) => Arc::new(
            doorstep_server::PgBackend::open(
                &url,
                doorstep_server::pg::ViewOptions {
                    path: value("--view").map(Into::into),
                    ..Default::default()
                },
            )
            .expect("open the PostgreSQL database"),
        ),
        None => Arc::new(
            doorstep_server::SqliteBackend::open(value("--db").expect("--db PATH"))
                .expect("open the database"),
        ),
    };
    let max_body: usize = value("--max-body-bytes")
        .map(|v| v.parse().expect("--max-body-bytes N"))
        .unwrap_or(4 * 1024 * 1024);
    let state = doorstep_server::state(backend, max_body);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .expect("bind the listen address");
        doorstep_server::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
    });
}
