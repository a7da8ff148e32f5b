//! The JUnit schema the harness's reports must satisfy, checked without xmllint.
//!
//! `junit-10.xsd` (beside this crate's manifest) is the schema Jenkins' xUnit plugin validates
//! against; `.ci/run` checks reports with `xmllint --schema` against it. The tests of the
//! workspace call [`validate`] instead, which encodes the same rules in Rust, so that
//! `cargo test` on a fresh machine checks exactly as much as CI does without an outside tool.
//! [`validate_file`] also runs xmllint when it is installed, so a divergence between the two
//! shows up wherever both exist; this crate's own tests compare them on valid and invalid
//! documents.
//!
//! The rules, element by element (an XSD allows any global element as the root; attributes not
//! declared are errors; elements of simple or empty type hold no child elements):
//! - `testsuites`: children `testsuite`*; attributes `name`, `time` (SUREFIRE_TIME), `tests`,
//!   `failures`, `errors`.
//! - `testsuite`: children any of `testsuite`, `properties`, `testcase`, `system-out`,
//!   `system-err`; required `name`, `tests`, `failures`, `errors`; optional `group`, `time`
//!   (SUREFIRE_TIME), `skipped`, `timestamp`, `hostname`, `id`, `package`, `file`, `log`, `url`.
//! - `properties`: children `property`*; `property`: required `name`, `value`, empty.
//! - `testcase`: children any of `skipped`, `error`, `failure`, `rerunFailure`, `rerunError`,
//!   `flakyFailure`, `flakyError`, `system-out`, `system-err`; required `name`; optional
//!   `time`, `classname`, `group`.
//! - `failure`, `error`, `skipped`: text only; optional `type`, `message`.
//! - `rerunFailure`, `rerunError`, `flakyFailure`, `flakyError`: text, then in this order at
//!   most one each of `stackTrace`, `system-out`, `system-err`; required `type`, optional
//!   `message`.
//! - `system-out`, `system-err`, `stackTrace`: text only, no attributes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The schema file, `junit-10.xsd`, kept in this crate.
pub fn xsd_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("junit-10.xsd")
}

/// Checks `xml` against the rules of `junit-10.xsd`; every violation is one line naming the
/// element (with its line in the document) and what is wrong.
pub fn validate(xml: &str) -> Result<(), Vec<String>> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| vec![format!("not XML: {e}")])?;
    let mut errors = Vec::new();
    let root = doc.root_element();
    if rule(root.tag_name().name()).is_none() {
        errors.push(format!(
            "line 1: <{}> is not an element of the schema",
            root.tag_name().name()
        ));
    } else {
        check(&doc, root, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Reads and validates the report at `path` (see [`validate`]); where xmllint is installed it
/// also has to agree. The error is one message naming the file and each violation.
pub fn validate_file(path: &Path) -> Result<(), String> {
    let xml =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    validate(&xml).map_err(|errs| {
        format!(
            "{} does not satisfy junit-10.xsd:\n  {}",
            path.display(),
            errs.join("\n  ")
        )
    })?;
    if let Some(xmllint) = xmllint() {
        let out = Command::new(xmllint)
            .args(["--noout", "--schema"])
            .arg(xsd_path())
            .arg(path)
            .output()
            .map_err(|e| format!("running xmllint: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{} passes the Rust rules but not xmllint (the rules in junit-schema are out of \
                 step with junit-10.xsd): {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The xmllint on PATH, if any (`XMLLINT` names another one).
pub fn xmllint() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let candidate =
                std::env::var_os("XMLLINT").map_or_else(|| "xmllint".into(), PathBuf::from);
            Command::new(&candidate)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
                .then_some(candidate)
        })
        .clone()
}

/// What the schema says of one element.
struct Rule {
    required: &'static [&'static str],
    optional: &'static [&'static str],
    content: Content,
}

enum Content {
    /// Child elements from the set, in any order and number; no text but whitespace.
    AnyOf(&'static [&'static str]),
    /// Text only.
    Text,
    /// No children and no text.
    Empty,
    /// Text, then at most one each of these, in this order (the rerun type).
    MixedSequence(&'static [&'static str]),
}

