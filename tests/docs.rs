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

/// Files outside a provider's folder that its code may name: the list of docs/adding-a-provider.md
/// (with `<name>` for the provider). Test code may name any provider (e.g. "another provider's
/// operation is refused"), so test files are not checked.
fn adding_a_provider_files(name: &str) -> Vec<String> {
    let doc = read("docs/adding-a-provider.md");
    doc.split("**`")
        .skip(1)
        .filter_map(|rest| rest.split("`**").next())
        .map(|path| path.replace("<name>", name))
        .collect()
}

/// Source files (not tests) under `dir` whose code names the provider `type_name` (`Onezone`).
fn files_naming(dir: &str, type_name: &str) -> Vec<String> {
    let module = type_name.to_lowercase();
    let patterns = [
        format!("::{type_name}"),
        format!("{module}::"),
        format!("{type_name}Provider"),
        format!("{type_name}Credentials"),
        format!("{type_name}Client"),
    ];
    let mut found = vec![];
    let mut stack = vec![root().join(dir)];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let relative = path
                .strip_prefix(root())
                .expect("in repo")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if relative.ends_with(".rs") && !relative.ends_with("tests.rs") && !relative.contains("/tests/") {
                let code = std::fs::read_to_string(&path).expect("source");
                let code = code.split("#[cfg(test)]").next().unwrap_or_default();
                if patterns.iter().any(|p| code.contains(p.as_str())) {
                    found.push(relative);
                }
            }
        }
    }
    found
}

#[test]
fn adding_a_provider_lists_every_file_a_provider_touches() {
    for type_name in ["Atlas", "Infisical", "Onezone"] {
        let name = type_name.to_lowercase();
        let listed = adding_a_provider_files(&name);
        let folder = format!("src/providers/{name}/");
        assert!(listed.contains(&folder), "docs/adding-a-provider.md lacks {folder}");
        for dir in ["src", "simulator/src"] {
            for file in files_naming(dir, type_name) {
                let in_folder = file.starts_with(&folder);
                assert!(
                    in_folder || listed.contains(&file),
                    "{file} names the {name} provider but docs/adding-a-provider.md does not list it"
                );
            }
        }
        for file in &listed {
            assert!(
                root().join(file).exists(),
                "docs/adding-a-provider.md lists {file}, which does not exist"
            );
        }
    }
}

/// The Argo CD health checks: one `health.lua` per kind, the same script for every revocation kind
/// and for both provider kinds, and `argocd-cm-patch.yaml` holding each one verbatim.
#[test]
fn argocd_health_checks_are_one_script_per_kind_and_the_patch_holds_them() {
    let revocations = ["JwksRevocation", "AuthMethodRevocation", "TokenRevocation"];
    let providers = ["RevocationProvider", "ClusterRevocationProvider"];
    let script = |kind: &str| read(&format!("deploy/argocd/revoker.dev/{kind}/health.lua"));
    for group in [&revocations[..], &providers[..]] {
        for kind in group {
            assert_eq!(
                script(kind),
                script(group[0]),
                "{kind}'s health.lua differs from {}'s",
                group[0]
            );
        }
    }
    let patch: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/argocd/argocd-cm-patch.yaml")).expect("argocd-cm-patch.yaml is YAML");
    for kind in revocations.iter().chain(&providers) {
        let key = format!("resource.customizations.health.revoker.dev_{kind}");
        assert_eq!(
            patch["data"][key.as_str()].as_str(),
            Some(script(kind).as_str()),
            "argocd-cm-patch.yaml's {key} is not deploy/argocd/revoker.dev/{kind}/health.lua"
        );
    }
}
