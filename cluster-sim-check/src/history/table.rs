//! The by-name table of every checker: what `cluster-sim check --model NAME` and tests choose
//! from. It sits above the checkers (each implements [`Checker`] from check.rs), so a new model
//! is its own file plus one line here.

use super::txn::{ListAppend, RwRegister};
use super::{CheckError, Checker, Counter, Queue, Register, Set, UniqueIds};

/// Every checker by name: what [`by_name`] and `cluster-sim check --model` choose from.
pub static CHECKERS: &[&(dyn Checker + 'static)] = &[
    &Register,
    &Set,
    &ListAppend,
    &RwRegister,
    &Counter,
    &UniqueIds,
    &Queue,
];

/// The checker named `name` in [`CHECKERS`].
pub fn by_name(name: &str) -> Result<&'static dyn Checker, CheckError> {
    CHECKERS
        .iter()
        .copied()
        .find(|c| c.name() == name)
        .ok_or_else(|| CheckError::UnknownModel {
            name: name.to_string(),
            expected: names(),
        })
}

/// The table's names as a list for a message: `register or set`.
fn names() -> String {
    let names: Vec<&str> = CHECKERS.iter().map(|c| c.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_finds_every_checker_by_its_name() {
        for c in CHECKERS {
            assert_eq!(by_name(c.name()).map(|c| c.name()), Ok(c.name()));
        }
        assert_eq!(
            by_name("bank").map(|c| c.name()).unwrap_err().to_string(),
            "unknown model \"bank\" (expected register, set, list-append, rw-register, counter, unique-ids or queue)"
        );
    }
}
