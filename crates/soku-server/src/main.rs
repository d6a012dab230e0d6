//! `soku`: the server and its operator commands.

use clap::{Args, Parser, Subcommand};
use soku_server::admin::{self, AdminCommand};
use soku_server::auth::tokens::{DEFAULT_FIREBASE_CERTS_URL, FirebaseSettings};
use soku_server::{ServerOptions, build_state, router, serve, shutdown_signal, telemetry};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "soku",
    version,
    about = "A self-hostable server for the Soku publishing API"
)]
struct Cli {
    /// `sqlite://FILE` (created on first start) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "SOKU_DATABASE_URL",
        default_value = "sqlite://soku.db",
        global = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Operator commands; they work while a server runs on the same database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SOKU_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL clients reach this server at; `iss` of the built-in issuer's ID tokens.
    /// Default: `http://<listen address>`. Set it when several nodes serve one database.
    #[arg(long, env = "SOKU_PUBLIC_URL")]
    public_url: Option<String>,
    /// Accept Firebase ID tokens of this project.
    #[arg(long, env = "SOKU_FIREBASE_PROJECT_ID")]
    firebase_project_id: Option<String>,
    /// Where Google publishes the certificates that sign Firebase ID tokens.
    #[arg(long, env = "SOKU_FIREBASE_CERTS_URL", default_value = DEFAULT_FIREBASE_CERTS_URL)]
    firebase_certs_url: String,
    /// `text` (default) or `json`.
    #[arg(long, env = "SOKU_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => run_server(&cli.database_url, args).await,
            Command::Admin { command } => admin::run(&cli.database_url, command).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(database_url: &str, args: ServeArgs) -> Result<(), String> {
    telemetry::init(args.log_format.eq_ignore_ascii_case("json"));
    let emulator = std::env::var("FIREBASE_AUTH_EMULATOR_HOST")
        .map(|v| !v.trim().is_empty())
        .unwrap_or(false);
    let firebase = match (
        args.firebase_project_id.filter(|p| !p.trim().is_empty()),
        emulator,
    ) {
        (Some(project_id), _) => Some(FirebaseSettings {
            project_id,
            certs_url: args.firebase_certs_url,
            emulator,
        }),
        (None, true) => {
            return Err(
                "FIREBASE_AUTH_EMULATOR_HOST is set but SOKU_FIREBASE_PROJECT_ID is not: \
                        emulator tokens name a project"
                    .into(),
            );
        }
        (None, false) => None,
    };
    if emulator {
        tracing::warn!(
            "FIREBASE_AUTH_EMULATOR_HOST is set: unsigned Firebase emulator tokens are accepted"
        );
    }

    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    store
        .put_setting(admin::PUBLIC_URL_SETTING, &public_url)
        .await
        .map_err(|e| e.to_string())?;
    let backend = store.backend();
    let state = build_state(
        store,
        Arc::new(soku_core::SystemClock),
        ServerOptions {
            public_url: public_url.clone(),
            firebase,
        },
    )
    .await
    .map_err(|e| format!("cannot load the identity provider's keys: {e}"))?;
    tracing::info!(
        listen = %addr,
        public_url = %public_url,
        database = %soku_store::redact_url(database_url),
        backend,
        "soku is serving"
    );
    serve(listener, router(state, None), shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("soku stopped");
    Ok(())
}
