//! The command line: `doorstep`'s global options and every subcommand's arguments (clap).
//! What each command does is in `main.rs`.

use clap::{Parser, Subcommand};
use doorstep_server::limits::{DEFAULT_CODE_TTL_MINUTES, DEFAULT_MAX_BODY_BYTES};
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "doorstep",
    version,
    about = "Doorstep sync server and admin console"
)]
pub struct Cli {
    /// The database file (created if missing).
    #[arg(
        long,
        global = true,
        env = "DOORSTEP_DB",
        default_value = "doorstep.db"
    )]
    pub db: PathBuf,
    /// The key file of an SQLite database encrypted at rest (64 hexadecimal digits, readable by
    /// its owner only; `doorstep db-key FILE` makes one). A database not encrypted yet is
    /// encrypted in place at the first start with a key. Keep the key elsewhere than the
    /// database and its backups. With `--database`: the key of this instance's view file (a
    /// full copy of the data) and of the view snapshots it publishes; PostgreSQL's own files
    /// are not covered (encrypt its disk). With `hub`: its store's key (else a key file
    /// beside the store).
    #[arg(long, global = true, env = "DOORSTEP_DB_KEY_FILE")]
    pub db_key_file: Option<PathBuf>,
    /// A PostgreSQL connection string (`postgres://user@host/db`): shared state there instead
    /// of the SQLite file, so several `serve` processes can share one database. Overrides
    /// `--db`. Prefer the environment variable for a URL that carries a password.
    #[arg(
        long,
        global = true,
        env = "DOORSTEP_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// With `--database`: the file of this process's materialised view (a core SQLite store
    /// rebuilt from PostgreSQL when missing). Default: a temporary file, rebuilt at each start.
    #[arg(long, global = true, env = "DOORSTEP_VIEW")]
    pub view: Option<PathBuf>,
    /// With `--database` and no `--view`: the directory where the view is kept between runs
    /// (one file per database, locked while in use; a second process on the machine uses a
    /// temporary view), so console commands and restarts catch up instead of rebuilding from
    /// the whole feed. Default: `$XDG_CACHE_HOME/doorstep` or `~/.cache/doorstep`; `off`: a
    /// temporary view every time.
    #[arg(long, global = true, env = "DOORSTEP_VIEW_CACHE")]
    pub view_cache: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
        /// Serve HTTPS with this PEM certificate chain (leaf first); reloaded without a
        /// restart when the file changes. Needs --tls-key.
        #[arg(long, env = "DOORSTEP_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "DOORSTEP_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP on an address that is not loopback. Residents' data must not cross
        /// a network in clear: use it only behind a TLS-terminating proxy on a trusted link.
        /// Without TLS and without this flag, only loopback addresses are served.
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_plain_http: bool,
        /// Refuse sign-in to district and province users (who see a whole district's or
        /// province's residents) who have no second factor: they are told to ask the admin for
        /// `doorstep user totp enable --name NAME`. Off by default in this release; every
        /// command user may enable TOTP either way, and one who has it always needs a code.
        #[arg(long, env = "DOORSTEP_REQUIRE_TOTP")]
        require_totp: bool,
        /// How many days a phone may show residents' data offline after its last sync (its
        /// offline lease, renewed at every sync; past it the phone shows no personal data
        /// until it syncs again, and keeps recording field work). 1 to 90.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=90))]
        lease_days: u16,
        /// Demo mode: the dashboard opens without sign-in as province command, with a banner
        /// saying so. Never on a server with real data: --db must be a demo database or a
        /// fresh file, into which the demo data set is built first (server/src/demo/).
        #[arg(long)]
        demo: bool,
        // --- demo data set (server/src/demo/) ---
        /// The demo's seed (used only when the demo data set is built).
        #[arg(long, default_value_t = 2023)]
        demo_seed: u64,
        // --- end demo ---
    },
    /// PostgreSQL: this instance's view (the materialised store beside it).
    View {
        #[command(subcommand)]
        command: ViewCommand,
    },
    /// A consistent copy of the SQLite database (--db), taken while the server runs.
    ///
    /// The copy is written beside FILE and renamed into place once whole and checked; FILE
    /// must not exist. To restore: stop the server, put the copy in place of the database
    /// file (and remove its -wal and -shm files), start the server; the phones' next syncs
    /// bring back what the backup lacks (docs/backup.md). On PostgreSQL use pg_dump.
    Backup {
        /// Where the copy goes (a new file).
        out: PathBuf,
    },
    /// Print the pins of a PEM certificate chain (leaf first; e.g. `--tls-cert`'s file): the
    /// SHA-256 of each certificate's public key, as Android's network security configuration
    /// pins a server (`<pin digest="SHA-256">`, without the `sha256/`). Hand the leaf's (or the
    /// CA's) out with the enrolment codes; a renewal with the same key keeps it.
    TlsPin {
        /// The certificate chain file.
        cert: PathBuf,
    },
    /// Make a new key file for `--db-key-file`: 32 random bytes as 64 hexadecimal digits,
    /// readable by its owner only. Never overwrites a file.
    DbKey {
        /// Where the key goes (a new file).
        out: PathBuf,
    },
    /// Change the key of the SQLite database encrypted with `--db-key-file` to the key in
    /// NEW_KEY_FILE (every page is rewritten; stop `serve` first). Back up the old key until
    /// the new one is in use everywhere.
    DbRekey {
        /// The new key's file (`doorstep db-key` makes one).
        new_key_file: PathBuf,
    },
    /// File bundles: work carried from phones on a USB stick, an SD card or a chat attachment.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// The national roll-up: the country's figures from the province servers' report APIs.
    ///
    /// A command centre above the province servers (docs/scaling.md). Reads each province's
    /// report API concurrently and serves the country's figures at
    /// `/national` (page) and `/api/v1/national?date=YYYY-MM-DD` (JSON), each province's row
    /// linked to its own server. No database: the provinces, their URLs and where their tokens
    /// are (files or environment variables, never the command line) are in --config (JSON).
    National {
        /// The configuration file (JSON): `{"token_file": …, "timeout_seconds": 10,
        /// "provinces": [{"code", "name", "url", "token_file" | "token_env"}]}`.
        #[arg(long, env = "DOORSTEP_NATIONAL_CONFIG")]
        config: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "DOORSTEP_LISTEN", default_value = "127.0.0.1:8090")]
        listen: String,
        /// Serve HTTPS with this PEM certificate chain. Needs --tls-key.
        #[arg(long, env = "DOORSTEP_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "DOORSTEP_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP on an address that is not loopback (behind a TLS-terminating
        /// proxy only).
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_plain_http: bool,
    },
    /// Run a commune station's hub: the commune's phones exchange their signed work with it
    /// over the station's LAN (TCP), and it carries that work to the province server and
    /// brings the commune's area back whenever the link is up, for days without it if need be
    /// (docs/sync-protocol.md, "The station hub"). Its store is encrypted, with its key in
    /// `<store>.key`; its token is kept in `<store>.token`. Until SIGINT or SIGTERM.
    Hub {
        /// The province server's URL.
        #[arg(long, env = "DOORSTEP_HUB_UPSTREAM")]
        upstream: String,
        /// The hub's store (created if it does not exist).
        #[arg(long, env = "DOORSTEP_HUB_STORE")]
        store: PathBuf,
        /// A commune lead's enrolment code (first start only).
        #[arg(long)]
        code: Option<String>,
        /// Address the phones connect to.
        #[arg(long, env = "DOORSTEP_HUB_LISTEN", default_value = "0.0.0.0:7070")]
        listen: String,
        /// Seconds between syncs with the province server.
        #[arg(long, default_value_t = 60)]
        every_secs: u64,
        /// The PEM certificate of the authority to trust for the province server, if its
        /// certificate is not from a public one.
        #[arg(long)]
        trusted_ca: Option<PathBuf>,
    },
    // --- command centre (dashboard) commands ---
    /// Command-centre users (commune_lead, district, province) who sign in to the dashboard.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Quotas ("giao chỉ tiêu").
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Unassign a village or household from an officer.
    Unassign {
        /// The officer's id.
        #[arg(long)]
        officer: Uuid,
        /// The village code.
        #[arg(long, conflicts_with = "household")]
        village: Option<String>,
        /// The household id.
        #[arg(long)]
        household: Option<Uuid>,
    },
    /// Reports (same numbers as the dashboard's JSON API).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    // --- end of command centre commands ---
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
    /// Assign a village (or, with --household, a household) to an officer.
    Assign {
        /// The officer's id.
        #[arg(long)]
        officer: Uuid,
        /// The village code.
        #[arg(long, required_unless_present = "household")]
        village: Option<String>,
        /// A household id instead of a village.
        #[arg(long, conflicts_with = "village")]
        household: Option<Uuid>,
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
    /// A resident's rights (Decree 13/2023): what the server holds about one person.
    Resident {
        #[command(subcommand)]
        command: ResidentCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResidentCommand {
    /// Export everything held about the resident(s) with a citizen ID number, as JSON (the
    /// resident, their household and its visits, their assistance steps, their account
    /// state), for the person's request of access. Audited (`resident_export`, naming the
    /// resident's id, never the ID number). The ID number is read from --id-number-file or
    /// from stdin (first line), so that it stays out of the shell's history and the process
    /// list.
    Export {
        /// A file whose first line is the ID number; without it, stdin.
        #[arg(long)]
        id_number_file: Option<PathBuf>,
        /// Write the JSON here (created with owner-only permissions) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase the resident(s) with a citizen ID number, for the person's request of deletion:
    /// every personal field blanked and the resident deleted, on the server and on every
    /// phone at its next sync (their visits and steps stay, so counts of past days hold). The
    /// values earlier operations carried stay in operation logs until those are compacted (not
    /// built yet). Irreversible: needs --yes. Audited (`resident_erase`, naming the residents'
    /// ids). The ID number is read from --id-number-file or stdin.
    Erase {
        /// A file whose first line is the ID number; without it, stdin.
        #[arg(long)]
        id_number_file: Option<PathBuf>,
        /// Confirm the erasure (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a command user; the password is read from --password-file or from stdin (first
    /// line), never from the command line. Prints the id.
    Add {
        /// Sign-in name (unique).
        #[arg(long)]
        name: String,
        /// commune_lead, district or province.
        #[arg(long)]
        role: String,
        /// The unit they command (its level must match the role).
        #[arg(long)]
        unit: String,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// A command user's second factor: a 6-digit code from an authenticator app (TOTP,
    /// RFC 6238) asked at sign-in beside the password.
    Totp {
        #[command(subcommand)]
        command: TotpCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Give a command user a second factor (or a new one, replacing the old: a lost phone).
    /// Prints the `otpauth://` URI and the base32 secret once, for the user's authenticator
    /// app; from then on their sign-in needs a code. The secret is stored unencrypted in the
    /// database (the server has no key to encrypt it with): guard the database and its
    /// backups as you guard the residents' data.
    Enable {
        /// The user's sign-in name.
        #[arg(long)]
        name: String,
    },
    /// Remove a command user's second factor: their sign-in needs only the password again.
    Disable {
        /// The user's sign-in name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set a quota for a unit or an officer, for a day or the whole campaign.
    Set {
        /// The campaign's id.
        #[arg(long)]
        campaign: Uuid,
        /// A unit code (commune, district…).
        #[arg(long, required_unless_present = "officer")]
        unit: Option<String>,
        /// An officer's id.
        #[arg(long, conflicts_with = "unit")]
        officer: Option<Uuid>,
        /// `campaign` or a day YYYY-MM-DD.
        #[arg(long, default_value = "campaign")]
        period: String,
        /// visits, level1_activated, level2_received, level2_activated or portal_guided.
        #[arg(long)]
        metric: String,
        /// How many.
        #[arg(long)]
        target: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The daily report of a unit (or officer) on a day.
    Daily {
        /// Unit code (default: the campaign's unit).
        #[arg(long)]
        unit: Option<String>,
        /// An officer's id instead of a unit.
        #[arg(long, conflicts_with = "unit")]
        officer: Option<Uuid>,
        /// The day, YYYY-MM-DD (default: today, within the campaign).
        #[arg(long)]
        date: Option<String>,
        /// The campaign (default: the active one).
        #[arg(long)]
        campaign: Option<Uuid>,
        /// xlsx, csv or json.
        #[arg(long, default_value = "xlsx")]
        format: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// The end-of-campaign report (the daily report on the campaign's last day).
    Final {
        /// Unit code (default: the campaign's unit).
        #[arg(long)]
        unit: Option<String>,
        /// An officer's id instead of a unit.
        #[arg(long, conflicts_with = "unit")]
        officer: Option<Uuid>,
        /// The campaign (default: the latest).
        #[arg(long)]
        campaign: Option<Uuid>,
        /// xlsx, csv or json.
        #[arg(long, default_value = "xlsx")]
        format: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
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
    /// Set how many days after its last day the campaign keeps personal data (default 90).
    Retention {
        /// The campaign's id.
        #[arg(long)]
        campaign: Uuid,
        /// Days, 0-3650.
        #[arg(long)]
        days: i64,
    },
    /// Erase the campaign's personal data once its retention has run out (phone numbers,
    /// notes, locations, ID numbers no longer needed), on the server and, at their next sync,
    /// on every phone; the report counts stay. `serve` does it by itself when it is due.
    Purge {
        /// The campaign's id.
        #[arg(long)]
        campaign: Uuid,
        /// Erase now, before the retention has run out.
        #[arg(long)]
        early: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
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
pub enum AdminCommand {
    /// Create the first admin user and print its token once.
    Bootstrap {
        /// The admin's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
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
pub enum OfficerCommand {
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
pub enum DeviceCommand {
    /// Revoke a device: its token stops working at once.
    Revoke {
        /// The device's id.
        id: Uuid,
    },
    /// List devices.
    List,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Open a bundle a phone sealed for this server and apply its signed work, checked as a
    /// relayed push (author's signature, revocation, scope and authority). Importing the same
    /// bundle twice changes nothing more. Audited `bundle_import`.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
    /// Write a device's whole area (what its first pull would bring) to a file, sealed for
    /// that device and signed with this server's key: a new officer's phone imports it from a
    /// USB stick or an SD card (`importAreaBundle`) instead of pulling it over a slow link, and
    /// its next sync starts where the file ends. Audited `area_bundle`.
    Area {
        /// The device (enrolled, not revoked).
        #[arg(long)]
        device: Uuid,
        /// Where to write the bundle (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ViewCommand {
    /// Store a snapshot of the view in the database, from which a new instance starts in
    /// seconds instead of replaying the whole feed (`serve` publishes one by itself when the
    /// feed has moved 200,000 operations past the latest).
    Publish,
}
