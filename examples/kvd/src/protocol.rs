//! The replication protocol: its versions, how records travel in each, and the data folder's
//! stamp of the newest one that opened it.
//!
//! - Protocol 1: a follower sends `SYNC <offset>`; the primary streams `ENTRY <n> <key> <value>`.
//! - Protocol 2: a follower sends `SYNC <offset> 2`; the primary streams
//!   `RECORD <n> <sum> <key> <value>`, `<sum>` the FNV-1a 64 of `<n> <key> <value>` in hex, and
//!   the follower refuses a record whose sum does not match.
//!
//! Both directions work across an upgrade: a protocol-2 primary streams protocol 1 to a
//! follower that asks in protocol 1, and a protocol-2 follower whose primary answers its
//! `SYNC <offset> 2` with an error (a protocol-1 primary does not know the form) asks again in
//! protocol 1.
//!
//! A data folder records the protocol of the newest kvd that opened it (`<data>/PROTOCOL`).
//! An older kvd refuses a folder stamped with a newer protocol than its own: it can't know what
//! the newer one changed, and writing beside it could corrupt what that one relies on. So an
//! upgrade is one-way for a node's data, as PostgreSQL's `PG_VERSION` makes it.

use std::path::Path;

/// The replication protocol this kvd speaks.
pub const PROTOCOL: u32 = 2;

/// The oldest protocol this kvd still speaks to peers.
pub const OLDEST: u32 = 1;

/// The stamp file inside the data folder.
const STAMP: &str = "PROTOCOL";

/// Checks the data folder's stamp against [`PROTOCOL`] and stamps it with ours: refuses a
/// folder a newer kvd wrote.
pub fn stamp_data(data: &Path) -> Result<(), String> {
    std::fs::create_dir_all(data).map_err(|e| format!("data {}: {e}", data.display()))?;
    let path = data.join(STAMP);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found: u32 = text.trim().parse().map_err(|_| {
                format!(
                    "{}: not a protocol version: {:?}",
                    path.display(),
                    text.trim()
                )
            })?;
            if found > PROTOCOL {
                return Err(format!(
                    "data {} was written by protocol {found}; this kvd {} speaks protocol \
                     {PROTOCOL}: downgrade refused (run a kvd that speaks protocol {found} or newer)",
                    data.display(),
                    env!("CARGO_PKG_VERSION"),
                ));
            }
            if found == PROTOCOL {
                return Ok(());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let tmp = data.join(format!("{STAMP}.tmp"));
    std::fs::write(&tmp, format!("{PROTOCOL}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// FNV-1a, 64 bits, of a record's offset, key and value.
pub fn checksum(n: u64, key: &str, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{n} {key} {value}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One record as protocol `version` sends it, with its newline.
pub fn record_line(version: u32, n: u64, key: &str, value: &str) -> String {
    if version >= 2 {
        format!(
            "RECORD {n} {:016x} {key} {value}\n",
            checksum(n, key, value)
        )
    } else {
        format!("ENTRY {n} {key} {value}\n")
    }
}

/// Reads one record line of protocol `version`: offset, key and value, its checksum checked.
pub fn parse_record(version: u32, line: &str) -> Result<(u64, &str, &str), String> {
    let fields: Vec<&str> = if version >= 2 {
        line.splitn(5, ' ').collect()
    } else {
        line.splitn(4, ' ').collect()
    };
    let (n, sum, k, v) = match (version >= 2, fields.as_slice()) {
        (true, ["RECORD", n, sum, k, v]) => (n, Some(sum), k, v),
        (false, ["ENTRY", n, k, v]) => (n, None, k, v),
        _ => return Err(format!("unexpected line {line:?} (protocol {version})")),
    };
    let n: u64 = n.parse().map_err(|_| format!("bad offset in {line:?}"))?;
    if let Some(sum) = sum {
        let want = checksum(n, k, v);
        if u64::from_str_radix(sum, 16).ok() != Some(want) {
            return Err(format!(
                "record {n}: checksum {sum} does not match its contents ({want:016x}): refused"
            ));
        }
    }
    Ok((n, k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_both_protocols() {
        for version in [1, 2] {
            let line = record_line(version, 7, "k", "a value");
            assert_eq!(
                parse_record(version, line.trim_end()),
                Ok((7, "k", "a value"))
            );
        }
        let damaged = record_line(2, 7, "k", "a value").replace("value", "valve");
        let err = parse_record(2, damaged.trim_end()).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        assert!(parse_record(2, "ENTRY 1 k v").is_err());
    }
}
