//! The `svu-vakt` command line: parse, load the config, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use svu_vakt::config::{Config, Overrides};

use svu_vakt::cli;

#[derive(Parser)]
#[command(
    name = "svu-vakt",
    version,
    about = "Granskar samverkan vid utskrivning (Lag (2017:612)) och rapporterar avvikelser"
)]
struct Cli {
    /// TOML configuration file (see ops/svu-vakt.toml)
    #[arg(long, global = true, env = "SVU_VAKT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct DbArgs {
    /// sqlite://PATH or postgres://… (default sqlite://data/svu-vakt.db)
    #[arg(long, env = "SVU_VAKT_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on (default 127.0.0.1:8080)
        #[arg(long, env = "SVU_VAKT_LISTEN")]
        listen: Option<String>,
        /// smtp://host:port, smtp://…?tls=required (STARTTLS) or smtps://… (TLS)
        #[arg(long, env = "SVU_VAKT_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
        /// Load the synthetic demo county when the database holds no events,
        /// and print an admin token for it
        #[arg(long)]
        demo: bool,
        /// Number of demo cases with --demo
        #[arg(long, default_value_t = 2000)]
        demo_cases: usize,
    },
    /// Run one scan now, deliver the mail it queued and any still pending, and exit
    Scan {
        #[command(flatten)]
        db: DbArgs,
        /// Evaluate as of this instant (RFC 3339 with offset); default now
        #[arg(long)]
        as_of: Option<String>,
        /// Re-evaluate every case, not only those that changed or fell due
        #[arg(long)]
        full: bool,
        /// smtp://host:port, smtp://…?tls=required (STARTTLS) or smtps://… (TLS)
        #[arg(long, env = "SVU_VAKT_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
    },
    /// Benchmark at county scale: demo data, import, scans, check and the
    /// plain-SQL peer of the four core rules, as a table (see docs/PERFORMANCE.md)
    Bench {
        /// Demo cases (about 13 events each)
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// An EMPTY database to run in (default: a new SQLite file in a temporary directory)
        #[arg(long)]
        database_url: Option<String>,
        /// Leave out the plain-SQL peer (it grows faster than linearly on SQLite)
        #[arg(long)]
        without_peer: bool,
    },
    /// Show where a unit's deviations are mailed
    Routes {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        unit: String,
    },
    /// Back up the SQLite database to FILE, consistent while the service runs
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// The backup file to write (must not exist)
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup made by `backup` as the SQLite database, which must not exist
    Restore {
        #[command(flatten)]
        db: DbArgs,
        /// The backup file to restore
        #[arg(long)]
        from: PathBuf,
    },
    /// Copy a SQLite installation into an empty PostgreSQL database, every
    /// table verified by rows and checksum (stop the service first)
    Copy {
        /// sqlite://PATH of the installation to move
        #[arg(long)]
        from: String,
        /// postgres://… of an empty database
        #[arg(long)]
        to: String,
    },
    /// List the latest ingest batches (API, import, drop folder), newest first
    Batches {
        #[command(flatten)]
        db: DbArgs,
        /// Only batches whose source contains this (e.g. the file name)
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Remove the events an ingest batch stored (a bad export); the next
    /// scan judges its cases again. Shows what would go without --yes
    RemoveBatch {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        batch: i64,
        /// Remove, not only show
        #[arg(long)]
        yes: bool,
    },
    /// Run the database migrations and exit
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Import units and events from files (JSON, JSON Lines, or CSV with a mapping)
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// Units: a JSON array, JSON Lines, or CSV with a header row
        #[arg(long)]
        units: Option<PathBuf>,
        /// Events: JSON Lines (or a JSON array), or CSV with --mapping
        #[arg(long)]
        events: Option<PathBuf>,
        /// TOML file mapping CSV export columns onto event fields
        #[arg(long)]
        mapping: Option<PathBuf>,
    },
    /// Evaluate the rules on files, without a database; prints the findings
    Check {
        /// Units: a JSON array, JSON Lines, or CSV
        #[arg(long)]
        units: PathBuf,
        /// Events: JSON Lines (or a JSON array)
        #[arg(long)]
        events: PathBuf,
        /// The instant of evaluation, RFC 3339 with offset; later events have not happened
        #[arg(long)]
        as_of: String,
        #[arg(long, value_enum, default_value_t = cli::Format::Json)]
        format: cli::Format,
        /// nationell (default), ostergotland or vasterbotten
        #[arg(long)]
        profile: Option<String>,
        /// Exactly these rules, comma-separated (default: every rule the profile has on)
        #[arg(long, value_delimiter = ',')]
        rules: Option<Vec<String>>,
    },
    /// Swedish holidays and storhelg staffing days of a year
    Calendar {
        year: i32,
        #[arg(long, value_enum, default_value_t = cli::Format::Json)]
        format: cli::Format,
        /// A profile whose published staffing tables apply (e.g. ostergotland)
        #[arg(long)]
        profile: Option<String>,
    },
    /// Follow-up reports (SPEC §7): the quarterly LPO/LAG report, adherence
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Manage API tokens
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage the people who log in to the pages and the API
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Generate a synthetic county (units and cases) into the database or files
    Demo {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// First admission date (YYYY-MM-DD)
        #[arg(long, default_value = "2026-01-01")]
        from: NaiveDate,
        /// Last admission date (YYYY-MM-DD)
        #[arg(long, default_value = "2026-12-31")]
        to: NaiveDate,
        /// Write DIR/units.json and DIR/events.jsonl instead of the database
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReportKind {
    /// The quarterly report of the whole county, e.g. `report quarterly 2026-Q2`
    Quarterly {
        #[command(flatten)]
        db: DbArgs,
        /// YYYY-QN
        quarter: String,
        #[arg(long, value_enum, default_value_t = cli::ReportFormat::Html)]
        format: cli::ReportFormat,
        /// Betalningsansvar model: vasterbotten or rullande (default: the installation's)
        #[arg(long)]
        model: Option<String>,
    },
    /// Adherence per rule and group over a period
    Adherence {
        #[command(flatten)]
        db: DbArgs,
        /// First day, YYYY-MM-DD
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD
        #[arg(long)]
        to: String,
        /// unit, subtree, huvudman or county
        #[arg(long, default_value = "unit")]
        group: String,
        /// One rule
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum, default_value_t = cli::ReportFormat::Json)]
        format: cli::ReportFormat,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; it is printed once, alone on the last line
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// admin, ledning, handlaggare or inlasning
        #[arg(long)]
        role: String,
        /// The unit a handlaggare token belongs to
        #[arg(long)]
        unit: Option<String>,
        /// A note on who holds the token
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password is read from standard input, or generated and printed when none is given
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
        /// admin, ledning or handlaggare
        #[arg(long)]
        role: String,
        /// A unit the user works for (repeat for several); a handlaggare needs at least one
        #[arg(long = "unit")]
        units: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        /// The HSA-id a login through the identity provider is matched on ([oidc] match_by = "hsa_id")
        #[arg(long)]
        hsa_id: Option<String>,
    },
    /// Change a user's role, units or HSA-id; the user's sessions end when role or units change
    Update {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
        /// admin, ledning or handlaggare
        #[arg(long)]
        role: Option<String>,
        /// The user's units from now on (repeat for several; replaces the ones it had)
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Set the HSA-id
        #[arg(long, conflicts_with = "no_hsa_id")]
        hsa_id: Option<String>,
        /// Remove the HSA-id
        #[arg(long)]
        no_hsa_id: bool,
    },
    /// Disable a user: no more logins, its sessions end; its history stays
    Disable {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
    },
    /// Set a new password (read from standard input, or generated and printed); lifts a lock-out
    Passwd {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
    },
}

