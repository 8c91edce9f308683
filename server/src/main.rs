//! `doorstep`: the sync server and its console commands.
//!
//! The arguments are declared in `cli.rs`; this file runs the commands. `serve` runs the HTTP
//! API; every other command opens the database directly (no server needed: SQLite's lock, or
//! on PostgreSQL (`--database`) the feed lock, serialises it with running servers) and is
//! audited as `cli`.
//! Secrets (tokens, codes) are printed once on stdout and never logged.

mod cli;
mod file_commands;

use anyhow::{bail, Context};
use clap::Parser;
use cli::{
    AdminCommand, BundleCommand, CampaignCommand, Cli, Command, DeviceCommand, OfficerCommand,
    QuotaCommand, ReportCommand, ResidentCommand, RosterCommand, TotpCommand, UnitsCommand,
    UserCommand, ViewCommand,
};
use doorstep_core::{AssignTarget, Role};
use doorstep_server::backend::{Backend, CLI_ACTOR};
use doorstep_server::console_io::{create_private, first_line};
use doorstep_server::limits::DEFAULT_MAX_BODY_BYTES;
use doorstep_server::pg::{PgBackend, ViewOptions};
use doorstep_server::web::tls::{ReloadingCert, TlsFiles};
use doorstep_server::{now_ms, SqliteBackend};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Where the server keeps its state.
enum Database {
    /// The file, and its key when it is encrypted at rest.
    Sqlite(PathBuf, Option<doorstep_core::StoreKey>),
    Postgres {
        url: String,
        view: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        /// The key of this instance's view file.
        key: Option<doorstep_core::StoreKey>,
    },
}

/// Where a PostgreSQL instance's view is cached: `--view-cache`, else the user's cache
/// directory; `off` turns it off.
fn view_cache_dir(arg: Option<PathBuf>) -> Option<PathBuf> {
    match arg {
        Some(p) if p.as_os_str() == "off" => None,
        Some(p) => Some(p),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("doorstep")),
    }
}

impl Database {
    /// The key given with `--db-key-file`, if any.
    fn key(&self) -> Option<doorstep_core::StoreKey> {
        match self {
            Database::Sqlite(_, key) | Database::Postgres { key, .. } => key.clone(),
        }
    }

    fn open(self) -> anyhow::Result<Arc<Backend>> {
        Ok(match self {
            Database::Sqlite(db, None) => {
                Arc::new(SqliteBackend::open(&db).context("opening the database")?)
            }
            Database::Sqlite(db, Some(key)) => Arc::new(
                SqliteBackend::open_encrypted(&db, &key)
                    .context("opening the database with --db-key-file")?,
            ),
            // The URL may carry a password: it is in no message.
            Database::Postgres {
                url,
                view,
                cache_dir,
                key,
            } => Arc::new(
                PgBackend::open(
                    &url,
                    ViewOptions {
                        path: view,
                        cache_dir,
                        key,
                        ..Default::default()
                    },
                )
                .context("opening the PostgreSQL database")?,
            ),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::DbKey { out } => {
            doorstep_server::key_file::create(out)?;
            println!("wrote a new key to {} (owner-only)", out.display());
            return Ok(());
        }
        Command::TlsPin { cert } => return file_commands::tls_pin(cert),
        _ => {}
    }
    let key = cli
        .db_key_file
        .as_deref()
        .map(doorstep_server::key_file::read)
        .transpose()?;
    let db = match cli.database {
        Some(url) => Database::Postgres {
            url,
            view: cli.view,
            cache_dir: view_cache_dir(cli.view_cache),
            key,
        },
        None => Database::Sqlite(cli.db, key),
    };
    match cli.command {
        Command::Serve {
            listen,
            max_body_bytes,
            json_logs,
            tls_cert,
            tls_key,
            insecure_plain_http,
            require_totp,
            lease_days,
            demo,
            demo_seed,
        } => {
            if demo {
                let Database::Sqlite(path, None) = &db else {
                    bail!(
                        "--demo builds its synthetic data set in a plain SQLite file: use it \
                         without --database and without --db-key-file"
                    );
                };
                prepare_demo(path, demo_seed)?;
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            serve(
                db,
                &listen,
                Serving {
                    max_body_bytes,
                    json_logs,
                    demo,
                    tls,
                    insecure_plain_http,
                    require_totp,
                    lease_days,
                },
            )
        }
        Command::Backup { out } => file_commands::backup(&db, &out),
        Command::DbRekey { new_key_file } => file_commands::rekey(&db, &new_key_file),
        Command::Hub {
            upstream,
            store,
            code,
            listen,
            every_secs,
            trusted_ca,
        } => doorstep_server::hub::command(
            doorstep_server::hub::HubConfig::from_args(
                upstream,
                store,
                code,
                every_secs,
                trusted_ca,
                db.key(),
            )?,
            &listen,
            || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(shutdown_signal());
                }
            },
        ),
        Command::National {
            config,
            listen,
            tls_cert,
            tls_key,
            insecure_plain_http,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            national(&config, &listen, tls, insecure_plain_http)
        }
        command => console(db, command),
    }
}

/// How `serve` serves.
struct Serving {
    max_body_bytes: usize,
    json_logs: bool,
    demo: bool,
    tls: Option<TlsFiles>,
    insecure_plain_http: bool,
    require_totp: bool,
    lease_days: u16,
}

/// Bind `listen`. Without TLS, an address that is not loopback is refused unless
/// `insecure_plain_http`: residents' data must not cross a network in clear (`serve` and
/// `national` alike).
async fn bind(
    listen: &str,
    tls: bool,
    insecure_plain_http: bool,
) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    if !tls && !addr.ip().is_loopback() && !insecure_plain_http {
        bail!(
            "{addr} is not a loopback address: serve HTTPS there (--tls-cert and --tls-key), \
             or plain HTTP behind a TLS-terminating proxy (--insecure-plain-http)"
        );
    }
    Ok(listener)
}

