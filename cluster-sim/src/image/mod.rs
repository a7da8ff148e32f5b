//! Node images built locally: from a pulled base where a registry answers, else from a Debian
//! rootfs bootstrapped with debootstrap from the host's own apt sources.
//!
//! [`ImageBuilder::ensure`] is the one entry point. For a definition directory (the
//! workspace's `docker/node/`: a `Dockerfile` taking `ARG BASE`, a `packages.txt`, and the
//! files they copy) it:
//!
//! 1. hashes every file of the definition (paths, executable bits, contents) with the
//!    builder's version into the tag `cluster-sim/node:<12 hex digits>`; if the engine has
//!    that tag, it is done (one inspect call, nothing printed);
//! 2. otherwise takes the build lock (a process-wide mutex and a flock on
//!    `$TMPDIR/cluster-sim-image-build.lock`), and checks the cache again;
//! 3. chooses a base: a local `debian:bookworm-slim`; else the cached offline base
//!    `cluster-sim/base:bookworm-<hash of packages>`; else, only where `CLUSTER_SIM_PULL=1`
//!    says a registry may be contacted, a pull of `debian:bookworm-slim` (abandoned after 15 s
//!    without an answer); else it bootstraps one: `debootstrap
//!    --variant=minbase --include=<packages.txt>` from the first `deb` source for bookworm
//!    `main` in the host's apt configuration (`/etc/apt/sources.list`, then
//!    `sources.list.d/*.list|*.sources`, one-line and deb822 formats), slims it, streams it
//!    into the engine with `tar` and removes the temporary rootfs;
//! 4. builds the Dockerfile with `BASE=<base>` (its install step is a no-op on the offline
//!    base, which already has every package) and tags it, and `cluster-sim/node:latest`.
//!
//! [`ImageBuilder::from_image`] builds a definition on another image instead of a Debian base
//! (the engines lab's `docker/engine/` on the node image): that image with the definition's
//! `packages.txt` installed ([`ensure_packages`]) is `BASE`, and its id joins the tag's hash.
//!
//! A spec's `packages` make a derived image per package set ([`ensure_packages`],
//! `packages.rs`): the `.deb` files are downloaded on this machine by its own apt (`debs.rs`)
//! and installed in a build container without network, which is committed as
//! `cluster-sim/packages:<hash of image id and sorted packages>`.
//!
//! Progress goes to stderr: a spinner on a terminal, `cluster-sim: ...` lines otherwise.
//! Every failure is an [`ImageError`] with one line saying what failed and, for programs the
//! builder runs, the tail of their output.

mod apt;
mod base;
mod builder;
mod debootstrap;
mod debs;
mod definition;
mod engine;
mod ensured;
mod error;
mod list;
mod lock;
mod node_build;
mod packages;
mod progress;

pub use base::BASE_IMAGE;
pub use builder::{default_definition_dir, ImageBuilder, DEFINITION_DIR_VAR, NODE_IMAGE};
pub use ensured::EnsuredImage;
pub use error::ImageError;
pub use list::{list_local, NodeImage};
pub use packages::{
    ensure_packages, ensure_packages_local, FROM_LABEL, PACKAGES_IMAGE, PACKAGES_LABEL,
};
