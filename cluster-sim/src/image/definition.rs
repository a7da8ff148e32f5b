//! An image definition directory (`docker/node/`) read into memory: its content hash, which
//! names the image tag, its package list, and the tar build context sent to the engine.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::ImageError;

/// Bumped whenever the builder changes what it produces from the same definition (build
/// arguments, base-image treatment), so that cached images made by an older builder are
/// not reused.
pub(crate) const BUILDER_VERSION: &str = "2";

/// How many hex digits of a sha256 name an image tag.
const TAG_HEX: usize = 12;

/// The file in a definition directory that lists the Debian packages of the image.
pub(crate) const PACKAGES_FILE: &str = "packages.txt";

/// One regular file of a definition, with its path relative to the definition directory.
#[derive(Debug)]
struct DefinitionFile {
    /// Path relative to the definition directory, '/'-separated.
    rel: String,
    contents: Vec<u8>,
    executable: bool,
}

/// A definition directory's files, sorted by relative path.
#[derive(Debug)]
pub(crate) struct Definition {
    dir: PathBuf,
    files: Vec<DefinitionFile>,
}

impl Definition {
    /// Reads every file under `dir` (following symlinks), which must hold a `Dockerfile`.
    pub(crate) fn read(dir: &Path) -> Result<Self, ImageError> {
        let mut files = Vec::new();
        read_tree(dir, "", &mut files)?;
        if !files.iter().any(|f| f.rel == "Dockerfile") {
            return Err(ImageError::NoDockerfile {
                dir: dir.to_path_buf(),
            });
        }
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// The directory this definition was read from.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first hex digits of a sha256 over the builder version and every file's path,
    /// executable bit and contents, in path order.
    pub(crate) fn content_hash(&self) -> String {
        short_hex(self.hasher())
    }

    /// [`content_hash`](Self::content_hash) of the definition built `FROM` the image
    /// `base_id`: a rebuilt base makes another hash.
    pub(crate) fn content_hash_on(&self, base_id: &str) -> String {
        let mut hasher = self.hasher();
        hasher.update(b"FROM ");
        hasher.update(base_id.as_bytes());
        short_hex(hasher)
    }

    fn hasher(&self) -> Sha256 {
        let mut hasher = Sha256::new();
        hasher.update(b"cluster-sim image builder ");
        hasher.update(BUILDER_VERSION.as_bytes());
        hasher.update([0]);
        for file in &self.files {
            hasher.update(file.rel.as_bytes());
            hasher.update([0]);
            hasher.update(if file.executable { b"755" } else { b"644" });
            hasher.update((file.contents.len() as u64).to_le_bytes());
            hasher.update(&file.contents);
        }
        hasher
    }

    /// The packages listed in `packages.txt` ('#' comments and blank lines skipped), in file
    /// order; empty when the definition has no such file.
    pub(crate) fn packages(&self) -> Vec<String> {
        self.files
            .iter()
            .find(|f| f.rel == PACKAGES_FILE)
            .map(|f| parse_packages(&String::from_utf8_lossy(&f.contents)))
            .unwrap_or_default()
    }

    /// The build context: an uncompressed tar of every file, with normalised owner, mode and
    /// time so that the same definition always sends the same bytes.
    pub(crate) fn context_tar(&self) -> Result<Vec<u8>, ImageError> {
        let mut builder = tar::Builder::new(Vec::new());
        for file in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(file.contents.len() as u64);
            header.set_mode(if file.executable { 0o755 } else { 0o644 });
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, &file.rel, file.contents.as_slice())
                .map_err(|source| ImageError::Definition {
                    path: self.dir.join(&file.rel),
                    source,
                })?;
        }
        builder
            .into_inner()
            .map_err(|source| ImageError::Definition {
                path: self.dir.clone(),
                source,
            })
    }
}

/// Parses a package list: one or more names per line, '#' starts a comment.
pub(crate) fn parse_packages(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| line.split('#').next().unwrap_or("").split_whitespace())
        .map(str::to_owned)
        .collect()
}

