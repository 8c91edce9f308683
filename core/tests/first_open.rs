//! Several threads opening their first encrypted stores at once, in a fresh process.
//!
//! SQLCipher finishes its own set-up (`sqlcipher_extra_init`) after SQLite has marked itself
//! initialised and released its lock: a thread that opened a connection in that window got a
//! `PRAGMA key` error on a brand-new file (CI saw it once in `encrypted.rs`). Each round is a
//! new process (the window exists once per process), its threads released together.

mod common;

use doorstep_core::{Store, StoreKey};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

const CHILD_ENV: &str = "DOORSTEP_FIRST_OPEN_CHILD";
const THREADS: usize = 16;
/// At 16 threads a round without the fix failed about 1 time in 40 (5 of 200).
const ROUNDS: usize = 200;

#[test]
fn threads_opening_their_first_encrypted_stores_at_once_all_succeed() {
    let exe = std::env::current_exe().unwrap();
    let mut failed = Vec::new();
    for round in 0..ROUNDS {
        let out = Command::new(&exe)
            .args(["--exact", "child_opens_at_once", "--nocapture"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let opened = stdout.lines().filter(|l| *l == "OPENED").count();
        if !out.status.success() || opened != THREADS {
            let first = stdout
                .lines()
                .find(|l| l.starts_with("FAILED"))
                .unwrap_or("");
            failed.push(format!(
                "round {round}: {opened} of {THREADS} opened; {first}"
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Runs only as the child of the test above.
#[test]
fn child_opens_at_once() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let path = dir.path().join(format!("store{i}.db"));
            let start = start.clone();
            std::thread::spawn(move || {
                let clock = common::clock();
                start.wait();
                match Store::open_encrypted(&path, &StoreKey::new([3; 32]), common::options(&clock))
                {
                    Ok(_) => println!("OPENED"),
                    Err(e) => println!("FAILED {e}"),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
