//! Output parsers: a regex or a JSON pointer picks a value out of a check's stdout, and
//! thresholds or a value map turn it into a status.

use std::collections::BTreeMap;

use super::status::Status;

/// Where the value comes from.
#[derive(Debug, Clone)]
pub enum ValueSource {
    /// The first capture group of the first match (the whole match when the regex has no group).
    Regex(regex::Regex),
    /// A JSON pointer (RFC 6901) into stdout parsed as JSON.
    JsonPointer(String),
}

/// Numeric limits; a value past an error limit is ERROR, else past a warn limit WARN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// WARN when the value is greater.
    pub warn_above: Option<f64>,
    /// ERROR when the value is greater.
    pub error_above: Option<f64>,
    /// WARN when the value is smaller.
    pub warn_below: Option<f64>,
    /// ERROR when the value is smaller.
    pub error_below: Option<f64>,
}

impl Thresholds {
    fn any(&self) -> bool {
        self.warn_above.is_some()
            || self.error_above.is_some()
            || self.warn_below.is_some()
            || self.error_below.is_some()
    }

    fn judge(&self, v: f64) -> Status {
        let above = |t: Option<f64>| t.is_some_and(|t| v > t);
        let below = |t: Option<f64>| t.is_some_and(|t| v < t);
        if above(self.error_above) || below(self.error_below) {
            Status::Error
        } else if above(self.warn_above) || below(self.warn_below) {
            Status::Warn
        } else {
            Status::Ok
        }
    }
}

/// A check's `[parse]` table.
#[derive(Debug, Clone)]
pub struct OutputParser {
    /// Where the value comes from.
    pub source: ValueSource,
    /// Numeric limits (the value must be a number when any is set).
    pub thresholds: Thresholds,
    /// Status per value (`healthy = "OK"`); a value not in a non-empty map counts as missing.
    pub map: BTreeMap<String, Status>,
    /// The status when no value can be found or judged (default UNKNOWN).
    pub missing: Status,
}

/// What a parser made of one output: the value it found and the status it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The value, as text, when one was found.
    pub value: Option<String>,
    /// The status it sets.
    pub status: Status,
}

impl OutputParser {
    /// Picks the value out of `stdout` and judges it. With neither map nor thresholds, finding
    /// a value at all is OK.
    pub fn judge(&self, stdout: &str) -> Parsed {
        let value = match &self.source {
            ValueSource::Regex(re) => re.captures(stdout).map(|c| {
                c.get(1)
                    .or_else(|| c.get(0))
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default()
            }),
            ValueSource::JsonPointer(ptr) => serde_json::from_str::<serde_json::Value>(stdout)
                .ok()
                .and_then(|v| v.pointer(ptr).cloned())
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }),
        };
        let Some(value) = value else {
            return Parsed {
                value: None,
                status: self.missing,
            };
        };
        let mut status = Status::Ok;
        if !self.map.is_empty() {
            status = self.map.get(value.trim()).copied().unwrap_or(self.missing);
        }
        if self.thresholds.any() {
            status = status.worst(match value.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => self.thresholds.judge(v),
                _ => self.missing,
            });
        }
        Parsed {
            value: Some(value),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(ptr: &str, t: Thresholds) -> OutputParser {
        OutputParser {
            source: ValueSource::JsonPointer(ptr.into()),
            thresholds: t,
            map: BTreeMap::new(),
            missing: Status::Unknown,
        }
    }

    #[test]
    fn json_pointer_with_thresholds() {
        let p = json(
            "/disk/used",
            Thresholds {
                warn_above: Some(80.0),
                error_above: Some(90.0),
                ..Default::default()
            },
        );
        assert_eq!(p.judge(r#"{"disk":{"used":50}}"#).status, Status::Ok);
        assert_eq!(p.judge(r#"{"disk":{"used":85.5}}"#).status, Status::Warn);
        assert_eq!(p.judge(r#"{"disk":{"used":95}}"#).status, Status::Error);
        assert_eq!(p.judge(r#"{"disk":{}}"#).status, Status::Unknown);
        assert_eq!(p.judge("not json").status, Status::Unknown);
        assert_eq!(
            p.judge(r#"{"disk":{"used":"lots"}}"#).status,
            Status::Unknown
        );
    }

    #[test]
    fn regex_with_a_map() {
        let p = OutputParser {
            source: ValueSource::Regex(regex::Regex::new(r"state: (\w+)").unwrap()),
            thresholds: Thresholds::default(),
            map: [
                ("healthy".to_string(), Status::Ok),
                ("degraded".to_string(), Status::Warn),
            ]
            .into(),
            missing: Status::Error,
        };
        let r = p.judge("x\nstate: degraded\n");
        assert_eq!(r.value.as_deref(), Some("degraded"));
        assert_eq!(r.status, Status::Warn);
        assert_eq!(p.judge("state: on-fire").status, Status::Error);
        assert_eq!(p.judge("nothing").status, Status::Error);
    }

    #[test]
    fn regex_presence_and_lower_limits() {
        let mut p = OutputParser {
            source: ValueSource::Regex(regex::Regex::new(r"is healthy").unwrap()),
            thresholds: Thresholds::default(),
            map: BTreeMap::new(),
            missing: Status::Error,
        };
        assert_eq!(p.judge("127.0.0.1 is healthy").status, Status::Ok);
        assert_eq!(p.judge("unhealthy cluster").status, Status::Error);
        p.source = ValueSource::Regex(regex::Regex::new(r"members=(\d+)").unwrap());
        p.thresholds.error_below = Some(2.0);
        p.thresholds.warn_below = Some(3.0);
        assert_eq!(p.judge("members=3").status, Status::Ok);
        assert_eq!(p.judge("members=2").status, Status::Warn);
        assert_eq!(p.judge("members=1").status, Status::Error);
    }
}
