//! A check's status, as Nagios plugins report it: OK, WARN, ERROR or UNKNOWN.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The unified status of a check (or of one node's part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Exit 0: all is well.
    Ok,
    /// Exit 1: degraded, still working.
    Warn,
    /// Exit 2: broken.
    Error,
    /// Any other exit, a timeout, or a check that could not run: nobody knows.
    Unknown,
}

impl Status {
    /// The Nagios plugin convention: 0 OK, 1 WARN, 2 ERROR, anything else UNKNOWN.
    pub fn from_exit(code: i64) -> Status {
        match code {
            0 => Status::Ok,
            1 => Status::Warn,
            2 => Status::Error,
            _ => Status::Unknown,
        }
    }

    /// How bad it is, for picking the worst of several: an UNKNOWN outranks a WARN (nobody can
    /// say the service works) and an ERROR outranks everything (someone can say it doesn't).
    fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Unknown => 2,
            Status::Error => 3,
        }
    }

    /// The worse of two.
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Whether a client should fail on it (`cluster-sim checks` exits 1).
    pub fn is_bad(self) -> bool {
        matches!(self, Status::Error | Status::Unknown)
    }

    /// The name used in JSON, tables and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Error => "ERROR",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    /// Case-insensitive; Nagios' own words (`warning`, `critical`) are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" => Ok(Status::Ok),
            "warn" | "warning" => Ok(Status::Warn),
            "error" | "critical" | "crit" => Ok(Status::Error),
            "unknown" => Ok(Status::Unknown),
            other => Err(format!(
                "unknown status {other:?} (expected OK, WARN, ERROR or UNKNOWN)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nagios_exit_codes() {
        assert_eq!(Status::from_exit(0), Status::Ok);
        assert_eq!(Status::from_exit(1), Status::Warn);
        assert_eq!(Status::from_exit(2), Status::Error);
        assert_eq!(Status::from_exit(3), Status::Unknown);
        assert_eq!(Status::from_exit(137), Status::Unknown);
        assert_eq!(Status::from_exit(-1), Status::Unknown);
    }

    #[test]
    fn worst_of_two() {
        assert_eq!(Status::Ok.worst(Status::Warn), Status::Warn);
        assert_eq!(Status::Warn.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Error.worst(Status::Unknown), Status::Error);
        assert_eq!(Status::Ok.worst(Status::Ok), Status::Ok);
    }

    #[test]
    fn parses_names() {
        assert_eq!("critical".parse::<Status>(), Ok(Status::Error));
        assert_eq!("Warn".parse::<Status>(), Ok(Status::Warn));
        assert!("fine".parse::<Status>().is_err());
    }
}