/// Log to stderr, `RUST_LOG` or `default` filtering, as JSON lines if asked.
fn init_logs(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
}

fn serve(db: Database, listen: &str, how: Serving) -> anyhow::Result<()> {
    init_logs("info,tower_http=info", how.json_logs);
    // Load the certificate before anything else: a server does not start with one it cannot
    // use.
    let cert = match &how.tls {
        Some(files) => Some(ReloadingCert::open(files.clone())?),
        None => None,
    };
    let backend = db.open()?;
    let mut state = doorstep_server::state(backend, how.max_body_bytes);
    state.demo = how.demo; // --demo: dashboard without sign-in, with a banner
    state.require_totp = how.require_totp;
    state.lease_ms = i64::from(how.lease_days) * 24 * 3600 * 1000;
    if how.require_totp {
        tracing::info!("--require-totp: district and province users need a second factor");
    }
    if how.demo {
        tracing::warn!("demo mode: the dashboard is open to anyone as province command");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = bind(listen, cert.is_some(), how.insecure_plain_http).await?;
        let addr = listener.local_addr()?;
        match cert {
            Some(cert) => {
                tracing::info!(%addr, "listening (HTTPS)");
                doorstep_server::serve_tls(listener, state, cert, shutdown_signal()).await?;
            }
            None => {
                tracing::info!(%addr, "listening (plain HTTP)");
                doorstep_server::serve(listener, state, shutdown_signal()).await?;
            }
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// `doorstep national`: the roll-up over the province servers of `config`.
fn national(
    config: &std::path::Path,
    listen: &str,
    tls: Option<TlsFiles>,
    insecure_plain_http: bool,
) -> anyhow::Result<()> {
    use doorstep_server::national::{web, Config};
    init_logs("info", false);
    let settings = Config::load(config)?.settings()?;
    let cert = match &tls {
        Some(files) => Some(ReloadingCert::open(files.clone())?),
        None => None,
    };
    let mut state = web::NationalState::new(settings);
    state.tls = cert.is_some();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = bind(listen, cert.is_some(), insecure_plain_http).await?;
        let addr = listener.local_addr()?;
        match cert {
            Some(cert) => {
                tracing::info!(%addr, "national roll-up listening (HTTPS)");
                doorstep_server::web::tls::serve_tls(
                    listener,
                    web::router(state),
                    cert,
                    shutdown_signal(),
                )
                .await?;
            }
            None => {
                tracing::info!(%addr, "national roll-up listening (plain HTTP)");
                web::serve(listener, state, shutdown_signal()).await?;
            }
        }
        Ok(())
    })
}

/// Build the demo data set into `db`, or reuse it (progress on stderr: counts only).
#[cfg(feature = "demo")]
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
    let (phones, stale) = demo::refresh_devices(db, doorstep_server::now_ms())?;
    if phones == 0 {
        eprintln!(
            "demo: this data set predates the demo's phones; delete {} to rebuild it with them",
            db.display()
        );
    } else {
        eprintln!(
            "demo: {phones} phones, {stale} of them last synced {} days ago (stale)",
            demo::STALE_DAYS
        );
    }
    Ok(())
}

