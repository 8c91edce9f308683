//! `doorstep-sim`: run the 81-day campaign simulation (`docs/simulation.md`).

use clap::{Parser, Subcommand};
use doorstep_server::demo::DemoConfig;
use doorstep_sim::campaign::{self, ReportDays, SimConfig};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "doorstep-sim", about = "Doorstep's campaign simulation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Play the campaign against a real server, then compare every number with the ground truth.
    Run {
        /// Seed.
        #[arg(long, default_value_t = 2023)]
        seed: u64,
        /// Campaign days (from 27/6/2023, at most 81).
        #[arg(long, default_value_t = 81)]
        days: u32,
        /// Districts (from the official list).
        #[arg(long, default_value_t = 7)]
        districts: usize,
        /// Communes (round-robin over the districts).
        #[arg(long, default_value_t = 65)]
        communes: usize,
        /// Accounts in scope; the activated-at-start counts and the target scale with it
        /// (Ninh Thuận's figures at 319,284).
        #[arg(long, default_value_t = 20_000)]
        accounts: u64,
        /// Residents per village, roughly.
        #[arg(long, default_value_t = 120)]
        residents_per_village: u64,
        /// Villages per field officer (one device each).
        #[arg(long, default_value_t = 2)]
        villages_per_officer: usize,
        /// Visits per device and working day, least.
        #[arg(long, default_value_t = 3)]
        visits_min: u32,
        /// Visits per device and working day, most.
        #[arg(long, default_value_t = 8)]
        visits_max: u32,
        /// Compare every n-th day's reports (and the last); 1 = every day.
        #[arg(long, default_value_t = 1)]
        report_every: u32,
        /// No faults on the links.
        #[arg(long)]
        no_faults: bool,
        /// Skip the report API comparison (a server without the dashboard).
        #[arg(long)]
        no_api: bool,
        /// Keep the database and server log here.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// The server binary to run (default: this binary's own `serve`).
        #[arg(long)]
        server_bin: Option<PathBuf>,
    },
    /// Serve a database (what `run` starts by default): `serve --listen ADDR --db PATH`.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        db: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { listen, db } => {
            if let Err(e) = serve(&listen, &db) {
                eprintln!("serve: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Run {
            seed,
            days,
            districts,
            communes,
            accounts,
            residents_per_village,
            villages_per_officer,
            visits_min,
            visits_max,
            report_every,
            no_faults,
            no_api,
            work_dir,
            server_bin,
        } => {
            let scale = |n: u64| (n as f64 * accounts as f64 / 319_284.0).round() as u64;
            let server = match server_bin {
                Some(b) => (b, vec!["serve".to_owned()]),
                None => match std::env::current_exe() {
                    Ok(me) => (me, vec!["serve".to_owned()]),
                    Err(e) => {
                        eprintln!("cannot find this binary: {e}");
                        std::process::exit(2);
                    }
                },
            };
            let cfg = SimConfig {
                seed,
                days,
                world: DemoConfig {
                    districts: Some(districts),
                    communes: Some(communes),
                    accounts,
                    level1_activated: scale(13_916),
                    level2_activated: scale(44_950),
                    target: scale(264_720) as i64,
                    activity_days: 0,
                    residents_per_village,
                    villages_per_officer,
                    ..DemoConfig::ninh_thuan(seed)
                },
                devices_per_officer: 1,
                visits_per_day: (visits_min, visits_max),
                faults: !no_faults,
                report_days: if report_every <= 1 {
                    ReportDays::All
                } else {
                    ReportDays::Every(report_every)
                },
                server,
                work_dir,
                check_api: !no_api,
            };
            match campaign::run(&cfg, &mut |line| eprintln!("{line}")) {
                Ok(o) => {
                    println!(
                        "{} days, {} devices, {} facts, {} retractions, {} duplicate activations, \
                         syncs {} ok / {} failed, {} faults injected, {} activations during the campaign, {:.1} s",
                        o.days,
                        o.devices,
                        o.facts,
                        o.retractions,
                        o.duplicate_activations,
                        o.syncs_ok,
                        o.syncs_failed,
                        o.faults_injected,
                        o.activated_during_campaign,
                        o.runtime_ms as f64 / 1000.0
                    );
                    if o.mismatches.is_empty() {
                        println!(
                            "all {} numbers match ({} against the server database, {} against the report API, {} against the CSV reports)",
                            o.compared_db + o.compared_api + o.compared_csv,
                            o.compared_db,
                            o.compared_api,
                            o.compared_csv
                        );
                    } else {
                        println!("{} mismatches:", o.mismatches.len());
                        for m in &o.mismatches {
                            println!("  {m}");
                        }
                        std::process::exit(1);
                    }
                }
                Err(e) => {
                    eprintln!("simulation failed: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
}

fn serve(listen: &str, db: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let backend = doorstep_server::SqliteBackend::open(db)?;
    let state = doorstep_server::state(Arc::new(backend), 4 * 1024 * 1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        doorstep_server::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(())
}
