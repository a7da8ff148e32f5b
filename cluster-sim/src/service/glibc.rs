//! The glibc a binary needs (its ELF version requirements, `GLIBC_2.x`) and the glibc a node
//! has, and the one-line verdict when they do not fit.

use std::fmt;
use std::path::Path;

use object::read::elf::{FileHeader, SectionTable};
use object::Endianness;

/// A glibc version such as 2.36.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    /// Major version (2 for every glibc in use).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl GlibcVersion {
    /// Parses `2.36` (or `2.36.1`, whose third part is ignored).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }
}

/// The C library of a node, as [`probe_command`]'s output describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLibc {
    /// glibc of this version.
    Glibc(GlibcVersion),
    /// No glibc: musl, or nothing recognisable (the text says what was seen).
    NotGlibc(String),
}

impl fmt::Display for NodeLibc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeLibc::Glibc(v) => write!(f, "glibc {v}"),
            NodeLibc::NotGlibc(s) => f.write_str(s),
        }
    }
}

/// A shell command that prints the node's C library: `glibc 2.36` from `getconf`, else the first
/// line of `ldd --version` (which names musl on musl systems).
pub const PROBE_COMMAND: &str =
    "getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1 | head -n 2 || echo 'no libc found'";

/// Returns [`PROBE_COMMAND`]; a function so that backends read as `glibc::probe_command()`.
pub fn probe_command() -> &'static str {
    PROBE_COMMAND
}

/// Reads [`PROBE_COMMAND`]'s output.
pub fn parse_probe(out: &str) -> NodeLibc {
    let text = out.trim();
    if let Some(v) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("glibc "))
        .and_then(GlibcVersion::parse)
    {
        return NodeLibc::Glibc(v);
    }
    if text.to_ascii_lowercase().contains("musl") {
        return NodeLibc::NotGlibc("musl libc".into());
    }
    // `ldd (Debian GLIBC 2.36-9+deb12u4) 2.36`: the last word of the first line.
    let first = text.lines().next().unwrap_or("");
    if first.contains("GLIBC") || first.contains("GNU libc") {
        if let Some(v) = first
            .split_whitespace()
            .last()
            .and_then(GlibcVersion::parse)
        {
            return NodeLibc::Glibc(v);
        }
    }
    NodeLibc::NotGlibc(if first.is_empty() {
        "no recognisable C library".into()
    } else {
        format!("no glibc ({first})")
    })
}

/// Reading a binary's requirements failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ElfError {
    /// The binary.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The newest `GLIBC_2.x` version the ELF file at `path` requires, or `None` when it needs no
/// glibc (statically linked, musl, or not dynamically linked against libc).
pub fn required_glibc(path: &Path) -> Result<Option<GlibcVersion>, ElfError> {
    let err = |message: String| ElfError {
        path: path.display().to_string(),
        message,
    };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let data = data.as_slice();
    match object::FileKind::parse(data).map_err(|e| err(format!("not an executable: {e}")))? {
        object::FileKind::Elf64 => {
            let h = object::elf::FileHeader64::<Endianness>::parse(data)
                .map_err(|e| err(e.to_string()))?;
            let endian = h.endian().map_err(|e| err(e.to_string()))?;
            let sections = h.sections(endian, data).map_err(|e| err(e.to_string()))?;
            newest(&sections, endian, data).map_err(|e| err(e.to_string()))
        }
        object::FileKind::Elf32 => {
            let h = object::elf::FileHeader32::<Endianness>::parse(data)
                .map_err(|e| err(e.to_string()))?;
            let endian = h.endian().map_err(|e| err(e.to_string()))?;
            let sections = h.sections(endian, data).map_err(|e| err(e.to_string()))?;
            newest(&sections, endian, data).map_err(|e| err(e.to_string()))
        }
        other => Err(err(format!(
            "not an ELF file ({other:?}); nodes run Linux executables"
        ))),
    }
}

/// Walks the `SHT_GNU_VERNEED` section: for each needed library, the versions it must define.
fn newest<'d, H: FileHeader<Endian = Endianness>>(
    sections: &SectionTable<'d, H, &'d [u8]>,
    endian: Endianness,
    data: &'d [u8],
) -> object::read::Result<Option<GlibcVersion>> {
    let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, data, link)?;
    let mut best = None;
    while let Some((_need, mut auxes)) = needs.next()? {
        while let Some(aux) = auxes.next()? {
            let name = String::from_utf8_lossy(aux.name(endian, strings)?).into_owned();
            if let Some(v) = name.strip_prefix("GLIBC_").and_then(GlibcVersion::parse) {
                best = best.max(Some(v));
            }
        }
    }
    Ok(best)
}

/// Whether a binary needing `needs` runs on a node with `has`; `Err` is the one-line reason
/// with both versions and the two ways out.
pub fn check(what: &str, needs: Option<GlibcVersion>, has: &NodeLibc) -> Result<(), String> {
    let Some(needs) = needs else {
        return Ok(());
    };
    match has {
        NodeLibc::Glibc(v) if *v >= needs => Ok(()),
        has => Err(format!(
            "{what} needs glibc {needs} but the node has {has}; build it for a musl target \
             (`target = \"x86_64-unknown-linux-musl\"` in its [[binary]]) or use a node image with glibc {needs} or newer"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_glibc_a_real_binary_needs() {
        // This test's own executable is a dynamically linked glibc binary on Linux.
        let exe = std::env::current_exe().unwrap();
        let v = required_glibc(&exe).unwrap().expect("links against glibc");
        assert_eq!(v.major, 2);
        assert!(v.minor >= 2, "{v}");
        // The host's own glibc can run it, by definition.
        let host = std::process::Command::new("sh")
            .args(["-c", PROBE_COMMAND])
            .output()
            .unwrap();
        let has = parse_probe(&String::from_utf8_lossy(&host.stdout));
        assert!(check("this test", Some(v), &has).is_ok(), "{has} vs {v}");
    }

    #[test]
    fn not_elf_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("script");
        std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
        let e = required_glibc(&p).unwrap_err().to_string();
        assert!(e.contains("not an"), "{e}");
    }

    #[test]
    fn probe_outputs() {
        let v236 = GlibcVersion {
            major: 2,
            minor: 36,
        };
        assert_eq!(parse_probe("glibc 2.36\n"), NodeLibc::Glibc(v236));
        assert_eq!(
            parse_probe("ldd (Debian GLIBC 2.36-9+deb12u4) 2.36\nCopyright"),
            NodeLibc::Glibc(v236)
        );
        assert_eq!(
            parse_probe("musl libc (x86_64)\nVersion 1.2.4\n"),
            NodeLibc::NotGlibc("musl libc".into())
        );
    }

    #[test]
    fn mismatch_is_one_line_with_both_versions_and_fixes() {
        let needs = GlibcVersion::parse("2.39");
        let has = NodeLibc::Glibc(GlibcVersion::parse("2.31").unwrap());
        let e = check("kvd", needs, &has).unwrap_err();
        assert!(!e.contains('\n'));
        assert!(
            e.contains("needs glibc 2.39 but the node has glibc 2.31"),
            "{e}"
        );
        assert!(e.contains("musl") && e.contains("newer"), "{e}");
        assert!(check(
            "kvd",
            needs,
            &NodeLibc::Glibc(GlibcVersion::parse("2.39").unwrap())
        )
        .is_ok());
        assert!(check("kvd", None, &NodeLibc::NotGlibc("musl libc".into())).is_ok());
    }
}
