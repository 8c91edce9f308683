//! Statistics and reporting shared by the bench binaries (`core/benches/core.rs`,
//! `server/benches/sync.rs`), included with `#[path]`: medians and percentiles, the Markdown
//! sections and `SUMMARY`/`METRIC` lines that `scripts/bench.sh` turns into
//! `docs/benchmarks.md`. Not every bench uses every item.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// Nearest-rank percentile of `xs` (which it sorts), `p` in 0..=100.
pub fn pct(xs: &mut [f64], p: f64) -> f64 {
    assert!(!xs.is_empty());
    xs.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// Group digits by thousands: 123456.7 → "123,457".
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// What the run found. Sections and summary rows carry the benchmark's number, so they print
/// in the order of the brief (1-5) whatever order the benchmarks ran in.
#[derive(Default)]
pub struct Report {
    pub current: u8,
    pub sections: Vec<(u8, String)>,
    pub metrics: Vec<(String, f64, &'static str)>,
    pub summary: Vec<(u8, [String; 5])>,
}

impl Report {
    pub fn begin(&mut self, number: u8) {
        self.current = number;
    }
    pub fn metric(&mut self, name: &str, value: f64, unit: &'static str) {
        self.metrics.push((name.to_owned(), value, unit));
    }
    pub fn row(&mut self, what: &str, goal: &str, measured: String, ratio: String, met: &str) {
        self.summary.push((
            self.current,
            [
                what.to_owned(),
                goal.to_owned(),
                measured,
                ratio,
                met.to_owned(),
            ],
        ));
    }
    pub fn section(&mut self, md: &str) {
        self.sections.push((self.current, md.to_owned()));
    }
}

pub fn progress(msg: &str) {
    eprintln!(
        "[bench {:>8}] {msg}",
        chrono::Local::now().format("%H:%M:%S")
    );
}

/// The machine the figures were measured on (stdout of a command, or "unknown").
pub fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Facts about the machine and the temp directory the benches write to, for the page header.
pub fn environment(dir: &Path) -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let dir_s = dir.to_string_lossy().into_owned();
    vec![
        (
            "nproc",
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "unknown".into()),
        ),
        ("cpu", cpu),
        ("os", command_line("uname", &["-srm"])),
        ("rustc", command_line("rustc", &["--version"])),
        ("sqlite", rusqlite::version().to_owned()),
        (
            "tmpfs",
            format!(
                "{} ({})",
                command_line("df", &["--output=fstype", &dir_s])
                    .lines()
                    .last()
                    .unwrap_or("unknown")
                    .trim(),
                dir.parent().unwrap_or(dir).display()
            ),
        ),
        (
            "profile",
            if cfg!(debug_assertions) {
                "debug (numbers meaningless)".into()
            } else {
                "release (bench)".into()
            },
        ),
    ]
}

/// Where a bench keeps its files: a temporary directory removed at the end, or, with
/// `DOORSTEP_BENCH_KEEP` set, one kept for a look afterwards (its path is printed). Hold the
/// returned guard for as long as the directory is used.
pub fn bench_dir(prefix: &str) -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    if std::env::var_os("DOORSTEP_BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        progress(&format!("keeping {}", kept.display()));
        (None, kept)
    } else {
        let path = tmp.path().to_path_buf();
        (Some(tmp), path)
    }
}