fn load(
    cli_config: Option<&PathBuf>,
    db: &DbArgs,
    listen: Option<String>,
    smtp_url: Option<String>,
) -> anyhow::Result<Config> {
    let overrides = Overrides {
        database_url: db.database_url.clone(),
        listen,
        smtp_url,
    };
    let config = Config::load(cli_config.map(PathBuf::as_path), &overrides)?;
    svu_vakt::telemetry::init(config.log_format, &config.log_level);
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = cli.config.as_ref();
    match cli.command {
        Command::Serve {
            db,
            listen,
            smtp_url,
            demo,
            demo_cases,
        } => cli::serve(&load(cfg, &db, listen, smtp_url)?, demo, demo_cases),
        Command::Scan {
            db,
            as_of,
            full,
            smtp_url,
        } => cli::scan(&load(cfg, &db, None, smtp_url)?, as_of.as_deref(), full),
        Command::Bench {
            cases,
            seed,
            database_url,
            without_peer,
        } => {
            // Synthetic data: a throwaway patient key, and no key file written anywhere.
            if std::env::var_os("SVU_VAKT_PATIENT_KEY").is_none() {
                std::env::set_var("SVU_VAKT_PATIENT_KEY", "bench-only-key-not-for-patient-data-0123456789");
            }
            let db = DbArgs {
                database_url: Some(
                    database_url
                        .clone()
                        .unwrap_or_else(|| "sqlite:///tmp/svu-vakt-bench.db".into()),
                ),
            };
            let opts = svu_vakt::bench::BenchOptions {
                cases,
                seed,
                database_url,
                peer: !without_peer,
            };
            svu_vakt::bench::run(&load(cfg, &db, None, None)?, &opts)
        }
        Command::Routes { db, unit } => cli::routes(&load(cfg, &db, None, None)?, &unit),
        Command::Migrate { db } => cli::migrate(&load(cfg, &db, None, None)?),
        Command::Backup { db, to } => cli::backup(&load(cfg, &db, None, None)?, &to),
        Command::Restore { db, from } => cli::restore(&load(cfg, &db, None, None)?, &from),
        Command::Copy { from, to } => cli::copy(&from, &to),
        Command::Batches { db, source, limit } => cli::batches(&load(cfg, &db, None, None)?, source.as_deref(), limit),
        Command::RemoveBatch { db, batch, yes } => cli::remove_batch(&load(cfg, &db, None, None)?, batch, yes),
        Command::Import {
            db,
            units,
            events,
            mapping,
        } => cli::import(
            &load(cfg, &db, None, None)?,
            units.as_deref(),
            events.as_deref(),
            mapping.as_deref(),
        ),
        Command::Check {
            units,
            events,
            as_of,
            format,
            profile,
            rules,
        } => cli::check(
            cfg.map(PathBuf::as_path),
            &units,
            &events,
            &as_of,
            format,
            profile.as_deref(),
            rules,
        ),
        Command::Calendar { year, format, profile } => {
            cli::calendar(cfg.map(PathBuf::as_path), year, format, profile.as_deref())
        }
        Command::Report { kind } => match kind {
            ReportKind::Quarterly {
                db,
                quarter,
                format,
                model,
            } => cli::report_quarterly(&load(cfg, &db, None, None)?, &quarter, format, model.as_deref()),
            ReportKind::Adherence {
                db,
                from,
                to,
                group,
                rule,
                format,
            } => cli::report_adherence(
                &load(cfg, &db, None, None)?,
                &from,
                &to,
                &group,
                rule.as_deref(),
                format,
            ),
        },
        Command::Token {
            action: TokenAction::Create { db, role, unit, label },
        } => cli::token_create(&load(cfg, &db, None, None)?, &role, unit.as_deref(), label.as_deref()),
        Command::User { action } => match action {
            UserAction::Create {
                db,
                username,
                role,
                units,
                email,
                hsa_id,
            } => cli::user_create(
                &load(cfg, &db, None, None)?,
                &username,
                &role,
                &units,
                email.as_deref(),
                hsa_id.as_deref(),
            ),
            UserAction::Update {
                db,
                username,
                role,
                units,
                hsa_id,
                no_hsa_id,
            } => cli::user_update(
                &load(cfg, &db, None, None)?,
                &username,
                role.as_deref(),
                units,
                if no_hsa_id { Some(None) } else { hsa_id.map(Some) },
            ),
            UserAction::Disable { db, username } => cli::user_disable(&load(cfg, &db, None, None)?, &username),
            UserAction::Passwd { db, username } => cli::user_passwd(&load(cfg, &db, None, None)?, &username),
        },
        Command::Demo {
            db,
            seed,
            cases,
            from,
            to,
            out,
        } => {
            let opts = svu_vakt::demo::DemoOptions { seed, cases, from, to };
            match out {
                Some(dir) => cli::demo_files(&opts, &dir),
                None => cli::demo_db(&load(cfg, &db, None, None)?, &opts),
            }
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fel: {e:#}");
            ExitCode::FAILURE
        }
    }
}
