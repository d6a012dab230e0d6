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
    // Every setting once, and the environment names operators already use.
    assert_eq!(flags.len(), envs.len());
    for env in [
        "SOKU_X_CLIENT_SECRET",
        "SOKU_CONNECT_REDIRECT_ORIGINS",
        "SOKU_LOG",
    ] {
        assert!(envs.contains(env), "{env}");
    }
}
