//! Node logs for the report: each line with the time it carries (so a click on an event can
//! show the node's log around that moment), trimmed to a byte budget.
//!
//! Services stamp their lines in their own ways; the common ones are read: RFC 3339 and
//! `YYYY-MM-DD HH:MM:SS` anywhere near the start of a line (etcd's JSON `"ts"`, most loggers)
//! and redis's `25 Nov 2026 21:30:01.123`. A line without a stamp takes its predecessor's.

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// Where in a line a stamp is looked for.
const STAMP_WINDOW: usize = 160;

/// One node's log, ready for the page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeLog {
    /// The node.
    pub(crate) node: String,
    /// The log file, as linked from the report.
    pub(crate) href: String,
    /// `[ms since the attempt's start or null, text]` per line kept.
    pub(crate) lines: Vec<(Option<i64>, String)>,
    /// Whether any line carried a time.
    pub(crate) stamped: bool,
    /// Bytes of the file left out.
    pub(crate) cut: u64,
}

fn iso() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}:?\d{2})?")
            .expect("a valid pattern")
    })
}

fn redis() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?")
            .expect("a valid pattern")
    })
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[expect(clippy::too_many_arguments, reason = "the fields of a civil time")]
fn to_ms(
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
    frac: &str,
    offset_min: i64,
) -> Option<u64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut ms: i64 = 0;
    for (i, c) in frac.chars().take(3).enumerate() {
        ms += c.to_digit(10)? as i64 * [100, 10, 1][i];
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

/// The time a log line carries, in milliseconds since the Unix epoch (UTC when it names no
/// offset).
pub(crate) fn stamp(line: &str) -> Option<u64> {
    let mut end = line.len().min(STAMP_WINDOW);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let head = &line[..end];
    let n = |c: &regex::Captures<'_>, i: usize| -> i64 {
        c.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0)
    };
    if let Some(c) = iso().captures(head) {
        let offset = match c.get(8).map(|m| m.as_str()) {
            None | Some("Z") => 0,
            Some(o) => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let digits: String = o.chars().filter(char::is_ascii_digit).collect();
                let h: i64 = digits.get(..2)?.parse().ok()?;
                let m: i64 = digits.get(2..4)?.parse().ok()?;
                sign * (h * 60 + m)
            }
        };
        let frac = c.get(7).map(|m| m.as_str()).unwrap_or("");
        return to_ms(
            n(&c, 1),
            n(&c, 2),
            n(&c, 3),
            n(&c, 4),
            n(&c, 5),
            n(&c, 6),
            frac,
            offset,
        );
    }
    if let Some(c) = redis().captures(head) {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mo = MONTHS.iter().position(|m| *m == &c[2])? as i64 + 1;
        let frac = c.get(7).map(|m| m.as_str()).unwrap_or("");
        return to_ms(
            n(&c, 3),
            mo,
            n(&c, 1),
            n(&c, 4),
            n(&c, 5),
            n(&c, 6),
            frac,
            0,
        );
    }
    None
}

/// Reads a node's log, keeping at most `budget` bytes: the first quarter and the last three
/// quarters of it when it is longer (a failure is usually near the end). Times are given in
/// milliseconds since `t0` (the attempt's start), as the page's events are.
pub(crate) fn read(
    node: &str,
    path: &Path,
    href: String,
    budget: usize,
    t0: u64,
) -> Option<NodeLog> {
    let bytes = std::fs::read(path).ok()?;
    let total = bytes.len();
    let (text, cut) = if total <= budget {
        (String::from_utf8_lossy(&bytes).into_owned(), 0)
    } else {
        let head = budget / 4;
        let tail = budget - head;
        let mut s = String::from_utf8_lossy(&bytes[..head]).into_owned();
        let cut = total - head - tail;
        s.push_str(&format!(
            "\n[... {cut} bytes left out here; the whole log is linked above]\n"
        ));
        s.push_str(&String::from_utf8_lossy(&bytes[total - tail..]));
        (s, cut as u64)
    };
    let mut last = None;
    let mut stamped = false;
    let lines = text
        .lines()
        .map(|l| {
            if let Some(t) = stamp(l) {
                last = Some(t as i64 - t0 as i64);
                stamped = true;
            }
            (last, l.to_string())
        })
        .collect();
    Some(NodeLog {
        node: node.to_string(),
        href,
        lines,
        stamped,
        cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_of_common_loggers() {
        // 2026-11-25T21:30:01.123Z
        let t = 1_795_642_201_123;
        assert_eq!(
            stamp(r#"{"level":"info","ts":"2026-11-25T21:30:01.123456Z","msg":"x"}"#),
            Some(t)
        );
        assert_eq!(stamp("2026-11-25 21:30:01.123 INFO x"), Some(t));
        assert_eq!(stamp("2026-11-25T22:30:01.123+01:00 x"), Some(t));
        assert_eq!(
            stamp("1:M 25 Nov 2026 21:30:01.123 * Ready to accept"),
            Some(t)
        );
        assert_eq!(stamp("no time here"), None);
        assert_eq!(stamp("2026-13-45 99:99:99"), None);
    }

    #[test]
    fn long_logs_keep_head_and_tail_and_lines_inherit_times() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("service.log");
        let mut text = String::from("2026-11-25T21:30:01Z start\ncontinued\n");
        for i in 0..1000 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("the end\n");
        std::fs::write(&p, &text).unwrap();
        let log = read("n1", &p, "x".into(), 1000, 0).unwrap();
        assert!(log.stamped);
        assert_eq!(log.lines[1].0, log.lines[0].0);
        assert_eq!(log.lines.last().unwrap().1, "the end");
        assert!(log.cut > 0);
        let kept: usize = log.lines.iter().map(|l| l.1.len() + 1).sum();
        assert!(kept < 1200, "{kept}");
    }
}
