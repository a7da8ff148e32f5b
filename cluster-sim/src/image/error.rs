//! `ImageError`: what can go wrong while ensuring a node image, one variant per step, each
//! carrying the path, tag or command involved and, for steps that run something, the tail of
//! that step's output.

use std::collections::VecDeque;
use std::path::PathBuf;

/// An error from [`ImageBuilder::ensure`](super::ImageBuilder::ensure) and friends.
///
/// Each message is one line naming what failed and where; the steps that run a program
/// (debootstrap, the import, the image build) append the last lines of that program's output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image definition directory (or a file in it) could not be read.
    #[error("cannot read the node image definition at {path}: {source}")]
    Definition {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The image definition directory holds no `Dockerfile`.
    #[error("no Dockerfile in the node image definition directory {dir}")]
    NoDockerfile {
        /// The directory that was searched.
        dir: PathBuf,
    },

    /// The lock that keeps two processes from building at once could not be taken.
    #[error("cannot take the image build lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The Docker engine refused or failed a request.
    #[error("docker engine error while {action}: {source}")]
    Docker {
        /// What the builder was doing, e.g. "inspecting image cluster-sim/node:0123abcd4567".
        action: String,
        /// The error bollard returned.
        #[source]
        source: bollard::errors::Error,
    },

    /// An apt source file of the host could not be read.
    #[error("cannot read the apt configuration {path}: {source}")]
    AptConfig {
        /// The apt source file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The host's apt configuration names no Debian mirror debootstrap could use.
    #[error(
        "no apt source for debian {suite} with component main in {searched}; the offline \
         base image is bootstrapped from the host's own Debian mirror"
    )]
    NoAptSource {
        /// The Debian suite that was looked for, e.g. "bookworm".
        suite: String,
        /// The apt source files that were read, comma separated.
        searched: String,
    },

    /// debootstrap is missing and could not be installed from here.
    #[error("the node image's base needs debootstrap, but {why}; run: {how}")]
    NeedDebootstrap {
        /// Why it is not there.
        why: String,
        /// The exact command that fixes it.
        how: String,
    },

    /// A program the builder needs could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program, e.g. "/usr/sbin/debootstrap".
        program: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// debootstrap ran but did not produce a root filesystem.
    #[error("debootstrap of debian {suite} from {mirror} failed ({status}){}", tail_block(.tail))]
    Debootstrap {
        /// The Debian suite.
        suite: String,
        /// The mirror URI read from the host's apt configuration.
        mirror: String,
        /// How debootstrap ended, e.g. "exit status: 1".
        status: String,
        /// The last lines debootstrap printed (and of its own log, where it left one).
        tail: Vec<String>,
    },

    /// Preparing, cleaning or removing the bootstrapped root filesystem failed.
    #[error("cannot {action} {path}: {source}")]
    Rootfs {
        /// What was being done, e.g. "remove the temporary rootfs".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Importing the bootstrapped root filesystem into the engine failed.
    #[error("importing the bootstrapped rootfs as {tag} failed: {message}{}", tail_block(.tail))]
    Import {
        /// The base image tag being created.
        tag: String,
        /// The engine's (or tar's) message.
        message: String,
        /// The last lines tar printed, if any.
        tail: Vec<String>,
    },

    /// The engine has no image by that name.
    #[error("the engine has no image {image}")]
    NoImage {
        /// The image reference.
        image: String,
    },

    /// The tag of an image built from another image was asked without an engine: it hashes
    /// that image's id.
    #[error("the tag of an image built from {image} hashes that image's id: ask the engine (ensure_image)")]
    NeedsEngine {
        /// The image it is built from.
        image: String,
    },

    /// apt on this machine can't find a package a spec asks for.
    #[error(
        "apt finds no package `{package}` in debian {suite} (main) of this machine's apt sources"
    )]
    NoSuchPackage {
        /// The package as the spec names it.
        package: String,
        /// The Debian suite searched.
        suite: String,
    },

    /// apt on this machine failed to read the package lists or download packages.
    #[error("{step} failed ({status}){}", tail_block(.tail))]
    Apt {
        /// What ran, e.g. "apt-get update".
        step: String,
        /// How it ended.
        status: String,
        /// The last lines it printed.
        tail: Vec<String>,
    },

    /// Packages for a docker node need apt on the machine running cluster-sim.
    #[error(
        "installing a spec's `packages` on docker nodes needs apt-get on this machine (a \
         Debian-family host with a Debian bookworm source): none found on PATH"
    )]
    NeedApt,

    /// The image has no dpkg database: packages can't be added to it.
    #[error("image {image} has no /var/lib/dpkg/status: `packages` needs a Debian-family image")]
    NoDpkg {
        /// The image packages were to be added to.
        image: String,
    },

    /// Installing downloaded packages in a build container from the image failed.
    #[error("installing {packages} into {tag} failed ({status}){}", tail_block(.tail))]
    PackageInstall {
        /// The derived image being built.
        tag: String,
        /// The packages, space separated.
        packages: String,
        /// How the install ended.
        status: String,
        /// The last lines it printed.
        tail: Vec<String>,
    },

    /// A step of the node image's Dockerfile failed.
    #[error("building {tag} failed at `{step}`: {message}{}", tail_block(.tail))]
    Build {
        /// The node image tag being built.
        tag: String,
        /// The Dockerfile step that was running, as the engine printed it.
        step: String,
        /// The engine's message, e.g. "The command '/bin/sh -c ...' returned a non-zero code: 100".
        message: String,
        /// The last lines of that step's output.
        tail: Vec<String>,
    },
}