/// Without the `demo` feature there is no data set to build: say so instead of serving.
#[cfg(not(feature = "demo"))]
fn prepare_demo(_db: &std::path::Path, _seed: u64) -> anyhow::Result<()> {
    bail!(
        "--demo is not available: this doorstep was built without the demo data set \
         (cargo feature `demo`, on by default)"
    )
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

fn console(db: Database, command: Command) -> anyhow::Result<()> {
    let b = db.open()?;
    let now = now_ms();
    match command {
        Command::Serve { .. }
        | Command::National { .. }
        | Command::Backup { .. }
        | Command::DbKey { .. }
        | Command::TlsPin { .. }
        | Command::DbRekey { .. }
        | Command::Hub { .. } => {
            unreachable!("handled by main")
        }
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
        Command::View {
            command: ViewCommand::Publish,
        } => println!("{}", b.publish_view(true)?),
        Command::Campaign {
            command: CampaignCommand::Retention { campaign, days },
        } => b.set_retention(CLI_ACTOR, campaign, days, now)?,
        Command::Campaign {
            command: CampaignCommand::Purge { campaign, early },
        } => println!("{}", b.purge_line(CLI_ACTOR, campaign, early, now)?),
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
        Command::Resident {
            command:
                ResidentCommand::Export {
                    id_number_file,
                    out,
                },
        } => {
            let id_number = first_line(id_number_file, "ID number")?;
            // The file first: an export that cannot be written is not made (nor audited).
            let file = out.as_deref().map(create_private).transpose()?;
            let export = b.export_resident(CLI_ACTOR, &id_number, now)?;
            let json = serde_json::to_vec_pretty(&export)?;
            let found = export["residents"].as_array().map_or(0, Vec::len);
            match (file, out) {
                (Some(mut f), Some(path)) => {
                    use std::io::Write;
                    f.write_all(&json)?;
                    f.sync_all()?;
                    eprintln!("{found} resident record(s) written to {}", path.display());
                }
                _ => {
                    use std::io::Write;
                    std::io::stdout().write_all(&json)?;
                    println!();
                    eprintln!("{found} resident record(s)");
                }
            }
        }
        Command::Resident {
            command:
                ResidentCommand::Erase {
                    id_number_file,
                    yes,
                },
        } => {
            if !yes {
                bail!("yes: an erasure cannot be undone; add --yes to confirm it");
            }
            let id_number = first_line(id_number_file, "ID number")?;
            let n = b.erase_resident(CLI_ACTOR, &id_number, now)?;
            println!("{n} resident(s) erased");
        }
        Command::Bundle {
            command: BundleCommand::Import { file },
        } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("reading the bundle {}", file.display()))?;
            println!("{}", b.import_bundle(CLI_ACTOR, &bytes, now)?.summary());
        }
        Command::Bundle {
            command: BundleCommand::Area { device, out },
        } => println!("{}", b.area_bundle(CLI_ACTOR, device, now)?.write_to(&out)?),
        Command::Officer {
            command: OfficerCommand::Add { name, role, unit },
        } => {
            let role = Role::parse(&role)?;
            println!("{}", b.add_officer(CLI_ACTOR, &name, role, &unit, now)?);
        }
        Command::Assign {
            officer,
            village,
            household,
        } => match (village, household) {
            (Some(village), _) => {
                println!("{}", b.assign_village(CLI_ACTOR, officer, &village, now)?)
            }
            (None, Some(h)) => println!(
                "{}",
                b.set_assignment(CLI_ACTOR, officer, AssignTarget::Household(h), true, now)?
            ),
            (None, None) => bail!("give --village or --household"),
        },
        Command::User { .. }
        | Command::Quota { .. }
        | Command::Unassign { .. }
        | Command::Report { .. } => dashboard_command(&b, command, now)?,
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

/// The command centre's console commands: users, quotas, unassign, reports.
fn dashboard_command(b: &Arc<Backend>, command: Command, now: i64) -> anyhow::Result<()> {
    use doorstep_server::web::{demo_user, officer_report, unit_report, ReportQuery};
    match command {
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    unit,
                    password_file,
                },
        } => {
            let password = first_line(password_file, "password")?;
            if password.chars().count() < 8 {
                bail!("password: expected at least 8 characters");
            }
            let hash =
                doorstep_server::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
            println!(
                "{}",
                b.add_command_user(CLI_ACTOR, &name, &role, &unit, &hash, now)?
            );
        }
        Command::User {
            command: UserCommand::Totp { command },
        } => match command {
            TotpCommand::Enable { name } => {
                let (_, secret) = b.enable_totp(CLI_ACTOR, &name, now)?;
                // Shown this once: the admin hands it to the user's authenticator app.
                println!(
                    "{}",
                    doorstep_server::totp::otpauth_uri(name.trim(), &secret)
                );
                println!("{secret}");
                eprintln!(
                    "add it to {}'s authenticator app now (scan the URI as a QR code, or type \
                     the secret); it is not shown again. Their sign-in now needs a code.",
                    name.trim()
                );
            }
            TotpCommand::Disable { name } => {
                if b.disable_totp(CLI_ACTOR, &name, now)? {
                    println!("second factor removed for {}", name.trim());
                } else {
                    println!("{} had no second factor", name.trim());
                }
            }
        },
        Command::Quota {
            command:
                QuotaCommand::Set {
                    campaign,
                    unit,
                    officer,
                    period,
                    metric,
                    target,
                },
        } => {
            let subject = match (unit, officer) {
                (Some(u), _) => doorstep_core::QuotaSubject::Unit(u),
                (None, Some(o)) => doorstep_core::QuotaSubject::Officer(o),
                (None, None) => bail!("give --unit or --officer"),
            };
            let period = if period.trim() == "campaign" {
                doorstep_core::QuotaPeriod::Campaign
            } else {
                doorstep_core::QuotaPeriod::Day(
                    chrono::NaiveDate::parse_from_str(period.trim(), "%Y-%m-%d")
                        .context("period: expected campaign or YYYY-MM-DD")?,
                )
            };
            let q = doorstep_core::QuotaInput {
                campaign_id: campaign,
                subject,
                period,
                metric: doorstep_core::QuotaMetric::parse(&metric)?,
                target,
            };
            println!("{}", b.set_quota(CLI_ACTOR, q, now)?);
        }
        Command::Unassign {
            officer,
            village,
            household,
        } => {
            let target = match (village, household) {
                (Some(v), _) => AssignTarget::Village(v),
                (None, Some(h)) => AssignTarget::Household(h),
                (None, None) => bail!("give --village or --household"),
            };
            println!(
                "{}",
                b.set_assignment(CLI_ACTOR, officer, target, false, now)?
            );
        }
        Command::Report { command } => {
            let (unit, officer, date, campaign, format, out, last_day) = match command {
                ReportCommand::Daily {
                    unit,
                    officer,
                    date,
                    campaign,
                    format,
                    out,
                } => (unit, officer, date, campaign, format, out, false),
                ReportCommand::Final {
                    unit,
                    officer,
                    campaign,
                    format,
                    out,
                } => (unit, officer, None, campaign, format, out, true),
            };
            let format = doorstep_server::reports::Format::parse(&format)?;
            let state = doorstep_server::state(b.clone(), DEFAULT_MAX_BODY_BYTES);
            let mut q = ReportQuery {
                unit,
                date,
                campaign: campaign.map(|c| c.to_string()),
                ..ReportQuery::default()
            };
            let started = std::time::Instant::now();
            if last_day {
                let snap = state.snapshot()?;
                q.date = Some(snap.campaign(campaign, None)?.end.to_string());
            }
            // The console is trusted like an admin: every unit.
            let user = demo_user();
            let bytes = match officer {
                Some(id) => {
                    let (_, r) = officer_report(&state, &user, id, &q, "console")?;
                    doorstep_server::reports::officer(&r, format)?
                }
                None => {
                    let (_, r) = unit_report(&state, &user, &q, "console")?;
                    doorstep_server::reports::unit(&r, format)?
                }
            };
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote {} ({} bytes) in {:.0} ms",
                out.display(),
                bytes.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        _ => unreachable!("only command centre commands come here"),
    }
    Ok(())
}
