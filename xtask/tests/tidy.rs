//! The house rules, checked on the source itself (no Docker needed):
//! - the modules of xtask/src are layers (lib.rs's documentation names them): each imports only
//!   from layers below it, so there is no cycle, and command families never import each other;
//! - no function in xtask/src is longer than 80 lines;
//! - every `cargo xtask ...` in the repository (hints in the code, the README and the guides,
//!   the workflows, the golden plans) parses with the real command table (a command named
//!   without its required arguments, in prose, counts as parsed: its name is right).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

/// The layers of xtask/src, highest first. A module may import only modules of a lower layer.
const LAYERS: &[&[&str]] = &[
    // The dispatch.
    &["lib"],
    // The command families.
    &["dev", "backend", "frontend", "release", "deploy", "operate", "setup", "tools"],
    // The command table: a leaf below the families, above nothing it may not import.
    &["cli"],
    // What the families share.
    &["stack", "engine", "remote", "remote::switch"],
    &["images", "remote::host", "remote::swarm"],
    &["remote::lock"],
    &["remote::log", "remote::docker", "remote::nginx", "remote::db"],
    &["remote::target"],
    &["remote::ssh"],
    &["project"],
    // The core, each using only those after it.
    &["run"],
    &["plan"],
    &["checks"],
    &["fsops"],
    &["process"],
    &["config"],
    &["cmd"],
    &["interrupt"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of xtask/src by its path (`remote::host`; the crate root is `lib`), with the
/// text of its file before its tests.
fn modules() -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    for entry in walkdir::WalkDir::new(src()).into_iter().map(Result::unwrap) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") {
            continue;
        }
        let rel = path.strip_prefix(src()).unwrap().with_extension("");
        let mut name = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "::");
        if let Some(parent) = name.strip_suffix("::mod") {
            name = parent.to_string();
        }
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap().to_string();
        modules.insert(name, code);
    }
    modules
}

/// The module a path of `module` names (`crate::a::b::Item`, `super::x`): the longest prefix of
/// its segments that is a module.
fn resolve(segments: &[&str], known: &BTreeMap<String, String>) -> Option<String> {
    (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| known.contains_key(m))
}

/// The modules `name` imports, from every `crate::` and `super::` path in its code (in `use`
/// lines and inline, braces included).
fn imports(name: &str, code: &str, known: &BTreeMap<String, String>) -> Vec<String> {
    let parent: Vec<&str> = name.split("::").collect();
    let parent = &parent[..parent.len().saturating_sub(1)];
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.to_vec())] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let paths: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap()].split(',').map(|p| p.trim().to_string()).collect(),
                None => vec![rest.to_string()],
            };
            for path in paths {
                let segments: Vec<&str> = path
                    .split("::")
                    .map(|s| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap())
                    .take_while(|s| !s.is_empty() && *s != "self")
                    .collect();
                let full: Vec<&str> = base.iter().copied().chain(segments).collect();
                let target = resolve(&full, known).unwrap_or_else(|| "lib".to_string());
                if target != name {
                    found.push(target);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("{module} is in no layer: add it to LAYERS here and to lib.rs's documentation"))
}

