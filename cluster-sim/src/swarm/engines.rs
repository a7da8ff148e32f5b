//! The engines file (`CLUSTER_SIM_ENGINES`): the Docker engines of one swarm that the swarm
//! backend places nodes on, each with its endpoint, optional labels and node capacity.
//!
//! ```toml
//! [[engine]]
//! name = "host"                              # how specs (`[[node]] engine`) and `ls` name it
//! endpoint = "unix:///var/run/docker.sock"   # or tcp://host:port (no TLS)
//! capacity = 40                              # most nodes of all clusters here (default 100)
//! labels = { zone = "a" }                    # free-form, shown by `cluster-sim ls --json`
//! ```
//!
//! Every error is one line naming the file, line and key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::located::{key_prefix, Located, Src};

/// Nodes an engine takes when its entry sets no `capacity`.
pub const DEFAULT_CAPACITY: usize = 100;

/// The engines file could not be used.
#[derive(Debug)]
pub enum EnginesError {
    /// It could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A problem at a place in it.
    At(Located),
}

impl fmt::Display for EnginesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnginesError::Read { path, source } => {
                write!(f, "engines file {}: {source}", path.display())
            }
            EnginesError::At(l) => write!(
                f,
                "{}:{}:{}: {}{}",
                l.file,
                l.line,
                l.column,
                key_prefix(&l.key),
                l.message
            ),
        }
    }
}

impl std::error::Error for EnginesError {}

impl From<Located> for EnginesError {
    fn from(l: Located) -> Self {
        EnginesError::At(l)
    }
}

/// One engine of the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEntry {
    /// Its name (unique in the file).
    pub name: String,
    /// `unix:///path` or `tcp://host:port`.
    pub endpoint: String,
    /// Most nodes placed on it.
    pub capacity: usize,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
}

/// The engines of one swarm, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engines {
    /// Where they were read from (for messages).
    pub source: String,
    /// In file order; the first is where the node image is built when no engine has it.
    pub engines: Vec<EngineEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    engine: Vec<RawEngine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    name: Spanned<String>,
    endpoint: Spanned<String>,
    capacity: Option<Spanned<i64>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl Engines {
    /// Reads an engines file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EnginesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EnginesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses an engines file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, EnginesError> {
        let src = Src { path, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| src.toml(&e))?;
        if raw.engine.is_empty() {
            return Err(src
                .at(
                    0..0,
                    "engine",
                    "no engines (add [[engine]] tables with name and endpoint)",
                )
                .into());
        }
        let mut seen = HashSet::new();
        let mut engines = Vec::new();
        for e in raw.engine {
            let name = e.name.get_ref().trim().to_string();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(src
                    .at(
                        e.name.span(),
                        "engine.name",
                        format!("{name:?} is not an engine name (letters, digits, - _ .)"),
                    )
                    .into());
            }
            if !seen.insert(name.clone()) {
                return Err(src
                    .at(
                        e.name.span(),
                        "engine.name",
                        format!("engine {name:?} is listed twice"),
                    )
                    .into());
            }
            let endpoint = e.endpoint.get_ref().trim().to_string();
            let ok = endpoint
                .strip_prefix("unix://")
                .is_some_and(|p| p.starts_with('/'))
                || endpoint
                    .strip_prefix("tcp://")
                    .is_some_and(|a| a.contains(':') && !a.starts_with(':'));
            if !ok {
                return Err(src
                    .at(
                        e.endpoint.span(),
                        "engine.endpoint",
                        format!("{endpoint:?}: expected unix:///path or tcp://host:port"),
                    )
                    .into());
            }
            let capacity = match &e.capacity {
                None => DEFAULT_CAPACITY,
                Some(c) if *c.get_ref() >= 1 => *c.get_ref() as usize,
                Some(c) => {
                    return Err(src
                        .at(c.span(), "engine.capacity", "must be 1 or more nodes")
                        .into())
                }
            };
            engines.push(EngineEntry {
                name,
                endpoint,
                capacity,
                labels: e.labels,
            });
        }
        Ok(Engines {
            source: path.to_string(),
            engines,
        })
    }

    /// The engine named `name`.
    pub fn get(&self, name: &str) -> Option<&EngineEntry> {
        self.engines.iter().find(|e| e.name == name)
    }

    /// The file's text for these engines (what the lab writes), with a comment on top.
    pub fn to_toml(&self, header: &str) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        for e in &self.engines {
            out.push_str(&format!(
                "\n[[engine]]\nname = {}\nendpoint = {}\ncapacity = {}\n",
                q(&e.name),
                q(&e.endpoint),
                e.capacity
            ));
            if !e.labels.is_empty() {
                let labels: Vec<String> = e
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{} = {}", q(k), q(v)))
                    .collect();
                out.push_str(&format!("labels = {{ {} }}\n", labels.join(", ")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_engines_and_writes_them_back() {
        let text = r#"
[[engine]]
name = "host"
endpoint = "unix:///var/run/docker.sock"

[[engine]]
name = "lab-1"
endpoint = "tcp://172.18.0.2:2375"
capacity = 20
labels = { zone = "b" }
"#;
        let e = Engines::parse(text, "e.toml").expect("parses");
        assert_eq!(e.engines.len(), 2);
        assert_eq!(e.engines[0].capacity, DEFAULT_CAPACITY);
        assert_eq!(e.get("lab-1").map(|x| x.capacity), Some(20));
        let again = Engines::parse(&e.to_toml("a lab"), "e.toml").expect("round trip");
        assert_eq!(again.engines, e.engines);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = |t: &str| Engines::parse(t, "e.toml").unwrap_err().to_string();
        assert_eq!(
            err("[[engine]]\nname = \"a\"\nendpoint = \"http://x\"\n"),
            "e.toml:3:12: key `engine.endpoint`: \"http://x\": expected unix:///path or tcp://host:port"
        );
        let twice = "[[engine]]\nname = \"a\"\nendpoint = \"tcp://h:1\"\n[[engine]]\nname = \"a\"\nendpoint = \"tcp://h:2\"\n";
        assert!(
            err(twice).starts_with("e.toml:5:8: key `engine.name`: engine \"a\" is listed twice")
        );
        assert!(err("").contains("no engines"), "{}", err(""));
        assert!(
            err("[[engine]]\nname = \"a\"\nendpoint = \"tcp://h:1\"\ncapacity = 0\n")
                .contains("e.toml:4:12: key `engine.capacity`")
        );
        assert!(
            err("[[engin]]\n").starts_with("e.toml:1:"),
            "{}",
            err("[[engin]]\n")
        );
    }
}
