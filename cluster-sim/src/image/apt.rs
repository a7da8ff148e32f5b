//! Finds the Debian mirror in the host's apt configuration, so the offline base image is
//! bootstrapped from whatever mirror this machine already uses (no host name is ever written
//! into the repository). Reads both the one-line `sources.list` format and deb822 `.sources`.

use std::path::{Path, PathBuf};

use super::error::ImageError;

/// A `deb` source that carries the wanted suite with component `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AptSource {
    /// The mirror URI, e.g. `http://mirror.invalid/debian`.
    pub(crate) uri: String,
    /// The keyring the source is signed by, when given as a file path.
    pub(crate) signed_by: Option<PathBuf>,
}

/// Where the host's apt configuration lives.
pub(crate) const ETC_APT: &str = "/etc/apt";

/// The component a source must carry for debootstrap to find the packages.
const COMPONENT: &str = "main";

/// Finds the first `deb` source for `suite` with component `main` under `etc_apt` (normally
/// `/etc/apt`), reading files in apt's own order: `sources.list`, then `sources.list.d/*.list`
/// and `*.sources` by name.
pub(crate) fn find_source(etc_apt: &Path, suite: &str) -> Result<AptSource, ImageError> {
    let mut files = Vec::new();
    let main_list = etc_apt.join("sources.list");
    if main_list.is_file() {
        files.push(main_list);
    }
    let dir = etc_apt.join("sources.list.d");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut parts: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("list") | Some("sources")
                    )
            })
            .collect();
        parts.sort();
        files.extend(parts);
    }

    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| ImageError::AptConfig {
            path: file.clone(),
            source,
        })?;
        let found = if file.extension().is_some_and(|e| e == "sources") {
            parse_deb822(&text, suite)
        } else {
            parse_one_line(&text, suite)
        };
        if let Some(source) = found {
            return Ok(source);
        }
    }

    let searched = if files.is_empty() {
        format!("{} (no source files)", etc_apt.display())
    } else {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(ImageError::NoAptSource {
        suite: suite.to_owned(),
        searched,
    })
}

/// Whether debootstrap can fetch from this URI (apt's `cdrom:`, `mirror+`, `tor+` and other
/// transports are apt-only).
fn usable_uri(uri: &str) -> bool {
    uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:/")
}

/// A `Signed-By`/`signed-by` value that names a keyring file (not an inline key block).
fn keyring_path(value: &str) -> Option<PathBuf> {
    value
        .split([' ', '\t', ','])
        .find(|v| !v.is_empty())
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from)
}

/// Parses the one-line format (`deb [opts] uri suite component...`), returning the first
/// matching source.
pub(crate) fn parse_one_line(text: &str, suite: &str) -> Option<AptSource> {
    for raw in text.lines() {
        // apt treats everything from a '#' on as a comment.
        let line = raw.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb") else {
            continue;
        };
        // "deb-src" and other words that merely start with "deb" are not binary sources.
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let Some(end) = opts.find(']') else {
                continue;
            };
            for opt in opts[..end].split_whitespace() {
                if let Some((key, value)) = opt.split_once('=') {
                    if key.eq_ignore_ascii_case("signed-by") {
                        signed_by = keyring_path(value);
                    }
                }
            }
            rest = opts[end + 1..].trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(dist)) = (words.next(), words.next()) else {
            continue;
        };
        if usable_uri(uri) && dist == suite && words.any(|c| c == COMPONENT) {
            return Some(AptSource {
                uri: uri.to_owned(),
                signed_by,
            });
        }
    }
    None
}

