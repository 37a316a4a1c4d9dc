//! The contract files in `docs/provider-specs/` are the providers' official contracts, unmodified:
//! this test compares them byte for byte with the reference copy that CI checks out beside the
//! clone (see `reference()`; `REVOKER_CONTRACT_SPECS` overrides where). Outside CI a missing
//! reference copy is reported and the comparison skipped; under `CI=true` it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn ours() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/provider-specs")
}

fn reference() -> PathBuf {
    std::env::var_os("REVOKER_CONTRACT_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contract-specs"))
}

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

#[test]
fn provider_specs_are_the_official_contracts() {
    let reference = reference();
    if !reference.is_dir() {
        assert!(
            !in_ci(),
            "the official contracts are missing at {} (CI=true): they must be checked out beside the repository",
            reference.display()
        );
        eprintln!(
            "NOTICE: provider_specs_are_the_official_contracts skipped: no official contracts at {} \
             (set REVOKER_CONTRACT_SPECS); this test fails under CI=true",
            reference.display()
        );
        return;
    }
    let official = yaml_files(&reference);
    let copied = yaml_files(&ours());
    assert!(!official.is_empty(), "no contract file in {}", reference.display());
    assert_eq!(
        copied, official,
        "docs/provider-specs/ must hold exactly the official contract files"
    );
    for name in &official {
        let want = std::fs::read(reference.join(name)).expect("read official contract");
        let have = std::fs::read(ours().join(name)).expect("read docs/provider-specs copy");
        assert!(
            want == have,
            "docs/provider-specs/{name} differs from the official {}: copy it again (cp {} docs/provider-specs/)",
            reference.join(name).display(),
            reference.join(name).display()
        );
    }
}

#[test]
fn every_contract_file_is_a_parseable_openapi_document() {
    for name in yaml_files(&ours()) {
        let text = std::fs::read_to_string(ours().join(&name)).expect("read contract");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
        let version = doc
            .get("openapi")
            .or_else(|| doc.get("swagger"))
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        assert!(
            version.starts_with("3.0") || version == "2.0",
            "{name}: expected an OpenAPI 3.0 or Swagger 2.0 document, found version {version:?}"
        );
        let paths = doc.get("paths").and_then(|p| p.as_mapping()).map(|p| p.len());
        assert!(paths.unwrap_or(0) > 0, "{name} documents no path");
    }
}

#[test]
fn the_readme_names_only_documented_operations() {
    let readme = std::fs::read_to_string(ours().join("README.md")).expect("read README");
    let mut documented = BTreeSet::new();
    for name in yaml_files(&ours()) {
        let text = std::fs::read_to_string(ours().join(&name)).expect("read contract");
        for line in text.lines() {
            if let Some(id) = line.trim().strip_prefix("operationId:") {
                documented.insert(id.trim().to_string());
            }
        }
    }
    // Operation names in the README's call table are the backticked first words of its rows.
    let named: Vec<&str> = readme
        .lines()
        .filter(|line| {
            line.starts_with("| Atlas |") || line.starts_with("| Infisical |") || line.starts_with("| Onezone |")
        })
        .filter_map(|line| line.split('|').nth(2))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .collect();
    assert!(!named.is_empty(), "the README's call table names no operation");
    for name in named {
        assert!(
            documented.contains(name),
            "README names operation {name:?}, which no contract file documents"
        );
    }
}
