//! The replication protocol's version, and the data folder's stamp of it.
//!
//! A data folder records the protocol of the newest kvd that opened it (`<data>/PROTOCOL`).
//! An older kvd refuses a folder stamped with a newer protocol than its own: it can't know what
//! the newer one changed, and writing beside it could corrupt what that one relies on. So an
//! upgrade is one-way for a node's data, as PostgreSQL's `PG_VERSION` makes it.

use std::path::Path;

/// The replication protocol this kvd speaks.
pub const PROTOCOL: u32 = 1;

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
