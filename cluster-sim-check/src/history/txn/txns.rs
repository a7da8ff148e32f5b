//! Transactions as the txn checkers see them: each `f = "txn"` operation's micro-operations with
//! keys and values interned to numbers and read lists kept in one arena, so that a history of a
//! million transactions is a few flat vectors instead of a million JSON trees.

use std::fmt::Write as _;

use foldhash::HashMap;
use serde_json::Value;

use crate::history::{Completed, OpError, OpType, Process};

/// A register value or list element that no write produced: the initial `null`.
pub(crate) const NIL: u32 = u32::MAX;

/// Which micro-operations a history may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `["append", k, v]` and `["r", k, [v, ...]]`.
    ListAppend,
    /// `["w", k, v]` and `["r", k, v]`.
    RwRegister,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::ListAppend => "list-append",
            Flavor::RwRegister => "rw-register",
        }
    }
}

/// A key or value as the history wrote it. Integers, the common case, are kept as numbers;
/// strings bare (shown without quotes); anything else as its JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Atom {
    Int(i64),
    Str(Box<str>),
    Json(Box<str>),
}

impl Atom {
    /// The atom of a scalar JSON value; `None` for null, arrays and objects.
    fn of(v: &Value) -> Option<Atom> {
        match v {
            Value::Null | Value::Array(_) | Value::Object(_) => None,
            Value::String(s) => Some(Atom::Str(s.as_str().into())),
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => Atom::Int(i),
                None => Atom::Json(n.to_string().into()),
            }),
            Value::Bool(_) => Some(Atom::Json(v.to_string().into())),
        }
    }

    pub(crate) fn to_value(&self) -> Value {
        match self {
            Atom::Int(i) => Value::from(*i),
            Atom::Str(s) => Value::String(s.to_string()),
            Atom::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
        }
    }
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::Int(i) => write!(f, "{i}"),
            Atom::Str(s) | Atom::Json(s) => f.write_str(s),
        }
    }
}

/// Interned atoms: each distinct atom gets the next number.
#[derive(Debug, Default)]
pub(crate) struct Atoms {
    ids: HashMap<Atom, u32>,
    atoms: Vec<Atom>,
}

