//! Documentation that must follow the tree: every script in hack/ is described in hack/README.md.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Scripts under `dir`, as paths relative to it (`quickstart.sh`, `helm/build.sh`).
fn scripts(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read hack/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "sh" || e == "py") {
                let relative = path.strip_prefix(dir).expect("under hack/");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn hack_readme_describes_every_script() {
    let readme = read("hack/README.md");
    let described: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .map(|cell| cell.split_whitespace().next().unwrap_or_default())
        .collect();
    let all = scripts(&root().join("hack"));
    assert!(all.len() >= 10, "found only {all:?}");
    for script in &all {
        assert!(
            described.contains(&script.as_str()),
            "hack/README.md has no row for hack/{script}"
        );
    }
}