const TIME_ATTRS: &[&str] = &["time"];
const RERUN: Rule = Rule {
    required: &["type"],
    optional: &["message"],
    content: Content::MixedSequence(&["stackTrace", "system-out", "system-err"]),
};
const OUTCOME: Rule = Rule {
    required: &[],
    optional: &["type", "message"],
    content: Content::Text,
};
const STRING: Rule = Rule {
    required: &[],
    optional: &[],
    content: Content::Text,
};

fn rule(name: &str) -> Option<Rule> {
    Some(match name {
        "testsuites" => Rule {
            required: &[],
            optional: &["name", "time", "tests", "failures", "errors"],
            content: Content::AnyOf(&["testsuite"]),
        },
        "testsuite" => Rule {
            required: &["name", "tests", "failures", "errors"],
            optional: &[
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
            ],
            content: Content::AnyOf(&[
                "testsuite",
                "properties",
                "testcase",
                "system-out",
                "system-err",
            ]),
        },
        "properties" => Rule {
            required: &[],
            optional: &[],
            content: Content::AnyOf(&["property"]),
        },
        "property" => Rule {
            required: &["name", "value"],
            optional: &[],
            content: Content::Empty,
        },
        "testcase" => Rule {
            required: &["name"],
            optional: &["time", "classname", "group"],
            content: Content::AnyOf(&[
                "skipped",
                "error",
                "failure",
                "rerunFailure",
                "rerunError",
                "flakyFailure",
                "flakyError",
                "system-out",
                "system-err",
            ]),
        },
        "failure" | "error" | "skipped" => OUTCOME,
        "rerunFailure" | "rerunError" | "flakyFailure" | "flakyError" => RERUN,
        "system-out" | "system-err" | "stackTrace" => STRING,
        _ => return None,
    })
}

