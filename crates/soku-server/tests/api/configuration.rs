//! The settings: `docs/OPERATIONS.md` documents exactly the flags and environment variables
//! that `soku serve` reads.

use clap::CommandFactory;
use soku_server::config::Config;
use std::collections::BTreeSet;

/// The flags and variables of the table under `## Settings` in docs/OPERATIONS.md.
fn documented() -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/OPERATIONS.md"
    ))
    .unwrap();
    let section = doc
        .split("\n## Settings\n")
        .nth(1)
        .expect("OPERATIONS.md has a Settings section");
    let section = section.split("\n## ").next().unwrap();
    let (mut flags, mut envs) = (BTreeSet::new(), BTreeSet::new());
    for row in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells.len() >= 5, "a row of four cells: {row}");
        let (flag, env) = (cells[1].trim_matches('`'), cells[2].trim_matches('`'));
        assert!(flag.starts_with("--"), "a flag in the first cell: {row}");
        assert!(!env.is_empty(), "a variable in the second cell: {row}");
        assert!(flags.insert(flag.to_owned()), "{flag} documented twice");
        assert!(envs.insert(env.to_owned()), "{env} documented twice");
    }
    (flags, envs)
}

/// The flags and variables of `soku serve` (its own and the global ones).
fn declared() -> (BTreeSet<String>, BTreeSet<String>) {
    let command = Config::command();
    let serve = command
        .find_subcommand("serve")
        .expect("soku serve")
        .clone();
    let (mut flags, mut envs) = (BTreeSet::new(), BTreeSet::new());
    for arg in command.get_arguments().chain(serve.get_arguments()) {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        flags.insert(format!("--{long}"));
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{long} has no environment variable"));
        envs.insert(env.to_string_lossy().into_owned());
    }
    (flags, envs)
}

#[test]
fn operations_md_documents_every_setting_and_only_those() {
    let (doc_flags, doc_envs) = documented();
    let (flags, envs) = declared();
    let missing: Vec<_> = flags.difference(&doc_flags).collect();
    let extra: Vec<_> = doc_flags.difference(&flags).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "flags not documented: {missing:?}; documented but not flags: {extra:?}"
    );
    let missing: Vec<_> = envs.difference(&doc_envs).collect();
    let extra: Vec<_> = doc_envs.difference(&envs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "variables not documented: {missing:?}; documented but not read: {extra:?}"
    );
    assert_eq!(flags.len(), envs.len(), "one variable per flag");
}

/// The variables servers were configured with before the settings were gathered in one place
/// keep working.
#[test]
fn the_environment_names_operators_use_are_kept() {
    let (_, envs) = declared();
    let mut kept: Vec<String> = [
        "SOKU_DATABASE_URL",
        "SOKU_LISTEN",
        "SOKU_PUBLIC_URL",
        "SOKU_FIREBASE_PROJECT_ID",
        "SOKU_FIREBASE_CERTS_URL",
        "SOKU_FIREBASE_WEB_API_KEY",
        "FIREBASE_AUTH_EMULATOR_HOST",
        "SOKU_RATE_LIMITS",
        "SOKU_REDIS_URL",
        "SOKU_REDIS_PREFIX",
        "SOKU_REDIS_TIMEOUT_MS",
        "SOKU_RATE_LIMIT_ON_ERROR",
        "SOKU_TRUSTED_PROXIES",
        "SOKU_LOG_FORMAT",
        "SOKU_LOG",
        "SOKU_SECRET_KEY",
        "SOKU_WORKER_CONCURRENCY",
        "SOKU_JOB_LEASE_SECS",
        "SOKU_MAX_ATTEMPTS",
        "SOKU_RETRY_BASE_MS",
        "SOKU_SIMULATED_LATENCY_MS",
        "SOKU_CONNECT_REDIRECT_ORIGINS",
        "SOKU_MEDIA_MEMORY_MB",
        "SOKU_ALLOW_LOOPBACK",
        "SOKU_LINKEDIN_VERSION",
    ]
    .map(str::to_owned)
    .into();
    for p in ["X", "THREADS", "LINKEDIN"] {
        for name in [
            "API_URL",
            "AUTH_URL",
            "CLIENT_ID",
            "CLIENT_SECRET",
            "TIMEOUT_SECS",
        ] {
            kept.push(format!("SOKU_{p}_{name}"));
        }
    }
    for p in ["BLUESKY", "MASTODON"] {
        for name in ["API_URL", "TIMEOUT_SECS"] {
            kept.push(format!("SOKU_{p}_{name}"));
        }
    }
    let lost: Vec<_> = kept.iter().filter(|e| !envs.contains(*e)).collect();
    assert!(lost.is_empty(), "no longer read: {lost:?}");
}