/// Formats an output tail for the end of an error message: nothing when empty.
fn tail_block(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n--- last lines of output ---");
    for line in tail {
        out.push('\n');
        out.push_str(line);
    }
    out
}

/// The last lines of a program's output, kept while it runs so a failure can show them.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    /// How many lines a tail keeps.
    const LINES: usize = 40;
    /// How many characters of one line a tail keeps.
    const LINE_CHARS: usize = 400;

    /// Records one line (without its newline), dropping the oldest beyond the limit. Colour
    /// and other terminal escapes are removed: the line ends up in error messages and reports.
    pub(crate) fn push(&mut self, line: &str) {
        let stripped = strip_ansi_escapes::strip_str(line);
        let line = stripped.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        let line: String = if line.chars().count() > Self::LINE_CHARS {
            let mut cut: String = line.chars().take(Self::LINE_CHARS).collect();
            cut.push_str(" [...]");
            cut
        } else {
            line.to_owned()
        };
        if self.lines.len() == Self::LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Records every line of a chunk of text.
    pub(crate) fn push_text(&mut self, text: &str) {
        for line in text.lines() {
            self.push(line);
        }
    }

    /// Empties the tail (when a new step starts) and returns what it held.
    pub(crate) fn take(&mut self) -> Vec<String> {
        self.lines.drain(..).collect()
    }

    /// A copy of the lines held.
    pub(crate) fn to_vec(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_skips_blank_ones() {
        let mut tail = Tail::default();
        for i in 0..100 {
            tail.push(&format!("line {i}\n"));
            tail.push("   ");
        }
        let lines = tail.to_vec();
        assert_eq!(lines.len(), Tail::LINES);
        assert_eq!(lines.first().map(String::as_str), Some("line 60"));
        assert_eq!(lines.last().map(String::as_str), Some("line 99"));
    }

    #[test]
    fn tail_strips_terminal_escapes() {
        let mut tail = Tail::default();
        tail.push("\u{1b}[91mabout to fail\n\u{1b}[0m");
        assert_eq!(tail.to_vec(), ["about to fail"]);
    }

    #[test]
    fn error_message_ends_with_the_tail() {
        let err = ImageError::Debootstrap {
            suite: "bookworm".into(),
            mirror: "http://mirror.invalid/debian".into(),
            status: "exit status: 1".into(),
            tail: vec!["E: Couldn't download packages".into()],
        };
        let text = err.to_string();
        assert!(text.starts_with("debootstrap of debian bookworm from http://mirror.invalid/debian failed (exit status: 1)\n"));
        assert!(text.ends_with("--- last lines of output ---\nE: Couldn't download packages"));
    }
}
