//! The layers of `src/` (the module map in lib.rs) hold: no module imports from a
//! layer below its own, and no two files of one directory import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module's layer, as in lib.rs; a module may import from its own
/// layer and lower numbers only.
const LAYERS: &[(&str, u32)] = &[
    ("error", 1),
    ("memory", 1),
    ("model", 1),
    ("storage", 2),
    ("walk", 3),
    ("shape", 3),
    ("output", 3),
    ("decimal", 3),
    ("runs", 3),
    ("shared", 3),
    ("sizing", 3),
    ("plans", 3),
    ("rollup", 4),
    ("functions", 4),
    ("engine", 4),
    ("ingest", 4),
    ("sample", 4),
    ("export", 4),
    ("bench", 4),
    ("years", 4),
    ("report", 5),
    ("cluster", 6),
    ("server", 6),
    ("cli", 7),
];

/// What the crate root re-exports, by the module it comes from.
const ROOT_EXPORTS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("Engine", "engine"),
    ("AsOf", "storage"),
    ("Warehouse", "storage"),
    ("WriteMode", "storage"),
];

/// The names a `crate::` / `super::` path starts with in `text`, by line, including
/// those inside `{…}` groups.
fn paths_after(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for name in group[..end].split(',') {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((n + 1, name));
            }
        }
    }
    found
}

/// The source without its unit tests (which may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

fn rust_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        // The crate root, the binary and the build script are not modules.
        if module == "lib" || module == "main" || module == "build" {
            continue;
        }
        let Some(&own) = layers.get(module.as_str()) else {
            panic!("src/{module} has no layer: add it to lib.rs's module map and to LAYERS");
        };
        modules.insert(module.clone());
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name) in paths_after(without_tests(&text), "crate::") {
            let target = ROOT_EXPORTS
                .iter()
                .find(|(export, _)| *export == name)
                .map(|(_, module)| module.to_string())
                .unwrap_or(name);
            if let Some(&theirs) = layers.get(target.as_str()) {
                if theirs > own {
                    upward.push(format!(
                        "{}:{line}: {module} (layer {own}) imports {target} (layer {theirs})",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer:\n{}",
        upward.join("\n")
    );
    assert!(
        modules.len() >= 15,
        "the scan found the modules: {modules:?}"
    );
}

#[test]
fn no_two_files_of_a_directory_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut cycles = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let Some(stem) = file.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            if file.extension().is_none_or(|e| e != "rs") || stem == "mod" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let names = paths_after(without_tests(&text), "super::");
            imports.insert(stem, names.into_iter().map(|(_, name)| name).collect());
        }
        for (a, theirs) in &imports {
            for b in theirs {
                if a < b && imports.get(b).is_some_and(|back| back.contains(a)) {
                    cycles.push(format!("{}: {a} <-> {b}", dir.display()));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files importing each other:\n{}",
        cycles.join("\n")
    );
}
