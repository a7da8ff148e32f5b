//! Per-node config templates, rendered with minijinja (Jinja2 syntax).
//!
//! A template sees `cluster.name`, `node` (the node it is rendered for) and `nodes` (every node),
//! each node as `{ name, index, number, address, roles, workdir, added }`, plus `env` (the node's environment) and `params` (the test case's matrix values).
//! Undefined variables are errors, so a typo fails provisioning instead of writing an empty value.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// What one node looks like to a template.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateNode {
    /// Node name (its DNS name on the cluster network).
    pub name: String,
    /// Zero-based index in the spec.
    pub index: usize,
    /// One-based index, handy for ids that must not be zero.
    pub number: usize,
    /// The node's address as other nodes reach it.
    pub address: String,
    /// The node's roles.
    pub roles: Vec<String>,
    /// The cluster's working directory on the node (data dirs go here).
    pub workdir: String,
    /// Whether the node joined the running cluster (`Cluster::add_node`, `cluster-sim
    /// add-node`) rather than starting with it: a template says `initial-cluster-state:
    /// existing` for such a node.
    pub added: bool,
}

/// Everything a template can see.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    /// `{ name }` of the running cluster.
    pub cluster: BTreeMap<String, String>,
    /// The node being rendered.
    pub node: TemplateNode,
    /// All nodes, in spec order.
    pub nodes: Vec<TemplateNode>,
    /// The node's environment.
    pub env: BTreeMap<String, String>,
    /// The test case's parameters (a matrix combination: `params.snapshot_count`); empty
    /// for a test without a matrix.
    pub params: BTreeMap<String, serde_json::Value>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
}

fn describe(e: &minijinja::Error, path: &Path) -> String {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    format!("{}{}: {}{}", path.display(), line, e.kind(), detail)
}

/// Checks a template's syntax without rendering it; the message names file and line.
pub fn check(text: &str, path: &Path) -> Result<(), String> {
    let env = environment();
    env.template_from_str(text)
        .map(|_| ())
        .map_err(|e| describe(&e, path))
}

/// Renders a template for one node; the error names the template's file and line, and for an
/// undefined value the variable (or, inside a loop, the line that uses it).
pub fn render(text: &str, path: &Path, ctx: &TemplateContext) -> Result<String, String> {
    let env = environment();
    let tmpl = env
        .template_from_str(text)
        .map_err(|e| describe(&e, path))?;
    tmpl.render(ctx).map_err(|e| {
        if e.kind() != minijinja::ErrorKind::UndefinedError {
            return describe(&e, path);
        }
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        let known = serde_json::to_value(ctx).unwrap_or_default();
        let mut missing: Vec<String> = tmpl
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !resolves(&known, v))
            .collect();
        missing.sort();
        let what = match missing.as_slice() {
            [] => {
                // A loop variable's attribute (`n.adress`): quote the line that uses it.
                let src = e
                    .line()
                    .and_then(|l| text.lines().nth(l.saturating_sub(1)))
                    .map(|l| format!(" in `{}`", l.trim()))
                    .unwrap_or_default();
                format!("undefined variable{src}")
            }
            [one] => format!("undefined variable `{one}`"),
            many => format!(
                "undefined variables {}",
                many.iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "{}{line}: {what} (a template sees cluster.name, node and nodes with name, index, number, address, roles, workdir, added, and env)",
            path.display()
        )
    })
}

/// Whether a dotted path (`node.name`) names something in the context.
fn resolves(ctx: &serde_json::Value, path: &str) -> bool {
    let mut v = ctx;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        let nodes: Vec<_> = (0..3)
            .map(|i| TemplateNode {
                name: format!("n{}", i + 1),
                index: i,
                number: i + 1,
                address: format!("10.0.0.{}", i + 2),
                roles: vec![],
                workdir: "/w".into(),
                added: false,
            })
            .collect();
        TemplateContext {
            cluster: BTreeMap::from([("name".into(), "demo".into())]),
            node: nodes[1].clone(),
            nodes,
            env: BTreeMap::new(),
            params: BTreeMap::from([("snapshot_count".into(), serde_json::json!(100))]),
        }
    }

    #[test]
    fn renders_params() {
        let out = render(
            "snap={{ params.snapshot_count }}",
            Path::new("p.tmpl"),
            &ctx(),
        )
        .unwrap();
        assert_eq!(out, "snap=100");
    }

    #[test]
    fn renders_initial_cluster_line() {
        let t = "name: {{ node.name }}\ninitial-cluster: {% for n in nodes %}{{ n.name }}=http://{{ n.address }}:2380{% if not loop.last %},{% endif %}{% endfor %}\ntoken: {{ cluster.name }}\n";
        let out = render(t, Path::new("e.tmpl"), &ctx()).unwrap();
        assert_eq!(
            out,
            "name: n2\ninitial-cluster: n1=http://10.0.0.2:2380,n2=http://10.0.0.3:2380,n3=http://10.0.0.4:2380\ntoken: demo\n"
        );
    }

    #[test]
    fn undefined_and_syntax_errors_name_file_and_line() {
        let e = render("a\n{{ node.nmae }}\n", Path::new("e.tmpl"), &ctx()).unwrap_err();
        assert!(
            e.starts_with("e.tmpl:2: undefined variable `node.nmae`"),
            "{e}"
        );
        let e = render(
            "{% for n in nodes %}\n{{ n.adress }}\n{% endfor %}",
            Path::new("e.tmpl"),
            &ctx(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("e.tmpl:2: undefined variable in `{{ n.adress }}`"),
            "{e}"
        );
        let e = check("a\n{% for %}\n", Path::new("e.tmpl")).unwrap_err();
        assert!(e.starts_with("e.tmpl:2: syntax error"), "{e}");
    }
}
