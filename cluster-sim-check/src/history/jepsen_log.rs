//! Jepsen's log of operations as a history (`cluster-sim check --from jepsen-log`): the lines
//! `jepsen.util` logs for each operation, `PROCESS<TAB>:TYPE<TAB>:F<TAB>VALUE[<TAB>ERROR]`
//! after the logger's prefix, as in the etcd histories Porcupine ships as test data.
//!
//! Values are EDN (`nil`, numbers, strings, keywords, `[vectors]`, `(lists)`, `#{sets}`); a
//! completion whose value is a keyword (`:timed-out`) carries it as its error. Lines that are
//! not operations (the rest of the log) are skipped. The log has no timestamps, so the order of
//! lines is the order of time: line `n` happens at `n` milliseconds.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::{HistoryError, Op, OpType, Process};

/// Reads a Jepsen log file as history records.
pub fn read_jepsen_log(path: &Path) -> Result<Vec<Op>, HistoryError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_jepsen_log(std::io::BufReader::new(file), &shown)
}

/// Parses a Jepsen log from any reader; `name` stands for it in errors.
pub fn parse_jepsen_log(reader: impl BufRead, name: &str) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    let mut nemesis = std::collections::HashSet::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Read {
            path: name.to_string(),
            source,
        })?;
        let bad = |message: String| HistoryError::Malformed {
            path: name.to_string(),
            line: i + 1,
            message,
        };
        if let Some(mut op) = op_line(&line, (i as u64 + 1) * 1_000_000).map_err(bad)? {
            // Jepsen logs a nemesis action as :info twice, starting and ending: the first of
            // a pair is the invocation.
            if let Process::Named(who) = &op.process {
                let action = (who.clone(), op.f.clone());
                if op.kind == OpType::Info && !nemesis.remove(&action) {
                    op.kind = OpType::Invoke;
                    nemesis.insert(action);
                }
            }
            ops.push(op);
            lines.push(i + 1);
        }
    }
    // The same rules as a history file: completions pair with invocations. The records are
    // checked as history lines, so an error's line is mapped back to the log's.
    let text: String = ops
        .iter()
        .map(|o| serde_json::to_string(o).unwrap_or_default() + "\n")
        .collect();
    super::parse_lines(text.as_bytes(), name).map_err(|e| match e {
        HistoryError::Malformed {
            path,
            line,
            message,
        } => HistoryError::Malformed {
            path,
            line: lines.get(line - 1).copied().unwrap_or(line),
            message,
        },
        other => other,
    })
}

/// The operation a log line records, if it records one.
fn op_line(line: &str, time: u64) -> Result<Option<Op>, String> {
    let Some((_, rest)) = line.split_once("jepsen.util") else {
        return Ok(None);
    };
    let rest = rest.trim_start_matches([' ', '-', ':']);
    let fields: Vec<&str> = rest.trim_end().split('\t').map(str::trim).collect();
    let [process, kind, f, value, more @ ..] = fields.as_slice() else {
        return Ok(None);
    };
    let kind = match *kind {
        ":invoke" => OpType::Invoke,
        ":ok" => OpType::Ok,
        ":fail" => OpType::Fail,
        ":info" => OpType::Info,
        _ => return Ok(None),
    };
    let process = match process.parse::<u64>() {
        Ok(n) => Process::Client(n),
        Err(_) => Process::Named(process.trim_start_matches(':').to_string()),
    };
    let mut error = more.first().map(|e| e.to_string());
    let mut value = edn(value)?;
    let keyword = fields[3].starts_with(':');
    if keyword && kind != OpType::Invoke && kind != OpType::Ok {
        error = value.as_str().map(str::to_string);
        value = Value::Null;
    }
    Ok(Some(Op {
        process,
        kind,
        f: f.trim_start_matches(':').to_string(),
        key: None,
        value,
        time,
        error,
    }))
}

fn edn(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value()?;
    p.space();
    if p.at != p.s.len() {
        return Err(format!(
            "not an operation's value: {text:?} (unexpected text at column {})",
            p.at + 1
        ));
    }
    Ok(v)
}

/// Just enough EDN for operation values.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_whitespace() || self.s[self.at] == b',')
        {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.space();
        let rest = &self.s[self.at..];
        match rest.first() {
            None => Err("an operation's value is missing".into()),
            Some(b'[') | Some(b'(') => self.seq(if rest[0] == b'[' { b']' } else { b')' }, 1),
            Some(b'#') if rest.get(1) == Some(&b'{') => self.seq(b'}', 2),
            Some(b'"') => self.string(),
            Some(b'{') => Err("maps are not supported in an operation's value".into()),
            Some(_) => {
                let end = rest
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || b",[](){}\"".contains(c))
                    .unwrap_or(rest.len());
                let atom = std::str::from_utf8(&rest[..end]).map_err(|e| e.to_string())?;
                self.at += end;
                Ok(match atom {
                    "nil" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    k if k.starts_with(':') => Value::String(k[1..].to_string()),
                    n => match n.parse::<i64>() {
                        Ok(i) => Value::from(i),
                        Err(_) => n
                            .parse::<f64>()
                            .ok()
                            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                            .ok_or_else(|| format!("not an EDN value: {n:?}"))?,
                    },
                })
            }
        }
    }

    fn seq(&mut self, close: u8, open_len: usize) -> Result<Value, String> {
        self.at += open_len;
        let mut items = Vec::new();
        loop {
            self.space();
            match self.s.get(self.at) {
                None => return Err(format!("unclosed {:?}", close as char)),
                Some(&c) if c == close => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn string(&mut self) -> Result<Value, String> {
        // EDN strings escape as JSON strings do, for what operation values hold.
        let start = self.at;
        self.at += 1;
        while self.at < self.s.len() {
            match self.s[self.at] {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    let text =
                        std::str::from_utf8(&self.s[start..self.at]).map_err(|e| e.to_string())?;
                    return serde_json::from_str(text)
                        .map_err(|e| format!("bad string {text}: {e}"));
                }
                _ => self.at += 1,
            }
        }
        Err("unclosed string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOG: &str = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
        some other log line\n\
        INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]  \n\
        INFO  jepsen.util - 0\t:ok\t:read\t3\n\
        INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n\
        INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
        INFO  jepsen.util - :nemesis\t:info\t:start\t\"partition\"\n";

    #[test]
    fn operation_lines_become_records() {
        let ops = parse_jepsen_log(LOG.as_bytes(), "etcd.log").unwrap();
        assert_eq!(ops.len(), 6);
        assert_eq!(
            (ops[0].kind, ops[0].f.as_str(), &ops[0].value, ops[0].time),
            (OpType::Invoke, "read", &Value::Null, 1_000_000)
        );
        assert_eq!(ops[1].value, json!([3, 0]));
        assert_eq!(ops[2].value, json!(3));
        assert_eq!(
            (ops[3].kind, &ops[3].value, ops[3].error.as_deref()),
            (OpType::Info, &Value::Null, Some("timed-out"))
        );
        assert_eq!(ops[4].process, Process::Named("nemesis".into()));
        assert_eq!((ops[4].kind, ops[5].kind), (OpType::Invoke, OpType::Info));
        assert_eq!(ops[5].value, json!("partition"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_jepsen_log(
            "INFO  jepsen.util - 0\t:invoke\t:write\t[1 2\n".as_bytes(),
            "x.log",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.log:1: unclosed ']'");
        let e = parse_jepsen_log(
            "INFO  jepsen.util - 0\t:ok\t:read\tnil\n".as_bytes(),
            "x.log",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.log:1: ok of read by process 0 without an invoke");
    }
}
