//! `crds/` must be exactly what `revoker crd` prints (regenerate with
//! `cargo run -q -- crd > crds/revoker.dev.yaml`).

#[test]
fn crds_directory_matches_revoker_crd_output() {
    let generated = revoker::api::crds_yaml().expect("serialize CRDs");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/revoker.dev.yaml"))
        .expect("crds/revoker.dev.yaml exists");
    assert!(
        generated == committed,
        "crds/revoker.dev.yaml is stale: run `cargo run -q -- crd > crds/revoker.dev.yaml`"
    );
}

#[test]
fn every_schema_property_has_a_description() {
    let mut missing = Vec::new();
    for crd in revoker::api::all_crds() {
        let value = serde_json::to_value(&crd).expect("CRD to JSON");
        let schema = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        walk(&crd.spec.names.kind, schema, "", &mut missing);
    }
    assert!(
        missing.is_empty(),
        "properties without a description (kubectl explain would be empty): {missing:#?}"
    );
}

fn walk(kind: &str, schema: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
        if let Some(items) = schema.get("items") {
            walk(kind, items, &format!("{path}[]"), missing);
        }
        return;
    };
    for (name, prop) in props {
        let here = format!("{path}.{name}");
        // apiVersion/kind/metadata come from Kubernetes itself; metav1.Condition fields are upstream's.
        let upstream = path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
        if !upstream && prop.get("description").is_none() {
            missing.push(format!("{kind}{here}"));
        }
        walk(kind, prop, &here, missing);
    }
}
