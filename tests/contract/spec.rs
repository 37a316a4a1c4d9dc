//! Reads what a contract file (OpenAPI 3.0 or Swagger 2.0) says about one operation: its
//! template, the query parameters it declares, the media types it answers with and accepts, and
//! the security schemes it allows. Prism checks most of a request; these are the parts it skips.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml::Value;

pub struct Contract {
    doc: Value,
    base_path: String,
}

/// One security scheme an operation allows, as a request would present it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Basic,
    Digest,
    ApiKeyHeader(String),
}

#[derive(Clone, Debug)]
pub struct OperationSpec {
    pub label: String,
    pub query: BTreeSet<String>,
    pub produces: BTreeSet<String>,
    pub consumes: BTreeSet<String>,
    /// Alternatives; empty means the operation takes no credentials.
    pub schemes: Vec<Scheme>,
    /// The response statuses the contract lists (`default` included).
    pub statuses: BTreeSet<String>,
}

impl OperationSpec {
    pub fn documents_status(&self, status: u16) -> bool {
        self.statuses.contains("default") || self.statuses.contains(&status.to_string())
    }
}

impl Contract {
    pub fn load(dir: &Path, file: &str) -> Self {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
        let doc: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {file}: {e}"));
        let base_path = match doc.get("basePath").and_then(Value::as_str) {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => server_path(&doc),
        };
        Contract { doc, base_path }
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    fn swagger2(&self) -> bool {
        self.doc.get("swagger").is_some()
    }

    /// Follow a local `$ref` (`#/a/b/c`), once per level.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        let mut current = value;
        for _ in 0..8 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return current;
            };
            let mut target = &self.doc;
            for part in reference.trim_start_matches("#/").split('/') {
                target = target.get(part).unwrap_or(&Value::Null);
            }
            current = target;
        }
        current
    }

    /// The documented operation for `method` on the request path `path` (query excluded).
    pub fn operation(&self, method: &str, path: &str) -> Option<OperationSpec> {
        let rest = path.strip_prefix(&self.base_path)?;
        let method = method.to_ascii_lowercase();
        let paths = self.doc.get("paths")?.as_mapping()?;
        let (template, item) = paths
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
            .filter(|(template, _)| template_matches(template, rest))
            .max_by_key(|(template, _)| literal_segments(template))?;
        let op = item.get(method.as_str())?;
        let label = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {template}", method.to_ascii_uppercase()));
        Some(OperationSpec {
            label,
            query: self.query_parameters(item, op),
            produces: self.produces(op),
            consumes: self.consumes(op),
            schemes: self.schemes(op),
            statuses: op
                .get("responses")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(code, _)| match code {
                    Value::Number(n) => Some(n.to_string()),
                    other => other.as_str().map(str::to_string),
                })
                .collect(),
        })
    }

    fn query_parameters(&self, item: &Value, op: &Value) -> BTreeSet<String> {
        [item.get("parameters"), op.get("parameters")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_sequence)
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    fn produces(&self, op: &Value) -> BTreeSet<String> {
        if self.swagger2() {
            return strings(op.get("produces").or_else(|| self.doc.get("produces")));
        }
        op.get("responses")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(_, response)| self.resolve(response).get("content")?.as_mapping())
            .flatten()
            .filter_map(|(media, _)| media.as_str().map(str::to_string))
            .collect()
    }

    fn consumes(&self, op: &Value) -> BTreeSet<String> {
        if self.swagger2() {
            return strings(op.get("consumes").or_else(|| self.doc.get("consumes")));
        }
        op.get("requestBody")
            .map(|body| self.resolve(body))
            .and_then(|body| body.get("content")?.as_mapping())
            .into_iter()
            .flatten()
            .filter_map(|(media, _)| media.as_str().map(str::to_string))
            .collect()
    }

    fn schemes(&self, op: &Value) -> Vec<Scheme> {
        let requirements = op.get("security").or_else(|| self.doc.get("security"));
        let definitions = if self.swagger2() {
            self.doc.get("securityDefinitions")
        } else {
            self.doc.get("components").and_then(|c| c.get("securitySchemes"))
        };
        requirements
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_mapping)
            .flat_map(|requirement| requirement.keys())
            .filter_map(|name| definitions?.get(name.as_str()?))
            .filter_map(scheme)
            .collect()
    }
}

fn scheme(definition: &Value) -> Option<Scheme> {
    let field = |key: &str| definition.get(key).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "http" => match field("scheme").to_ascii_lowercase().as_str() {
            "bearer" => Some(Scheme::Bearer),
            "basic" => Some(Scheme::Basic),
            "digest" => Some(Scheme::Digest),
            _ => None,
        },
        "oauth2" => Some(Scheme::Bearer),
        "basic" => Some(Scheme::Basic),
        "apiKey" if field("in") == "header" => Some(Scheme::ApiKeyHeader(field("name").to_ascii_lowercase())),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn server_path(doc: &Value) -> String {
    let url = doc
        .get("servers")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    without_scheme
        .find('/')
        .map(|i| without_scheme[i..].trim_end_matches('/').to_string())
        .unwrap_or_default()
}

fn template_matches(template: &str, path: &str) -> bool {
    let want: Vec<&str> = template.trim_matches('/').split('/').collect();
    let have: Vec<&str> = path.trim_matches('/').split('/').collect();
    want.len() == have.len()
        && want
            .iter()
            .zip(&have)
            .all(|(w, h)| (w.starts_with('{') && w.ends_with('}') && !h.is_empty()) || w == h)
}

fn literal_segments(template: &str) -> usize {
    template.split('/').filter(|s| !s.starts_with('{')).count()
}