impl Atoms {
    fn id(&mut self, a: Atom) -> u32 {
        if let Some(&id) = self.ids.get(&a) {
            return id;
        }
        let id = self.atoms.len() as u32;
        self.atoms.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    /// The atom numbered `id`; `NIL` shows as `nil`.
    pub(crate) fn show(&self, id: u32) -> String {
        match self.atoms.get(id as usize) {
            Some(a) => a.to_string(),
            None => "nil".into(),
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Atom> {
        self.atoms.get(id as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.atoms.len()
    }
}

/// A range of [`Txns::lists`] or [`Txns::mops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// One micro-operation. A read's result is `None` when unknown (the transaction did not
/// complete `ok`, so only its invocation, with no results, is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mop {
    Append {
        key: u32,
        value: u32,
    },
    Write {
        key: u32,
        value: u32,
    },
    ReadList {
        key: u32,
        list: Option<Span>,
    },
    /// The value read; [`NIL`] for `null`, the initial state.
    ReadValue {
        key: u32,
        value: Option<u32>,
    },
}

impl Mop {
    pub(crate) fn key(self) -> u32 {
        match self {
            Mop::Append { key, .. }
            | Mop::Write { key, .. }
            | Mop::ReadList { key, .. }
            | Mop::ReadValue { key, .. } => key,
        }
    }
}

/// One transaction: where it is in the history, who ran it, how it ended, and its
/// micro-operations (a span of [`Txns::mops`]).
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// The invocation's position in the history, for messages that name a line.
    pub(crate) index: usize,
    pub(crate) process: Process,
    pub(crate) outcome: OpType,
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
    mops: Span,
}

/// A history's transactions in invocation order, with their micro-operations.
#[derive(Debug)]
pub(crate) struct Txns {
    pub(crate) flavor: Flavor,
    pub(crate) txns: Vec<Txn>,
    mops: Vec<Mop>,
    lists: Vec<u32>,
    pub(crate) keys: Atoms,
    pub(crate) values: Atoms,
}

impl Txns {
    pub(crate) fn new(flavor: Flavor) -> Self {
        Txns {
            flavor,
            txns: Vec::new(),
            mops: Vec::new(),
            lists: Vec::new(),
            keys: Atoms::default(),
            values: Atoms::default(),
        }
    }

    /// Every completed client operation of a history, each of which must be a `txn`.
    pub(crate) fn from_completed(ops: &[Completed], flavor: Flavor) -> Result<Txns, OpError> {
        let mut txns = Txns::new(flavor);
        for op in ops {
            txns.push(op)?;
        }
        Ok(txns)
    }

    /// Adds one operation. An `ok` transaction's micro-operations come from its completion
    /// (reads filled in); any other's from its invocation, whose reads are unknown.
    pub(crate) fn push(&mut self, op: &Completed) -> Result<(), OpError> {
        let bad = |message: String| OpError {
            index: op.index,
            message,
        };
        if op.f != "txn" {
            return Err(bad(format!(
                "a {} history holds only txn operations, not {:?}",
                self.flavor.name(),
                op.f
            )));
        }
        let known = op.outcome == OpType::Ok;
        let value = if known { &op.output } else { &op.input };
        let Some(mops) = value.as_array() else {
            return Err(bad(if known {
                format!(
                    "an ok txn completes with its micro-operations, reads filled in, not {value}"
                )
            } else {
                format!("a txn's value is a list of micro-operations, not {value}")
            }));
        };
        let start = self.mops.len() as u32;
        let lists = self.lists.len();
        for (i, m) in mops.iter().enumerate() {
            match self.mop(m, known) {
                Ok(m) => self.mops.push(m),
                Err(e) => {
                    // Leave no half-added transaction behind.
                    self.mops.truncate(start as usize);
                    self.lists.truncate(lists);
                    return Err(bad(format!("micro-operation {} ({m}): {e}", i + 1)));
                }
            }
        }
        self.txns.push(Txn {
            index: op.index,
            process: op.process.clone(),
            outcome: op.outcome,
            start: op.start,
            end: op.end,
            mops: Span {
                start,
                len: mops.len() as u32,
            },
        });
        Ok(())
    }

    fn mop(&mut self, m: &Value, known: bool) -> Result<Mop, String> {
        let Some([f, k, x]) = m.as_array().map(Vec::as_slice) else {
            return Err("not [f, key, value]".into());
        };
        let f = f.as_str().ok_or("its f is not a string")?;
        let key = Atom::of(k).ok_or_else(|| format!("a key is a string or a number, not {k}"))?;
        let key = self.keys.id(key);
        let scalar = |x: &Value, what: &str| {
            Atom::of(x).ok_or_else(|| format!("{what} a string or a number, not {x}"))
        };
        Ok(match (self.flavor, f) {
            (Flavor::ListAppend, "append") => Mop::Append {
                key,
                value: self.values.id(scalar(x, "an appended value is")?),
            },
            (Flavor::ListAppend, "r") => Mop::ReadList {
                key,
                list: if known {
                    Some(self.read_list(x)?)
                } else {
                    None
                },
            },
            (Flavor::RwRegister, "w") => Mop::Write {
                key,
                // A written null would be indistinguishable from the initial state.
                value: self.values.id(scalar(x, "a written value is")?),
            },
            (Flavor::RwRegister, "r") => Mop::ReadValue {
                key,
                value: match (known, x) {
                    (false, _) => None,
                    (true, Value::Null) => Some(NIL),
                    (true, x) => Some(self.values.id(scalar(x, "a value read is")?)),
                },
            },
            (Flavor::ListAppend, other) => {
                return Err(format!("list-append has append and r, not {other:?}"))
            }
            (Flavor::RwRegister, other) => {
                return Err(format!("rw-register has w and r, not {other:?}"))
            }
        })
    }

    /// A read list into the arena; `null` (a key never written) is the empty list.
    fn read_list(&mut self, x: &Value) -> Result<Span, String> {
        let start = self.lists.len() as u32;
        match x {
            Value::Null => {}
            Value::Array(items) => {
                for v in items {
                    let a = Atom::of(v)
                        .ok_or_else(|| format!("a list holds strings or numbers, not {v}"))?;
                    let id = self.values.id(a);
                    self.lists.push(id);
                }
            }
            other => return Err(format!("a list-append read returns a list, not {other}")),
        }
        Ok(Span {
            start,
            len: self.lists.len() as u32 - start,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.txns.len()
    }

    /// Puts the transactions in invocation order (read from a file, they come in completion
    /// order), so that both ways of reading a history give the same numbering.
    pub(crate) fn sort_by_invocation(&mut self) {
        self.txns.sort_by_key(|t| t.index);
    }

    /// Gives back what the vectors reserved beyond their length while they grew: up to half
    /// of a large history's memory.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.txns.shrink_to_fit();
        self.mops.shrink_to_fit();
        self.lists.shrink_to_fit();
    }

    pub(crate) fn mops(&self, t: u32) -> &[Mop] {
        &self.mops[self.txns[t as usize].mops.range()]
    }

    pub(crate) fn list(&self, s: Span) -> &[u32] {
        &self.lists[s.range()]
    }

    pub(crate) fn txn(&self, t: u32) -> &Txn {
        &self.txns[t as usize]
    }

    pub(crate) fn key(&self, k: u32) -> String {
        self.keys.show(k)
    }

    pub(crate) fn value(&self, v: u32) -> String {
        self.values.show(v)
    }

    /// A list as people read it: `[1 2 3]`, a long one cut in the middle (its end matters most:
    /// the last element says which append it saw last).
    pub(crate) fn show_list(&self, s: Span) -> String {
        let l = self.list(s);
        let shown: Vec<String> = if l.len() <= 10 {
            l.iter().map(|&v| self.value(v)).collect()
        } else {
            let mut v: Vec<String> = l[..3].iter().map(|&v| self.value(v)).collect();
            v.push(format!("...{} more...", l.len() - 7));
            v.extend(l[l.len() - 4..].iter().map(|&v| self.value(v)));
            v
        };
        format!("[{}]", shown.join(" "))
    }

    /// A transaction's micro-operations, Elle-style: `[append x 1] [r y [1 2]]`.
    pub(crate) fn show_mops(&self, t: u32) -> String {
        let mut out = String::new();
        for (i, m) in self.mops(t).iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = match *m {
                Mop::Append { key, value } => {
                    write!(out, "[append {} {}]", self.key(key), self.value(value))
                }
                Mop::Write { key, value } => {
                    write!(out, "[w {} {}]", self.key(key), self.value(value))
                }
                Mop::ReadList { key, list } => match list {
                    Some(l) => write!(out, "[r {} {}]", self.key(key), self.show_list(l)),
                    None => write!(out, "[r {} ?]", self.key(key)),
                },
                Mop::ReadValue { key, value } => match value {
                    Some(v) => write!(out, "[r {} {}]", self.key(key), self.value(v)),
                    None => write!(out, "[r {} ?]", self.key(key)),
                },
            };
        }
        out
    }

    /// A transaction in one line: who, what, how it ended and when.
    pub(crate) fn show_txn(&self, t: u32) -> String {
        let txn = self.txn(t);
        let end = txn.end.map_or("?".into(), crate::history::secs);
        format!(
            "process {} txn {} ({}, {}..{})",
            txn.process,
            self.show_mops(t),
            txn.outcome,
            crate::history::secs(txn.start),
            end
        )
    }

    /// The transaction's micro-operations as JSON, as the history has them: reads filled in
    /// (when known and `with_reads`) or `null`.
    pub(crate) fn mops_json(&self, t: u32, with_reads: bool) -> Value {
        let atom = |atoms: &Atoms, id: u32| atoms.get(id).map_or(Value::Null, Atom::to_value);
        let mops = self.mops(t).iter().map(|m| {
            let (f, key, v) = match *m {
                Mop::Append { key, value } => ("append", key, atom(&self.values, value)),
                Mop::Write { key, value } => ("w", key, atom(&self.values, value)),
                Mop::ReadList { key, list } => (
                    "r",
                    key,
                    list.filter(|_| with_reads).map_or(Value::Null, |l| {
                        self.list(l)
                            .iter()
                            .map(|&v| atom(&self.values, v))
                            .collect()
                    }),
                ),
                Mop::ReadValue { key, value } => (
                    "r",
                    key,
                    value
                        .filter(|_| with_reads)
                        .map_or(Value::Null, |v| atom(&self.values, v)),
                ),
            };
            Value::Array(vec![f.into(), atom(&self.keys, key), v])
        });
        Value::Array(mops.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txn(p: u64, outcome: OpType, value: Value, start: u64) -> Completed {
        let (input, output) = match outcome {
            OpType::Ok => (Value::Null, value),
            _ => (value, Value::Null),
        };
        Completed {
            process: Process::Client(p),
            f: "txn".into(),
            key: None,
            input,
            output,
            outcome,
            start,
            end: (outcome != OpType::Info).then_some(start + 1),
            index: start as usize,
        }
    }

    #[test]
    fn micro_operations_are_interned_and_shown_as_written() {
        let ops = [
            txn(
                0,
                OpType::Ok,
                json!([["append", "x", 1], ["r", "x", [1, 2]], ["r", 7, null]]),
                0,
            ),
            txn(
                1,
                OpType::Info,
                json!([["append", "x", "a"], ["r", "y", null]]),
                2,
            ),
        ];
        let t = Txns::from_completed(&ops, Flavor::ListAppend).unwrap();
        assert_eq!(t.show_mops(0), "[append x 1] [r x [1 2]] [r 7 []]");
        assert_eq!(t.show_mops(1), "[append x a] [r y ?]");
        assert_eq!(
            t.mops_json(0, true),
            json!([["append", "x", 1], ["r", "x", [1, 2]], ["r", 7, []]])
        );
        assert_eq!(t.keys.len(), 3);
    }

    #[test]
    fn what_is_not_a_transaction_is_named() {
        let e = |v: Value, flavor| {
            Txns::from_completed(&[txn(0, OpType::Ok, v, 5)], flavor)
                .unwrap_err()
                .message
        };
        assert_eq!(
            e(json!([["w", "x", 1]]), Flavor::ListAppend),
            r#"micro-operation 1 (["w","x",1]): list-append has append and r, not "w""#
        );
        assert_eq!(
            e(json!([["r", "x", 1], ["r", "x"]]), Flavor::RwRegister),
            r#"micro-operation 2 (["r","x"]): not [f, key, value]"#
        );
        assert_eq!(
            e(json!([["r", "x", 3]]), Flavor::ListAppend),
            r#"micro-operation 1 (["r","x",3]): a list-append read returns a list, not 3"#
        );
        assert_eq!(
            e(json!([["w", "x", null]]), Flavor::RwRegister),
            r#"micro-operation 1 (["w","x",null]): a written value is a string or a number, not null"#
        );
        assert_eq!(
            e(json!({"x": 1}), Flavor::RwRegister),
            r#"an ok txn completes with its micro-operations, reads filled in, not {"x":1}"#
        );
        let mut read = txn(0, OpType::Ok, json!(1), 5);
        read.f = "read".into();
        let err = Txns::from_completed(&[read], Flavor::RwRegister).unwrap_err();
        assert_eq!(err.index, 5);
        assert_eq!(
            err.message,
            "a rw-register history holds only txn operations, not \"read\""
        );
    }
}