/// The first [`TAG_HEX`] hex digits of a finished hash.
pub(crate) fn short_hex(hasher: Sha256) -> String {
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(TAG_HEX);
    hex
}

fn read_tree(dir: &Path, prefix: &str, out: &mut Vec<DefinitionFile>) -> Result<(), ImageError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Definition { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(ImageError::Definition {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "file name is not UTF-8",
                ),
            });
        };
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        // Follows symlinks, so a linked file is hashed and sent like a copy.
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            read_tree(&path, &rel, out)?;
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let contents = std::fs::read(&path).map_err(io_err(&path))?;
            out.push(DefinitionFile {
                rel,
                contents,
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        std::fs::write(
            dir.path().join(PACKAGES_FILE),
            "# comment\netcd-server  redis-server\n\ntini # init\n",
        )
        .expect("write");
        std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
        std::fs::write(dir.path().join("conf/a.conf"), "a=1\n").expect("write");
        dir
    }

    fn hash(dir: &Path) -> String {
        Definition::read(dir).expect("read").content_hash()
    }

    #[test]
    fn hash_is_stable_and_short() {
        let dir = sample();
        let first = hash(dir.path());
        assert_eq!(first.len(), TAG_HEX);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(first, hash(dir.path()));
        // The same files elsewhere hash the same: only relative paths count.
        let other = sample();
        assert_eq!(first, hash(other.path()));
    }

    #[test]
    fn changing_any_file_changes_the_hash() {
        let dir = sample();
        let before = hash(dir.path());

        std::fs::write(dir.path().join("conf/a.conf"), "a=2\n").expect("write");
        let edited = hash(dir.path());
        assert_ne!(before, edited);

        std::fs::write(dir.path().join("conf/b.conf"), "").expect("write");
        let added = hash(dir.path());
        assert_ne!(edited, added);

        std::fs::rename(
            dir.path().join("conf/b.conf"),
            dir.path().join("conf/c.conf"),
        )
        .expect("rename");
        let renamed = hash(dir.path());
        assert_ne!(added, renamed);

        let conf = dir.path().join("conf/a.conf");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_ne!(renamed, hash(dir.path()));
    }

    #[test]
    fn the_base_image_joins_the_hash() {
        let dir = sample();
        let def = Definition::read(dir.path()).expect("read");
        let on_a = def.content_hash_on("sha256:aaaa");
        assert_eq!(on_a.len(), TAG_HEX);
        assert_eq!(on_a, def.content_hash_on("sha256:aaaa"));
        assert_ne!(on_a, def.content_hash_on("sha256:bbbb"));
        assert_ne!(on_a, def.content_hash());
    }

    #[test]
    fn definition_needs_a_dockerfile() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(PACKAGES_FILE), "tini\n").expect("write");
        let err = Definition::read(dir.path()).expect_err("no Dockerfile");
        assert!(matches!(err, ImageError::NoDockerfile { .. }), "{err}");
        let missing = Definition::read(&dir.path().join("nope")).expect_err("no dir");
        assert!(
            matches!(missing, ImageError::Definition { .. }),
            "{missing}"
        );
    }

    #[test]
    fn packages_skip_comments_and_blank_lines() {
        let dir = sample();
        let def = Definition::read(dir.path()).expect("read");
        assert_eq!(def.packages(), ["etcd-server", "redis-server", "tini"]);
    }

    #[test]
    fn context_tar_holds_every_file_in_order() {
        let dir = sample();
        let def = Definition::read(dir.path()).expect("read");
        let bytes = def.context_tar().expect("tar");
        assert_eq!(bytes, def.context_tar().expect("tar again"));
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["Dockerfile", "conf/a.conf", PACKAGES_FILE]);
    }

    #[test]
    fn the_repository_node_definition_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/node");
        let def = Definition::read(&dir).expect("docker/node reads");
        let packages = def.packages();
        for wanted in ["etcd-server", "redis-server", "openssh-server", "tini"] {
            assert!(packages.iter().any(|p| p == wanted), "{wanted} missing");
        }
    }
}