/// SUREFIRE_TIME, anchored as XSD patterns are.
fn surefire_time(value: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(?:(?:(?:[0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(?:\.[0-9]*)?)$")
            .expect("a valid pattern")
    })
    .is_match(value)
}

fn check(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>, errors: &mut Vec<String>) {
    let name = node.tag_name().name();
    let line = doc.text_pos_at(node.range().start).row;
    let at = |what: String| format!("line {line}: <{name}> {what}");
    let Some(rule) = rule(name) else {
        errors.push(at("is not an element of the schema".into()));
        return;
    };
    for attr in node.attributes() {
        let a = attr.name();
        if attr.namespace().is_some() || !(rule.required.contains(&a) || rule.optional.contains(&a))
        {
            errors.push(at(format!(
                "has attribute `{a}`, which the schema does not declare"
            )));
        } else if TIME_ATTRS.contains(&a)
            && matches!(name, "testsuite" | "testsuites")
            && !surefire_time(attr.value())
        {
            errors.push(at(format!(
                "has time=\"{}\", not a SUREFIRE_TIME",
                attr.value()
            )));
        }
    }
    for required in rule.required {
        if node.attribute(*required).is_none() {
            errors.push(at(format!("lacks the required attribute `{required}`")));
        }
    }
    let children: Vec<_> = node.children().filter(|c| c.is_element()).collect();
    let has_text = node
        .children()
        .any(|c| c.is_text() && !c.text().unwrap_or("").trim().is_empty());
    match rule.content {
        Content::AnyOf(allowed) => {
            if has_text {
                errors.push(at("holds text; only child elements are allowed".into()));
            }
            for child in &children {
                let c = child.tag_name().name();
                if allowed.contains(&c) {
                    check(doc, *child, errors);
                } else {
                    errors.push(at(format!("may not contain <{c}>")));
                }
            }
        }
        Content::Text => {
            if let Some(child) = children.first() {
                errors.push(at(format!(
                    "holds text only, not <{}>",
                    child.tag_name().name()
                )));
            }
        }
        Content::Empty => {
            if has_text || !children.is_empty() {
                errors.push(at("must be empty".into()));
            }
        }
        Content::MixedSequence(order) => {
            let mut next = 0;
            for child in &children {
                let c = child.tag_name().name();
                match order[next..].iter().position(|o| *o == c) {
                    Some(i) => {
                        next += i + 1;
                        check(doc, *child, errors);
                    }
                    None => errors.push(at(format!(
                        "may contain {} (at most once each, in that order), not <{c}> here",
                        order.join(", ")
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cluster-sim" tests="2" failures="1" errors="0" time="1.5">
  <testsuite name="etcd" tests="2" failures="1" errors="0" skipped="0" time="1,234.5" timestamp="2026-12-05T00:00:00Z">
    <properties>
      <property name="run.id" value="r1"/>
    </properties>
    <testcase name="etcd::members::three" classname="etcd.members" time="0.5">
      <failure type="assertion" message="boom">detail
[[ATTACHMENT|runs/r1/test.log]]</failure>
      <flakyFailure type="exec" message="attempt 1"><stackTrace>at f.rs:1</stackTrace><system-out>log</system-out></flakyFailure>
      <system-out>out</system-out>
    </testcase>
    <testcase name="etcd::members::skipped"><skipped message="why"/></testcase>
    <system-err>err</system-err>
  </testsuite>
</testsuites>
"#;

    fn invalid() -> Vec<(&'static str, String)> {
        let swap = |from: &str, to: &str| VALID.replacen(from, to, 1);
        vec![
            ("unknown root", "<report/>".to_string()),
            (
                "suite without name",
                swap(r#"<testsuite name="etcd" "#, "<testsuite "),
            ),
            (
                "undeclared attribute",
                swap("<testcase name=", "<testcase colour=\"red\" name="),
            ),
            (
                "bad suite time",
                swap(r#"time="1,234.5""#, r#"time="1.2s""#),
            ),
            (
                "case in properties",
                swap("<property name=", "<testcase name=\"x\"/><property name="),
            ),
            ("text in a suite", swap("<properties>", "stray<properties>")),
            ("element in failure", swap("detail", "<b>detail</b>")),
            (
                "rerun without type",
                swap(r#"<flakyFailure type="exec" "#, "<flakyFailure "),
            ),
            (
                "rerun children out of order",
                swap(
                    "<stackTrace>at f.rs:1</stackTrace><system-out>log</system-out>",
                    "<system-out>log</system-out><stackTrace>at f.rs:1</stackTrace>",
                ),
            ),
            (
                "text in property",
                swap(
                    r#"<property name="run.id" value="r1"/>"#,
                    r#"<property name="run.id" value="r1">x</property>"#,
                ),
            ),
            (
                "case without name",
                swap("<testcase name=\"etcd::members::skipped\">", "<testcase>"),
            ),
        ]
    }

    #[test]
    fn a_report_of_every_element_is_valid() {
        assert_eq!(validate(VALID), Ok(()));
    }

    #[test]
    fn each_broken_rule_is_named_with_its_line() {
        for (what, xml) in invalid() {
            let errs = validate(&xml).expect_err(what);
            assert!(
                errs.iter()
                    .all(|e| e.starts_with("line ") || e.starts_with("not XML")),
                "{what}: {errs:?}"
            );
        }
    }

    #[test]
    fn surefire_times() {
        for ok in ["", "0", "1.5", "123", "1,234", "1,234.567", ".5"] {
            assert!(surefire_time(ok), "{ok}");
        }
        for bad in ["1.2s", "-1", "1e3", "1,23"] {
            assert!(!surefire_time(bad), "{bad}");
        }
    }

    /// The Rust rules and xmllint agree on every sample. Where xmllint is missing the build
    /// script marks this ignored (counted in the summary); under `CI=true` it runs and fails.
    #[test]
    #[cfg_attr(
        missing_xmllint,
        ignore = "xmllint is not installed: sudo apt-get install libxml2-utils (.ci/run does)"
    )]
    fn the_rules_agree_with_xmllint() {
        let xmllint = xmllint().expect(
            "xmllint is not installed (sudo apt-get install libxml2-utils): this test compares \
             the Rust rules with junit-10.xsd through it",
        );
        let dir = std::env::temp_dir().join(format!("junit-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut samples = vec![("valid", VALID.to_string())];
        samples.extend(invalid());
        for (i, (what, xml)) in samples.into_iter().enumerate() {
            let file = dir.join(format!("{i}.xml"));
            std::fs::write(&file, &xml).unwrap();
            let lint = Command::new(&xmllint)
                .args(["--noout", "--schema"])
                .arg(xsd_path())
                .arg(&file)
                .output()
                .unwrap();
            assert_eq!(
                validate(&xml).is_ok(),
                lint.status.success(),
                "{what}: rules say {:?}, xmllint says {}",
                validate(&xml),
                String::from_utf8_lossy(&lint.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
