//! `doorstep`: the sync server and its console commands.
//!
//! `serve` runs the HTTP API; every other command opens the database directly (no server
//! needed, SQLite's lock serialises it with a running server) and is audited as `cli`.
//! Secrets (tokens, codes) are printed once on stdout and never logged.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use doorstep_core::Role;
use doorstep_server::backend::{Backend, CLI_ACTOR};
use doorstep_server::http::{DEFAULT_CODE_TTL_MINUTES, DEFAULT_MAX_BODY_BYTES};
use doorstep_server::{now_ms, SqliteBackend};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "doorstep",
    version,
    about = "Doorstep sync server and admin console"
)]
struct Cli {
    /// The database file (created if missing).
    #[arg(
        long,
        global = true,
        env = "DOORSTEP_DB",
        default_value = "doorstep.db"
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "DOORSTEP_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Request body limit in bytes, after decompression.
        #[arg(long, env = "DOORSTEP_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
        // --- demo data set (server/src/demo.rs) ---
        /// Serve the demo data set: build it into --db first unless --db is already a demo
        /// database (a fresh or empty file is required to build).
        #[arg(long)]
        demo: bool,
        /// The demo's seed (used only when the demo is built).
        #[arg(long, default_value_t = 2023)]
        demo_seed: u64,
        // --- end demo ---
    },
    /// Admin users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Administrative units.
    Units {
        #[command(subcommand)]
        command: UnitsCommand,
    },
    /// Officers.
    Officer {
        #[command(subcommand)]
        command: OfficerCommand,
    },
    /// Assign a village to an officer.
    Assign {
        /// The officer's id.
        #[arg(long)]
        officer: Uuid,
        /// The village code.
        #[arg(long)]
        village: String,
    },
    /// Issue a one-time enrolment code for an officer's device (printed once).
    EnrolCode {
        /// The officer's id.
        #[arg(long)]
        officer: Uuid,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = DEFAULT_CODE_TTL_MINUTES)]
        ttl_minutes: u32,
    },
    /// Devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Campaigns.
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Rosters: the residents without an activated account that officers are handed.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CampaignCommand {
    /// Add a campaign; prints its id.
    Add {
        /// Name.
        #[arg(long)]
        name: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        start: chrono::NaiveDate,
        /// Last day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        end: chrono::NaiveDate,
        /// Accounts to activate.
        #[arg(long)]
        target: i64,
        /// The unit it covers (a province, district or commune code).
        #[arg(long)]
        unit: String,
    },
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Import a roster CSV (docs/roster-format.md) for a campaign; reports every rejected row.
    Import {
        /// The campaign's id.
        #[arg(long)]
        campaign: Uuid,
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create the first admin user and print its token once.
    Bootstrap {
        /// The admin's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum UnitsCommand {
    /// Import units from a CSV (code, parent_code, level, kind, name).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Add or update one unit, e.g. a village: `--code 22852-01 --parent 22852 --level village --kind thôn --name "Thôn 1"`.
    Add {
        /// Code (villages: the commune code, '-', a number).
        #[arg(long)]
        code: String,
        /// The parent unit's code.
        #[arg(long)]
        parent: Option<String>,
        /// province, district, commune or village.
        #[arg(long)]
        level: String,
        /// Kind, as the official list says (thôn, khu phố, xã...).
        #[arg(long)]
        kind: String,
        /// Name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum OfficerCommand {
    /// Add an officer; prints the id.
    Add {
        /// Name.
        #[arg(long)]
        name: String,
        /// field, commune_lead, district or province.
        #[arg(long)]
        role: String,
        /// The officer's unit code.
        #[arg(long)]
        unit: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Revoke a device: its token stops working at once.
    Revoke {
        /// The device's id.
        id: Uuid,
    },
    /// List devices.
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            max_body_bytes,
            json_logs,
            demo,
            demo_seed,
        } => {
            if demo {
                prepare_demo(&cli.db, demo_seed)?;
            }
            serve(cli.db, &listen, max_body_bytes, json_logs)
        }
        command => console(cli.db, command),
    }
}

fn serve(db: PathBuf, listen: &str, max_body_bytes: usize, json_logs: bool) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    if json_logs {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let backend = SqliteBackend::open(&db).context("opening the database")?;
    let state = doorstep_server::state(Arc::new(backend), max_body_bytes);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        doorstep_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Build the demo data set into `db`, or reuse it (progress on stderr: counts only).
fn prepare_demo(db: &std::path::Path, seed: u64) -> anyhow::Result<()> {
    use doorstep_server::demo;
    let config = demo::DemoConfig::ninh_thuan(seed);
    match demo::ensure(db, &config, &mut |line| eprintln!("demo: {line}"))? {
        demo::Ensured::Reused(marker) => eprintln!("demo: reusing {} ({marker})", db.display()),
        demo::Ensured::Built(s) => eprintln!(
            "demo: built {} in {:.1} s ({} residents, {} officers, {} quotas, {} field operations)",
            db.display(),
            s.total_ms as f64 / 1000.0,
            s.load.residents,
            s.load.officers,
            s.load.quotas,
            s.activity.ops
        ),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn console(db: PathBuf, command: Command) -> anyhow::Result<()> {
    let b = SqliteBackend::open(&db).context("opening the database")?;
    let now = now_ms();
    match command {
        Command::Serve { .. } => unreachable!("handled by main"),
        Command::Admin {
            command: AdminCommand::Bootstrap { name },
        } => match b.bootstrap_admin(&name, now)? {
            Some((id, token)) => {
                println!("admin user {id}");
                println!("token (shown once, keep it safe): {token}");
            }
            None => bail!("an admin user already exists; nothing done"),
        },
        Command::Units {
            command: UnitsCommand::Import { file },
        } => {
            let csv =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (rows, rejected) = b.import_units(CLI_ACTOR, &csv, now)?;
            println!("{rows} rows read, {rejected} rejected");
        }
        Command::Units {
            command:
                UnitsCommand::Add {
                    code,
                    parent,
                    level,
                    kind,
                    name,
                },
        } => {
            let level = doorstep_core::UnitLevel::parse(&level)?;
            b.put_unit(
                CLI_ACTOR,
                doorstep_core::UnitInput {
                    code: code.clone(),
                    parent_code: parent,
                    level,
                    kind,
                    name,
                },
                now,
            )?;
            println!("{code}");
        }
        Command::Campaign {
            command:
                CampaignCommand::Add {
                    name,
                    start,
                    end,
                    target,
                    unit,
                },
        } => {
            let id = b.put_campaign(
                CLI_ACTOR,
                doorstep_core::CampaignInput {
                    id: Uuid::now_v7(),
                    name,
                    start_date: start,
                    end_date: end,
                    target,
                    unit_code: unit,
                },
                now,
            )?;
            println!("{id}");
        }
        Command::Roster {
            command: RosterCommand::Import { campaign, file },
        } => {
            let csv =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let total = csv.len().max(1) as u64;
            let report = b.import_roster(
                CLI_ACTOR,
                campaign,
                &csv,
                &mut |p| {
                    eprint!(
                        "\rimporting: {:>3}% ({} rows)",
                        p.bytes_read * 100 / total,
                        p.rows_read
                    )
                },
                now,
            )?;
            eprintln!();
            println!(
                "{} rows: {} accepted ({} residents and {} households written, {} unchanged), {} rejected",
                report.rows,
                report.accepted,
                report.residents_changed,
                report.households_changed,
                report.unchanged,
                report.rejected.len()
            );
            for r in &report.rejected {
                println!("line {}: {}", r.line, r.reason);
            }
        }
        Command::Officer {
            command: OfficerCommand::Add { name, role, unit },
        } => {
            let role = Role::parse(&role)?;
            println!("{}", b.add_officer(CLI_ACTOR, &name, role, &unit, now)?);
        }
        Command::Assign { officer, village } => {
            println!("{}", b.assign_village(CLI_ACTOR, officer, &village, now)?);
        }
        Command::EnrolCode {
            officer,
            ttl_minutes,
        } => {
            let issued = b.issue_enrol_code(CLI_ACTOR, officer, ttl_minutes, now)?;
            println!("{}", issued.code);
            let expires = chrono::DateTime::from_timestamp_millis(issued.expires_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            eprintln!("expires {expires}");
        }
        Command::Device {
            command: DeviceCommand::Revoke { id },
        } => {
            if b.revoke_device(CLI_ACTOR, id, now)? {
                println!("revoked {id}");
            } else {
                println!("{id} was already revoked");
            }
        }
        Command::Device {
            command: DeviceCommand::List,
        } => {
            println!("id\tofficer_id\tenrolled_at_ms\trevoked_at_ms\tacked_counter\tlast_seen_ms\tclock_offset_ms");
            let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
            for d in b.list_devices()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.officer_id,
                    d.enrolled_at_ms,
                    opt(d.revoked_at_ms),
                    d.acked_counter,
                    opt(d.last_seen_ms),
                    opt(d.clock_offset_ms)
                );
            }
        }
    }
    Ok(())
}