#[test]
fn modules_import_only_from_the_layers_below_them() {
    let modules = modules();
    let mut upward = Vec::new();
    for (name, code) in &modules {
        for target in imports(name, code, &modules) {
            if layer(&target) <= layer(name) {
                upward.push(format!("{name} imports {target}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not go down a layer (a cycle, a family importing another, or an upward import):\n{}",
        upward.join("\n")
    );
    // The command table is a leaf: it imports no family, only the core it names.
    assert_eq!(imports("cli", &modules["cli"], &modules), ["cmd", "config"]);
    // Every layer's module exists: the list here is the house as it is.
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(modules.contains_key(*module), "{module} is in LAYERS but not in xtask/src");
    }
}

#[test]
fn the_import_reader_sees_use_lines_groups_and_inline_paths() {
    let known: BTreeMap<String, String> =
        ["lib", "a", "b", "c", "r", "r::x", "r::y"].iter().map(|m| (m.to_string(), String::new())).collect();
    let code = "use crate::a::Thing;\nuse super::{x, y::Z};\nfn f() { crate::b::call(); not_crate::c::x(); }\n";
    assert_eq!(imports("r::z", code, &known), ["a", "b", "r::x", "r::y"]);
    assert_eq!(imports("a", "use crate::CONFIG;", &known), ["lib"]);
}

/// Each function of xtask/src and its length in lines, from its `fn` line to the closing brace
/// at its indentation.
fn function_lengths() -> Vec<(String, usize)> {
    let mut lengths = Vec::new();
    for entry in walkdir::WalkDir::new(src()).into_iter().map(Result::unwrap) {
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let starts = ["fn ", "pub fn ", "pub(crate) fn ", "extern \"C\" fn ", "pub const fn ", "const fn "];
            if !starts.iter().any(|s| trimmed.starts_with(s)) || trimmed.ends_with(';') {
                continue;
            }
            let indent = &line[..line.len() - trimmed.len()];
            let end = if trimmed.ends_with('}') {
                i
            } else {
                (i..lines.len()).find(|&j| lines[j] == format!("{indent}}}")).unwrap_or(lines.len() - 1)
            };
            let name = trimmed.split("fn ").nth(1).unwrap().split(['(', '<']).next().unwrap();
            lengths.push((format!("{}: {name}", entry.path().strip_prefix(src()).unwrap().display()), end - i + 1));
        }
    }
    lengths
}

#[test]
fn no_function_is_longer_than_80_lines() {
    let lengths = function_lengths();
    assert!(lengths.len() > 300, "the reader found only {} functions", lengths.len());
    let long: Vec<String> = lengths.iter().filter(|(_, n)| *n > 80).map(|(f, n)| format!("{f} ({n} lines)")).collect();
    assert!(long.is_empty(), "functions over 80 lines:\n{}", long.join("\n"));
}

/// Placeholders of documentation and hints, and the values a command line gets for them.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("ENV", "staging"),
    ("NAME", "staging"),
    ("{}", "staging"),
    ("TAG", "staging-0123456789ab"),
    ("RELEASE", "staging-0123456789ab"),
    ("COMMAND", "new"),
    ("ARGS", "x"),
    ("ARGS...", "x"),
    ("WHAT", "compile"),
];

/// The command line after each `cargo xtask` in `text`: the words up to a backtick or quote,
/// the end of the line, `...` (a template), a word opening a parenthesis or comment, or the word
/// that ends a clause (`,`, `;`, `)`, a final `.`), placeholders filled in.
fn command_lines(text: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for (at, _) in text.match_indices("cargo xtask") {
        let rest = &text[at + "cargo xtask".len()..];
        if !rest.is_empty() && !rest.starts_with([' ', '`', '"', '\'', '\n', ',', '.', ':', ';', ')', '\\']) {
            continue;
        }
        let end = rest.find(['`', '"', '\'', '\n', '\\']).unwrap_or(rest.len());
        let mut words = Vec::new();
        for word in rest[..end].split_whitespace() {
            if word == "..." || word.starts_with('(') || word.starts_with('#') || word.starts_with('[') {
                break;
            }
            let bare = word.trim_end_matches([',', ';', ')', ':']);
            let bare = if bare.ends_with('.') && !bare.ends_with("...") { &bare[..bare.len() - 1] } else { bare };
            let value = PLACEHOLDERS.iter().find(|(p, _)| *p == bare).map(|(_, v)| *v).unwrap_or(bare);
            words.push(value.to_string());
            if bare.len() != word.len() {
                break;
            }
        }
        lines.push(words);
    }
    lines
}

#[test]
fn the_command_line_reader_stops_where_prose_goes_on() {
    let text = "fix: `cargo xtask lock ENV status` shows it; cargo xtask up (or `cargo xtask new`), \
                cargo xtask test, then cargo xtask psql -- -c \"select\"\ncargo xtask ... style";
    let lines: Vec<String> = command_lines(text).iter().map(|l| l.join(" ")).collect();
    assert_eq!(lines, ["lock staging status", "up", "new", "test", "psql -- -c", ""]);
}

#[test]
fn every_cargo_xtask_line_in_the_repository_parses() {
    let sh = Shell::new().unwrap();
    let root = xtask::root().unwrap();
    sh.change_dir(&root);
    let files = cmd!(sh, "git ls-files").read().unwrap();
    let mut checked = 0;
    let mut bad = Vec::new();
    for file in files.lines() {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else { continue };
        for words in command_lines(&text) {
            checked += 1;
            let argv = std::iter::once("cargo xtask".to_string()).chain(words.iter().cloned());
            match xtask::cli::command().try_get_matches_from(argv) {
                Ok(_) => {}
                // A command named in prose, without its arguments (`cargo xtask deploy`), or the help.
                Err(err)
                    if matches!(
                        err.kind(),
                        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::MissingRequiredArgument
                    ) => {}
                Err(err) => {
                    let first = err.to_string().lines().next().unwrap_or_default().to_string();
                    bad.push(format!("{file}: `cargo xtask {}`: {first}", words.join(" ")));
                }
            }
        }
    }
    assert!(checked > 150, "only {checked} command lines found");
    assert!(bad.is_empty(), "command lines that do not parse:\n{}", bad.join("\n"));
}

/// A release's base images are named by the content of their inputs (`images.backend_inputs`,
/// `images.frontend_inputs`): those must be the Dockerfile and every file it copies, or a change
/// of one would ship under an old name.
#[test]
fn the_base_images_inputs_are_their_dockerfiles_and_what_they_copy() {
    let root = xtask::root().unwrap();
    let config = xtask::config::Config::load(&root.join(xtask::CONFIG)).unwrap();
    for (dir, inputs) in [
        (&config.paths.backend, &config.images.backend_inputs),
        (&config.paths.frontend, &config.images.frontend_inputs),
    ] {
        let dockerfile = std::fs::read_to_string(root.join(dir).join("Dockerfile")).unwrap();
        let mut copied: Vec<String> = vec!["Dockerfile".into()];
        for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
            let words: Vec<&str> = line.split_whitespace().skip(1).filter(|w| !w.starts_with("--")).collect();
            // The optional CA bundle (`cert[s]`) is this machine's, never an input of the commit.
            copied.extend(words[..words.len() - 1].iter().filter(|w| **w != "cert[s]").map(|w| w.to_string()));
        }
        let (mut copied, mut inputs) = (copied, inputs.clone());
        copied.sort();
        inputs.sort();
        assert_eq!(copied, inputs, "{}/Dockerfile copies other files than the configuration names", dir.display());
    }
}
