//! The shape of the code that the restructure (issue 16) set, kept by a test so that it does not
//! slip again as features land (it did twice):
//! - no source file outside the network connectors and their fakes is over 600 lines, tests
//!   not counted (a file's own `#[cfg(test)]` module, `tests.rs` files and `tests/` folders);
//! - the layers of the server point one way: `service/` imports neither `api/` nor
//!   `dashboard/`; `dashboard/` does not import `api/`; `api/` does not import `dashboard/`.

use soku_core::platform::Platform;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace folder")
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_test(relative: &Path) -> bool {
    relative
        .components()
        .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs")
}

/// A network connector (`soku-platforms/src/<platform>.rs` or `<platform>/…`, and the Graph
/// API code Instagram, Facebook and Threads share) or a fake of a network.
fn is_connector_or_fake(relative: &Path) -> bool {
    let parts: Vec<&str> = relative.iter().filter_map(|c| c.to_str()).collect();
    match parts.as_slice() {
        ["crates", "soku-fakes", ..] => true,
        ["crates", "soku-platforms", "src", first, ..] => {
            let stem = first.strip_suffix(".rs").unwrap_or(first);
            Platform::ALL.iter().any(|p| p.as_str() == stem) || matches!(stem, "graph" | "meta")
        }
        _ => false,
    }
}

/// The lines of a file before its own test module.
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

#[test]
fn no_source_file_outside_connectors_and_fakes_is_over_600_lines() {
    let root = workspace();
    let mut checked = 0;
    let mut over = Vec::new();
    for crate_dir in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let crate_dir = crate_dir.expect("a crate").path();
        for sub in ["src", "examples", "benches"] {
            if !crate_dir.join(sub).is_dir() {
                continue;
            }
            for file in rust_files(&crate_dir.join(sub)) {
                let relative = file.strip_prefix(&root).expect("under the workspace");
                if is_test(relative) || is_connector_or_fake(relative) {
                    continue;
                }
                checked += 1;
                let lines = code_lines(&std::fs::read_to_string(&file).expect("readable"));
                if lines > MAX_LINES {
                    over.push(format!("{} ({lines} lines)", relative.display()));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} files found: is the walk right?"
    );
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines, tests not counted (split them by concern):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_server_layers_point_one_way() {
    let src = workspace().join("crates/soku-server/src");
    let rules: [(&str, &[&str]); 3] = [
        ("service", &["crate::api", "crate::dashboard"]),
        ("dashboard", &["crate::api"]),
        ("api", &["crate::dashboard"]),
    ];
    let mut broken = Vec::new();
    for (layer, forbidden) in rules {
        let files = rust_files(&src.join(layer));
        assert!(!files.is_empty(), "no files under {layer}/");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            for (n, line) in text.lines().enumerate() {
                for f in forbidden {
                    // `crate::api::` or `crate::api;` or `crate::api::{`; not `crate::apis`.
                    let hit = line.match_indices(f).any(|(at, _)| {
                        !line[at + f.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if hit {
                        broken.push(format!(
                            "{}:{}: {layer}/ uses {f}",
                            file.strip_prefix(&src).unwrap().display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The checks above would pass on an empty list: make sure they can see what they forbid.
#[test]
fn the_layout_checks_see_what_they_look_for() {
    assert_eq!(code_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
    assert!(is_connector_or_fake(Path::new(
        "crates/soku-platforms/src/x/mod.rs"
    )));
    assert!(is_connector_or_fake(Path::new(
        "crates/soku-platforms/src/bluesky.rs"
    )));
    assert!(is_connector_or_fake(Path::new(
        "crates/soku-fakes/src/x.rs"
    )));
    assert!(!is_connector_or_fake(Path::new(
        "crates/soku-platforms/src/http.rs"
    )));
    assert!(!is_connector_or_fake(Path::new(
        "crates/soku-server/src/admin.rs"
    )));
    assert!(is_test(Path::new(
        "crates/soku-core/src/posts/media_rules/tests.rs"
    )));
    assert!(!is_test(Path::new(
        "crates/soku-core/src/posts/media_rules/mod.rs"
    )));
}
