//! ARCHITECTURE.md's invariants as tests (rust-analyzer's `tidy.rs` style):
//! each reads the source tree and names the file that breaks a rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Source without `#[cfg(test)]` modules (tests may do what code may not).
fn non_test(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// The workspace crates a crate's Cargo.toml depends on (not dev-dependencies).
fn workspace_deps(krate: &str) -> BTreeSet<String> {
    let toml = read(&root().join(krate).join("Cargo.toml"));
    let deps = toml
        .split("[dependencies]")
        .nth(1)
        .unwrap_or("")
        .split("\n[")
        .next()
        .unwrap_or("");
    deps.lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|name| name.starts_with("switchboard-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn core_is_pure() {
    // No I/O, no async, no clock reads, no environment.
    let deps = read(&root().join("crates/core/Cargo.toml"));
    for banned in [
        "tokio",
        "reqwest",
        "rusqlite",
        "axum",
        "hyper",
        "async-trait",
    ] {
        assert!(
            !deps.contains(&format!("\n{banned}")),
            "crates/core depends on {banned}"
        );
    }
    for file in rust_files(&root().join("crates/core/src")) {
        let text = read(&file);
        for banned in [
            "std::fs",
            // Address types are domain values; sockets and resolution are I/O.
            "TcpStream",
            "TcpListener",
            "UdpSocket",
            "ToSocketAddrs",
            "std::env",
            "std::process",
            "SystemTime::now",
            "Instant::now",
            "async fn",
            ".await",
        ] {
            assert!(
                !non_test(&text).contains(banned),
                "{} uses {banned}: core has no I/O, async or clock",
                file.display()
            );
        }
    }
}

#[test]
fn sql_lives_only_in_store() {
    for krate in ["core", "server", "dispatcher", "cli", "receiver"] {
        for file in rust_files(&root().join("crates").join(krate).join("src")) {
            let text = read(&file);
            for sql in [
                "SELECT ",
                "INSERT INTO",
                "UPDATE ",
                "DELETE FROM",
                "CREATE TABLE",
            ] {
                assert!(
                    !text.contains(&format!("\"{sql}")),
                    "{} has SQL ({sql}): only crates/store may",
                    file.display()
                );
            }
        }
    }
}

/// The store's logic is written once, in `engine.rs`, over each backend's
/// primitives: SQL belongs to the backends, never to the engine.
#[test]
fn the_store_engine_is_backend_neutral() {
    let engine = read(&root().join("crates/store/src/engine.rs"));
    for sql in [
        "SELECT ",
        "INSERT INTO",
        "UPDATE ",
        "DELETE FROM",
        "rusqlite",
        "tokio_postgres",
    ] {
        assert!(
            !engine.contains(sql),
            "engine.rs mentions {sql}: that belongs to a backend"
        );
    }
}

/// SQLite treats a bare bound `LIMIT ?n` as a planner hint: each new
/// binding expires the cached statement, which is then re-prepared on every
/// run (the claim query did so once per event). `LIMIT (SELECT ?n)` does not.
#[test]
fn sqlite_statements_do_not_bind_a_bare_limit() {
    for file in rust_files(&root().join("crates/store/src/sqlite")) {
        let text = read(&file).replace(char::is_whitespace, " ");
        assert!(
            !text.contains("LIMIT ?"),
            "{}: write `LIMIT (SELECT ?n)`",
            file.display()
        );
    }
}

/// Every PostgreSQL migration file is applied, in order, exactly once.
#[test]
fn every_postgres_migration_is_listed() {
    let dir = root().join("crates/store/src/postgres/migrations");
    let listed = read(&root().join("crates/store/src/postgres/mod.rs"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let version = i + 1;
        assert!(
            f.starts_with(&format!("{version:04}_")),
            "{f}: migrations are numbered 0001, 0002, …"
        );
        assert!(
            listed.contains(&format!("({version}, include_str!(\"migrations/{f}\"))")),
            "{f} is not in postgres::MIGRATIONS as version {version}"
        );
    }
}

#[test]
fn stripe_error_json_is_built_only_in_error_rs() {
    // ApiError is the one mapping to Stripe's error JSON. Exceptions, each
    // answering in a protocol that is not Stripe's API error shape:
    let allowed = [
        "crates/server/src/error.rs",
        // The Stripe CLI recognises this exact body and opens a new session.
        "crates/server/src/listen.rs",
    ];
    for file in rust_files(&root().join("crates/server/src")) {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace("/../..", "");
        let rel = rel.trim_start_matches('/');
        if allowed.iter().any(|a| rel.ends_with(a)) {
            continue;
        }
        let text = read(&file);
        assert!(
            !text.contains("json!({\"error\""),
            "{rel} builds error JSON itself: return an ApiError"
        );
    }
}

#[test]
fn every_handler_finishes_its_params() {
    // A handler takes `mut ctx: Ctx` and must call `finish_params` itself or
    // through a helper that does, so leftovers are `parameter_unknown`.
    let files = rust_files(&root().join("crates/server/src"));
    let mut finishers = BTreeSet::new();
    let mut handlers = Vec::new();
    for file in &files {
        let text = read(file);
        for chunk in text
            .split("\nfn ")
            .chain(text.split("\npub fn "))
            .chain(text.split("\npub async fn "))
            .chain(text.split("\nasync fn "))
            .skip(1)
        {
            let name: String = chunk
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body = chunk.split("\n}\n").next().unwrap_or("");
            if body.contains("finish_params()") {
                finishers.insert(name.clone());
            }
            let signature = body.split('{').next().unwrap_or("");
            if signature.contains("mut ctx: Ctx") {
                handlers.push((file.clone(), name, body.to_owned()));
            }
        }
    }
    // OAuth routes answer in OAuth's shape and ignore what they do not know, as Stripe's do.
    let exempt = ["deauthorize", "token"];
    for (file, name, body) in handlers {
        if exempt.contains(&name.as_str()) {
            continue;
        }
        let flat: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let delegates = finishers
            .iter()
            .any(|f| flat.contains(&format!("{f}(&mutctx")));
        assert!(
            body.contains("finish_params()") || delegates,
            "{}: handler `{name}` never finishes its params",
            file.display()
        );
    }
}

#[test]
fn crate_dependencies_point_down() {
    // core ← store ← {dispatcher, server} ← cli; the receiver stands alone.
    let allowed: &[(&str, &[&str])] = &[
        ("crates/core", &[]),
        ("crates/store", &["switchboard-core"]),
        (
            "crates/dispatcher",
            &["switchboard-core", "switchboard-store"],
        ),
        ("crates/server", &["switchboard-core", "switchboard-store"]),
        ("crates/receiver", &[]),
    ];
    for (krate, ok) in allowed {
        for dep in workspace_deps(krate) {
            assert!(
                ok.contains(&dep.as_str()),
                "{krate} must not depend on {dep}"
            );
        }
    }
}

#[test]
fn anyhow_only_in_binaries() {
    for krate in ["core", "store", "server", "dispatcher", "receiver"] {
        let toml = read(&root().join("crates").join(krate).join("Cargo.toml"));
        assert!(
            !toml.contains("anyhow"),
            "crates/{krate} uses anyhow: use a thiserror enum"
        );
    }
}

#[test]
fn every_event_the_server_emits_is_a_stripe_event_type() {
    // Event types are string literals passed to `ctx.event(` / `event_on(`;
    // each must be in Stripe's catalogue for the pinned version.
    let schema = switchboard_core::schema::stripe();
    let mut found = 0;
    for file in rust_files(&root().join("crates/server/src")) {
        let text = read(&file);
        let text = non_test(&text);
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let literal = &rest[..end];
            let looks_like_event = literal.contains('.')
                && !literal.contains(' ')
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                && literal.split('.').count() >= 2
                && !literal.starts_with('.')
                && !literal.ends_with('.');
            // Only literals in an event call: look back for the call on the same statement.
            let mut from = i.saturating_sub(120);
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            let before = &text[from..i];
            let in_event_call = before.contains("event(") || before.contains("event_on(");
            if looks_like_event && in_event_call && !literal.ends_with(".rs") {
                found += 1;
                assert!(
                    schema.is_event_type(literal),
                    "{}: {literal:?} is not one of Stripe's event types",
                    file.display()
                );
            }
        }
    }
    assert!(
        found >= 15,
        "only {found} event literals found: has the call shape changed?"
    );
}

#[test]
fn ci_checks_formatting_and_lints() {
    let ci = read(&root().join(".ci/run"));
    assert!(
        ci.contains("cargo fmt --all -- --check"),
        ".ci/run must check formatting"
    );
    assert!(
        ci.contains("cargo clippy --all-targets"),
        ".ci/run must run clippy"
    );
}

/// Every fuzz target has a seed corpus in the tree (a clean clone runs it):
/// cargo-fuzz's own `.gitignore` ignores `corpus/`, which once kept it out.
#[test]
fn every_fuzz_target_has_a_committed_corpus() {
    let manifest = read(&root().join("fuzz/Cargo.toml"));
    let targets: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.split("name = \"").nth(1)?.split('"').next())
        .collect();
    assert!(targets.len() >= 3, "{targets:?}");
    let ignore = read(&root().join("fuzz/.gitignore"));
    assert!(
        !ignore.lines().any(|l| l.trim() == "corpus"),
        "fuzz/.gitignore must not ignore the corpus"
    );
    for t in targets {
        let dir = root().join("fuzz/corpus").join(t);
        let seeds = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(seeds > 0, "{} has no seeds", dir.display());
    }
}
