//! The workspace's structure rules (issue 19), checked on every test run: no two modules that
//! import each other, and no source file of the perllm crates over 1,000 lines.

use perllm_tests::workspace_root;
use std::path::{Path, PathBuf};

#[test]
fn no_two_modules_import_each_other() {
    let root = workspace_root();
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/import-cycles.py"))
        .current_dir(&root)
        .output()
        .expect("python3 runs scripts/import-cycles.py");
    // The script lists the pairs on stdout and its count on stderr.
    let (pairs, count) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && count.starts_with("0 pair(s) of files that import each other"),
        "scripts/import-cycles.py found modules that import each other ({}):\n{pairs}{count}",
        out.status
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            // Not build output or hidden folders.
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_source_file_is_over_1000_lines() {
    let root = workspace_root();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("perllm-") && e.path().is_dir() {
            rust_files(&e.path(), &mut files);
        }
    }
    assert!(files.len() > 100, "only {} files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 1000).then(|| format!("{} ({n} lines)", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}
