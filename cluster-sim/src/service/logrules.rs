//! The spec's log keys: `[ready] log` (readiness by a service log line), `fail_on_log` and
//! `allow_log` (lines that fail a passing test, and the ones exempted), each regex compiled
//! at parse time so a bad one is an error at its file, line and key.

use std::fmt;

use toml::Spanned;

use crate::error::SpecError;
use crate::located::Src;

/// A regular expression from the spec, compiled once; equal when the source text is.
#[derive(Clone)]
pub struct LogPattern(regex::Regex);

impl LogPattern {
    /// Compiles `pattern` (for callers building a spec by hand).
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(LogPattern)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `line` matches.
    pub fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line)
    }
}

impl PartialEq for LogPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for LogPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for LogPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fail_on_log` and `allow_log`: after a test body passes, a service log line that matches a
/// `fail` pattern and no `allow` pattern fails the test (Jepsen's log checker).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRules {
    /// Lines that fail the test.
    pub fail: Vec<LogPattern>,
    /// Lines exempted from `fail`.
    pub allow: Vec<LogPattern>,
}

impl LogRules {
    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.fail.is_empty()
    }

    /// Whether `line` fails the test: it matches a `fail` pattern and no `allow` pattern.
    pub fn fails(&self, line: &str) -> bool {
        self.fail.iter().any(|p| p.is_match(line)) && !self.allow.iter().any(|p| p.is_match(line))
    }
}

/// One regex at its place in the spec.
pub(crate) fn pattern(
    src: &Src<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<LogPattern, SpecError> {
    LogPattern::new(v.get_ref()).map_err(|e| {
        // The regex crate's message spans several lines (the pattern, a caret, the reason):
        // one line keeps the error one line.
        let why = e
            .to_string()
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("invalid")
            .trim_start_matches("error: ")
            .to_string();
        SpecError::from(src.at(v.span(), key, format!("bad regex {:?}: {why}", v.get_ref())))
    })
}

/// `fail_on_log` and `allow_log`; an `allow_log` without `fail_on_log` exempts nothing, so it
/// is refused rather than silently ignored.
pub(crate) fn rules(
    src: &Src<'_>,
    fail: &[Spanned<String>],
    allow: &[Spanned<String>],
) -> Result<LogRules, SpecError> {
    let fail = fail
        .iter()
        .enumerate()
        .map(|(i, p)| pattern(src, p, &format!("fail_on_log[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let allow = allow
        .iter()
        .enumerate()
        .map(|(i, p)| pattern(src, p, &format!("allow_log[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if fail.is_empty() {
        if let Some(first) = allow_first(src, allow.len()) {
            return Err(first);
        }
    }
    Ok(LogRules { fail, allow })
}

fn allow_first(src: &Src<'_>, allowed: usize) -> Option<SpecError> {
    (allowed > 0).then(|| {
        let at = src.text.find("allow_log").unwrap_or(0);
        SpecError::from(src.at(
            at..at,
            "allow_log",
            "allow_log exempts lines from fail_on_log, which the spec does not set",
        ))
    })
}
