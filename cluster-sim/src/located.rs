//! Positions in TOML files (specs, inventories) for one-line errors: `file:line:column: key `k`: why`.

use std::fmt;
use std::ops::Range;

/// A problem at a place in a TOML file; each file format turns it into its own error type.
#[derive(Debug)]
pub struct Located {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

/// `key `k`: ` for a message, or nothing when the key is unknown.
pub fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

/// The text of a TOML file and the name it goes by in errors.
pub struct Src<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

impl Src<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, col)
    }

    /// A problem with the value at `span`, under `key`.
    pub fn at(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> Located {
        let (line, column) = self.line_col(span.start);
        Located {
            file: self.path.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    /// A TOML syntax or shape error, on one line, with the key found from its position.
    pub fn toml(&self, e: &toml::de::Error) -> Located {
        let span = e.span().unwrap_or(0..0);
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        self.at(span.clone(), &key_at(self.text, span.start), message)
    }
}

/// Best effort: the key named on the line holding `offset`.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let here = text[start..].lines().next().unwrap_or("");
    // At a blank line (the end of the file, say), the key is on the last line before it.
    let line = if here.trim().is_empty() {
        text[..start]
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    } else {
        here
    };
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('[') {
        return rest
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    line.split('=').next().unwrap_or("").trim().to_string()
}
