//! The `svu-vakt` command line: parse, load the config, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use svu_vakt::config::{Config, Overrides};

use svu_vakt::cli;

/// mimalloc in place of glibc's malloc: parsing and the scan allocate a few
/// small strings per event on several threads, where glibc's arenas spent
/// a quarter of `check`'s time (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "svu-vakt",
    version,
    about = "Granskar samverkan vid utskrivning (Lag (2017:612)) och rapporterar avvikelser"
)]
struct Cli {
    /// TOML-konfigurationsfil (se ops/svu-vakt.toml)
    #[arg(long, global = true, env = "SVU_VAKT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct DbArgs {
    /// sqlite://SÖKVÄG eller postgres://… (standard sqlite://data/svu-vakt.db)
    #[arg(long, env = "SVU_VAKT_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Kör HTTP-tjänsten
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Adress att lyssna på (standard 127.0.0.1:8080)
        #[arg(long, env = "SVU_VAKT_LISTEN")]
        listen: Option<String>,
        /// smtp://värd:port, smtp://…?tls=required (STARTTLS) eller smtps://… (TLS)
        #[arg(long, env = "SVU_VAKT_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
        /// Läs in det syntetiska demolänet när databasen saknar händelser,
        /// och skriv ut en admin-token för det
        #[arg(long)]
        demo: bool,
        /// Antal demoärenden med --demo
        #[arg(long, default_value_t = 2000)]
        demo_cases: usize,
    },
    /// Kör en granskning nu, skicka e-posten den lade i kö och allt som fortfarande väntar, och avsluta
    Scan {
        #[command(flatten)]
        db: DbArgs,
        /// Granska per denna tidpunkt (RFC 3339 med tidszon); standard nu
        #[arg(long)]
        as_of: Option<String>,
        /// Granska alla ärenden, inte bara de som ändrats eller förfallit
        #[arg(long)]
        full: bool,
        /// smtp://värd:port, smtp://…?tls=required (STARTTLS) eller smtps://… (TLS)
        #[arg(long, env = "SVU_VAKT_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
    },
    /// Prestandamätning i länsskala: demodata, import, granskningar, check och
    /// SQL-jämförelsen för de fyra kärnreglerna, som en tabell (se docs/PERFORMANCE.md)
    Bench {
        /// Demoärenden (cirka 13 händelser vardera)
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// En TOM databas att köra i (standard: en ny SQLite-fil i en tillfällig katalog)
        #[arg(long)]
        database_url: Option<String>,
        /// Hoppa över SQL-jämförelsen (den växer snabbare än linjärt på SQLite)
        #[arg(long)]
        without_peer: bool,
        /// Importera demofilen i ärendeordning (standard: raderna i slumpordning)
        #[arg(long)]
        in_case_order: bool,
    },
    /// Visa vart en enhets avvikelser mejlas
    Routes {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        unit: String,
    },
    /// Säkerhetskopiera SQLite-databasen till FIL, konsistent medan tjänsten kör
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// Säkerhetskopian som ska skrivas (får inte finnas)
        #[arg(long)]
        to: PathBuf,
    },
    /// Återställ en säkerhetskopia från `backup` som SQLite-databasen, som inte får finnas
    Restore {
        #[command(flatten)]
        db: DbArgs,
        /// Säkerhetskopian som ska återställas
        #[arg(long)]
        from: PathBuf,
    },
    /// Kopiera en SQLite-installation till en tom PostgreSQL-databas; varje
    /// tabell kontrolleras med antal rader och kontrollsumma (stoppa tjänsten först)
    Copy {
        /// sqlite://SÖKVÄG till installationen som ska flyttas
        #[arg(long)]
        from: String,
        /// postgres://… till en tom databas
        #[arg(long)]
        to: String,
    },
    /// Lista de senaste inläsningsbatcherna (API, import, inkorg), nyast först
    Batches {
        #[command(flatten)]
        db: DbArgs,
        /// Bara batcher vars källa innehåller detta (t.ex. filnamnet)
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Ta bort händelserna som en inläsningsbatch sparade (en felaktig export); nästa
    /// granskning bedömer ärendena på nytt. Utan --yes visas bara vad som skulle tas bort
    RemoveBatch {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        batch: i64,
        /// Ta bort, inte bara visa
        #[arg(long)]
        yes: bool,
    },
    /// Kör databasens migreringar och avsluta
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Läs in enheter och händelser från filer (JSON, JSON Lines eller CSV med mappning)
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// Enheter: en JSON-array, JSON Lines eller CSV med rubrikrad
        #[arg(long)]
        units: Option<PathBuf>,
        /// Händelser: JSON Lines (eller en JSON-array), eller CSV med --mapping
        #[arg(long)]
        events: Option<PathBuf>,
        /// TOML-fil som mappar exportens CSV-kolumner till händelsefält
        #[arg(long)]
        mapping: Option<PathBuf>,
    },
    /// Tillämpa reglerna på filer, utan databas; skriver ut fynden
    Check {
        /// Enheter: en JSON-array, JSON Lines eller CSV
        #[arg(long)]
        units: PathBuf,
        /// Händelser: JSON Lines (eller en JSON-array)
        #[arg(long)]
        events: PathBuf,
        /// Granskningstidpunkten, RFC 3339 med tidszon; senare händelser räknas som ej inträffade
        #[arg(long)]
        as_of: String,
        #[arg(long, value_enum, default_value_t = cli::Format::Json)]
        format: cli::Format,
        /// nationell (standard), ostergotland eller vasterbotten
        #[arg(long)]
        profile: Option<String>,
        /// Exakt dessa regler, kommaseparerade (standard: alla regler som profilen har påslagna)
        #[arg(long, value_delimiter = ',')]
        rules: Option<Vec<String>>,
    },
    /// Årets helgdagar och bemanningsdagar vid storhelg
    Calendar {
        year: i32,
        #[arg(long, value_enum, default_value_t = cli::Format::Json)]
        format: cli::Format,
        /// En profil vars publicerade bemanningstabeller gäller (t.ex. ostergotland)
        #[arg(long)]
        profile: Option<String>,
    },
    /// Uppföljningsrapporter (SPEC §7): kvartalsrapporten för LPO/LAG, följsamhet
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Hantera API-tokens
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Hantera personerna som loggar in på sidorna och i API:t
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Skapa ett syntetiskt län (enheter och ärenden) i databasen eller i filer
    Demo {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Första inskrivningsdag (ÅÅÅÅ-MM-DD)
        #[arg(long, default_value = "2026-01-01")]
        from: NaiveDate,
        /// Sista inskrivningsdag (ÅÅÅÅ-MM-DD)
        #[arg(long, default_value = "2026-12-31")]
        to: NaiveDate,
        /// Skriv KAT/units.json och KAT/events.jsonl i stället för till databasen
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReportKind {
    /// Kvartalsrapporten för hela länet, t.ex. `report quarterly 2026-Q2`
    Quarterly {
        #[command(flatten)]
        db: DbArgs,
        /// ÅÅÅÅ-QN
        quarter: String,
        #[arg(long, value_enum, default_value_t = cli::ReportFormat::Html)]
        format: cli::ReportFormat,
        /// Modell för betalningsansvar: vasterbotten eller rullande (standard: installationens)
        #[arg(long)]
        model: Option<String>,
    },
    /// Följsamhet per regel och grupp under en period
    Adherence {
        #[command(flatten)]
        db: DbArgs,
        /// Första dag, ÅÅÅÅ-MM-DD
        #[arg(long)]
        from: String,
        /// Sista dag, ÅÅÅÅ-MM-DD
        #[arg(long)]
        to: String,
        /// unit, subtree, huvudman eller county
        #[arg(long, default_value = "unit")]
        group: String,
        /// En regel
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum, default_value_t = cli::ReportFormat::Json)]
        format: cli::ReportFormat,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Skapa en token; den skrivs ut en gång, ensam på sista raden
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// admin, ledning, handlaggare eller inlasning
        #[arg(long)]
        role: String,
        /// Enheten som en token för handlaggare hör till
        #[arg(long)]
        unit: Option<String>,
        /// En anteckning om vem som har token
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Skapa en användare; lösenordet läses från standard in, eller skapas och skrivs ut om inget anges
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
        /// admin, ledning eller handlaggare
        #[arg(long)]
        role: String,
        /// En enhet som användaren arbetar för (upprepa för flera); en handläggare behöver minst en
        #[arg(long = "unit")]
        units: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        /// HSA-id som en inloggning via inloggningstjänsten känns igen på ([oidc] match_by = "hsa_id")
        #[arg(long)]
        hsa_id: Option<String>,
    },
    /// Ändra en användares roll, enheter eller HSA-id; användarens inloggningar avslutas när roll eller enheter ändras
    Update {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
        /// admin, ledning eller handlaggare
        #[arg(long)]
        role: Option<String>,
        /// Användarens enheter från och med nu (upprepa för flera; ersätter de tidigare)
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Sätt HSA-id
        #[arg(long, conflicts_with = "no_hsa_id")]
        hsa_id: Option<String>,
        /// Ta bort HSA-id
        #[arg(long)]
        no_hsa_id: bool,
    },
    /// Stäng av en användare: inga fler inloggningar, pågående inloggningar avslutas; historiken finns kvar
    Disable {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        username: String,
    },
    /// Sätt ett nytt lösenord (läses från standard in, eller skapas och skrivs ut); häver en spärr
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
            in_case_order,
        } => bench(cfg, cases, seed, database_url, without_peer, in_case_order),
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
        } => {
            let config = load(cfg, &db, None, None)?;
            cli::import(&config, units.as_deref(), events.as_deref(), mapping.as_deref())
        }
        Command::Check {
            units,
            events,
            as_of,
            format,
            profile,
            rules,
        } => {
            let config = cfg.map(PathBuf::as_path);
            cli::check(config, &units, &events, &as_of, format, profile.as_deref(), rules)
        }
        Command::Calendar { year, format, profile } => {
            cli::calendar(cfg.map(PathBuf::as_path), year, format, profile.as_deref())
        }
        Command::Report { kind } => kind.run(cfg),
        Command::Token {
            action: TokenAction::Create { db, role, unit, label },
        } => cli::token_create(&load(cfg, &db, None, None)?, &role, unit.as_deref(), label.as_deref()),
        Command::User { action } => action.run(cfg),
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