/// Parses the deb822 format (stanzas of `Field: value` lines separated by blank lines),
/// returning the first matching source.
pub(crate) fn parse_deb822(text: &str, suite: &str) -> Option<AptSource> {
    for stanza in deb822_stanzas(text) {
        let field = |name: &str| {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let words = |name: &str| field(name).unwrap_or("").split_whitespace();

        if field("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        if !words("Types").any(|t| t == "deb") {
            continue;
        }
        if !words("Suites").any(|s| s == suite) || !words("Components").any(|c| c == COMPONENT) {
            continue;
        }
        let Some(uri) = words("URIs").find(|u| usable_uri(u)) else {
            continue;
        };
        return Some(AptSource {
            uri: uri.to_owned(),
            signed_by: field("Signed-By").and_then(keyring_path),
        });
    }
    None
}

/// Splits deb822 text into stanzas of (field, value) pairs; continuation lines are joined
/// to their field's value with newlines, comment lines are skipped.
fn deb822_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stanzas = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
# security first, but it is a different suite
Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: http://contrib.invalid/debian
Suites: bookworm
Components: contrib non-free

Types: deb deb-src
# a comment inside a stanza does not end it
URIs: cdrom:[Debian]/ http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://later.invalid/debian
Suites: bookworm
Components: main
";

    #[test]
    fn deb822_takes_the_first_enabled_binary_source_with_suite_and_main() {
        let found = parse_deb822(DEB822, "bookworm").expect("a source");
        assert_eq!(found.uri, "http://mirror.invalid/debian");
        assert_eq!(
            found.signed_by.as_deref(),
            Some(Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"))
        );
    }

    #[test]
    fn deb822_matches_suites_exactly() {
        let found = parse_deb822(DEB822, "bookworm-security").expect("a source");
        assert_eq!(found.uri, "http://mirror.invalid/debian-security");
        assert_eq!(parse_deb822(DEB822, "trixie"), None);
    }

    #[test]
    fn deb822_handles_inline_keys_and_continuations() {
        let text = "\
Types: deb
URIs: https://mirror.invalid/debian
Suites:
 bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFxZ...
 -----END PGP PUBLIC KEY BLOCK-----
";
        let found = parse_deb822(text, "bookworm").expect("a source");
        assert_eq!(found.uri, "https://mirror.invalid/debian");
        assert_eq!(found.signed_by, None);
    }

    const ONE_LINE: &str = "\
# deb http://commented.invalid/debian bookworm main
deb-src http://src.invalid/debian bookworm main
deb http://mirror.invalid/debian-security bookworm-security main
deb http://contrib.invalid/debian bookworm contrib
debx http://typo.invalid/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.invalid/debian bookworm main contrib # trailing
deb http://later.invalid/debian bookworm main
";

    #[test]
    fn one_line_takes_the_first_binary_source_with_suite_and_main() {
        let found = parse_one_line(ONE_LINE, "bookworm").expect("a source");
        assert_eq!(found.uri, "http://mirror.invalid/debian");
        assert_eq!(
            found.signed_by.as_deref(),
            Some(Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"))
        );
    }

    #[test]
    fn one_line_without_options_and_with_other_suites() {
        let found = parse_one_line(ONE_LINE, "bookworm-security").expect("a source");
        assert_eq!(found.uri, "http://mirror.invalid/debian-security");
        assert_eq!(found.signed_by, None);
        assert_eq!(parse_one_line(ONE_LINE, "bullseye"), None);
        assert_eq!(
            parse_one_line("deb cdrom:[Debian]/ bookworm main\n", "bookworm"),
            None
        );
    }

    #[test]
    fn find_source_reads_apt_files_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path();
        std::fs::create_dir(etc.join("sources.list.d")).expect("mkdir");
        // sources.list has nothing for bookworm; 10-*.sources sorts before 20-*.list.
        std::fs::write(
            etc.join("sources.list"),
            "deb http://old.invalid/debian bullseye main\n",
        )
        .expect("write");
        std::fs::write(
            etc.join("sources.list.d/20-late.list"),
            "deb http://late.invalid/debian bookworm main\n",
        )
        .expect("write");
        std::fs::write(etc.join("sources.list.d/10-debian.sources"), DEB822).expect("write");
        std::fs::write(
            etc.join("sources.list.d/00-ignored.save"),
            "deb http://ignored.invalid/debian bookworm main\n",
        )
        .expect("write");

        let found = find_source(etc, "bookworm").expect("a source");
        assert_eq!(found.uri, "http://mirror.invalid/debian");
        let old = find_source(etc, "bullseye").expect("a source");
        assert_eq!(old.uri, "http://old.invalid/debian");

        let err = find_source(etc, "trixie").expect_err("no trixie source");
        let text = err.to_string();
        assert!(text.contains("no apt source for debian trixie"), "{text}");
        assert!(text.contains("10-debian.sources"), "{text}");
    }

    #[test]
    fn find_source_without_any_apt_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = find_source(dir.path(), "bookworm").expect_err("nothing configured");
        assert!(matches!(err, ImageError::NoAptSource { .. }), "{err}");
    }
}
