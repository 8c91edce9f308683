//! The server's modules form layers (ADR 0007, `server/src/lib.rs`): web → app → backend →
//! storage → sqlite | pg, with the plain records (`model`), limits, scope and statistics
//! beside them. A module that imports one above it (a cycle) is how a restructuring quietly
//! comes undone, so this test reads every `crate::…` path in the library's sources (comments
//! and test modules left out) and fails on any cycle between top-level modules. It also keeps
//! every source file short enough to read as one concern (ADR 0007).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("server/src is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`web/sync.rs` → `web`), or `None` for the crate
/// root and the binary's own files.
fn top_module(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main" | "cli")).then_some(name)
}

/// The top-level modules named by `crate::NAME` paths in `code`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The module graph: for each top-level module, the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(&root, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is UTF-8");
        // Test modules may reach anywhere; so may doc comments.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(imports(&code).into_iter().filter(|d| *d != module));
    }
    graph
}

/// A path of imports from `from` back to `to`, if there is one.
fn path_back(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_owned()]];
    while let Some(path) = stack.pop() {
        let last = path.last().cloned().unwrap_or_default();
        if last == to {
            return Some(path);
        }
        for next in graph.get(&last).into_iter().flatten() {
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push(p);
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_among_the_servers_modules() {
    let graph = graph();
    assert!(
        graph.contains_key("backend") && graph.contains_key("web"),
        "the module graph was read: {graph:?}"
    );
    let mut cycles = Vec::new();
    for (module, deps) in &graph {
        for dep in deps {
            if let Some(back) = path_back(&graph, dep, module) {
                cycles.push(format!("{module} → {}", back.join(" → ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

/// The longest a library or binary source file may grow, test modules aside, before it should
/// become a folder (issue #11: one concern per file).
const MAX_LINES: usize = 800;

#[test]
fn no_source_file_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 20, "the sources were read: {files:?}");
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("a source file is UTF-8");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let n = code.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(path_back(&graph, "b", "a"), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        path_back(&graph, "b", "a"),
        Some(vec!["b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        imports("use crate::storage::{Storage};\nlet x = crate::limits::MAX;"),
        ["limits".to_owned(), "storage".to_owned()].into()
    );
}