/// `bench` on synthetic data: a throwaway patient key (`bench::throwaway_key`)
/// and, unless one is given, a temporary SQLite file.
fn bench(
    cfg: Option<&PathBuf>,
    cases: usize,
    seed: u64,
    database_url: Option<String>,
    without_peer: bool,
    in_case_order: bool,
) -> anyhow::Result<()> {
    svu_vakt::bench::throwaway_key()?;
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
        case_order: in_case_order,
    };
    svu_vakt::bench::run(&load(cfg, &db, None, None)?, &opts)
}

impl ReportKind {
    fn run(self, cfg: Option<&PathBuf>) -> anyhow::Result<()> {
        match self {
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
            } => {
                let config = load(cfg, &db, None, None)?;
                cli::report_adherence(&config, &from, &to, &group, rule.as_deref(), format)
            }
        }
    }
}

impl UserAction {
    fn run(self, cfg: Option<&PathBuf>) -> anyhow::Result<()> {
        match self {
            UserAction::Create {
                db,
                username,
                role,
                units,
                email,
                hsa_id,
            } => {
                let config = load(cfg, &db, None, None)?;
                cli::user_create(&config, &username, &role, &units, email.as_deref(), hsa_id.as_deref())
            }
            UserAction::Update {
                db,
                username,
                role,
                units,
                hsa_id,
                no_hsa_id,
            } => {
                let hsa_id = if no_hsa_id { Some(None) } else { hsa_id.map(Some) };
                cli::user_update(&load(cfg, &db, None, None)?, &username, role.as_deref(), units, hsa_id)
            }
            UserAction::Disable { db, username } => cli::user_disable(&load(cfg, &db, None, None)?, &username),
            UserAction::Passwd { db, username } => cli::user_passwd(&load(cfg, &db, None, None)?, &username),
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
