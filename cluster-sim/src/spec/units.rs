//! The spec's small values, checked where they are read: durations, memory sizes, image
//! references, node names, limits; and the one way a spec error points at its place in the
//! file.

use std::fmt;
use std::time::Duration;

use toml::Spanned;

use super::model::Limits;
use super::raw::RawLimits;
use crate::error::SpecError;
use crate::located::Src;

/// Spec errors at a place in the file.
pub(super) trait SpecErr {
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: impl fmt::Display)
        -> SpecError;
}

impl SpecErr for Src<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> SpecError {
        self.at(span, key, message).into()
    }
}

/// A Debian package name as apt takes it (`postgresql`, `libc6:amd64`, `redis-server=5:7.0*`):
/// lowercase letters, digits and `+.-`, starting with a letter or digit, optionally followed by
/// `:arch` or `=version`. Anything else (a space, an uppercase letter, a shell character) is
/// refused here, with its line, rather than by apt at launch.
pub(super) fn check_package(
    src: &Src<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<String, SpecError> {
    let text = v.get_ref();
    let name_end = text.find([':', '=']).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    let name_ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
    let rest_ok = rest
        .chars()
        .skip(1)
        .all(|c| c.is_ascii_alphanumeric() || "+.-~:*".contains(c))
        && rest.len() != 1;
    if name_ok && rest_ok {
        return Ok(text.clone());
    }
    Err(src.err(
        v.span(),
        key,
        format!(
            "{text:?} is not a Debian package name (lowercase letters, digits and `+.-`, \
             optionally `:arch` or `=version`)"
        ),
    ))
}

/// A positive duration (`"250ms"`, `"1m 30s"`): zero would spin a poll loop or fail at once.
pub(super) fn parse_duration(
    src: &Src<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<Duration, SpecError> {
    let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
        src.err(
            v.span(),
            key,
            format!("bad duration {:?}: {e}", v.get_ref()),
        )
    })?;
    if d.is_zero() {
        return Err(src.err(
            v.span(),
            key,
            format!(
                "{:?} is zero; use a positive duration such as \"250ms\"",
                v.get_ref()
            ),
        ));
    }
    Ok(d)
}

pub(super) fn parse_memory(
    src: &Src<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<u64, SpecError> {
    let s = v.get_ref().trim().to_ascii_lowercase();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s.as_str(), 1u64),
        Some((i, _)) => {
            let mult = match s[i..].trim_end_matches(['b', 'i']) {
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "" => 1,
                _ => 0,
            };
            (&s[..i], mult)
        }
    };
    match num.parse::<u64>() {
        Ok(n) if mult > 0 && n > 0 => Ok(n * mult),
        _ => Err(src.err(
            v.span(),
            key,
            format!(
                "bad memory size {:?} (use e.g. \"512m\" or \"2g\")",
                v.get_ref()
            ),
        )),
    }
}

/// Checks an image reference's syntax: `[registry/]name[:tag][@digest]`, lowercase name.
pub(super) fn valid_image(s: &str) -> bool {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return false;
    }
    let (name, _digest) = s.split_once('@').unwrap_or((s, ""));
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    if let Some(t) = tag {
        if t.is_empty()
            || t.len() > 128
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return false;
        }
    }
    let mut parts = repo.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        // The first component may be a registry host[:port] with upper case and dots.
        let is_registry = first && parts.peek().is_some() && (p.contains('.') || p.contains(':'));
        first = false;
        if is_registry {
            continue;
        }
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            return false;
        }
    }
    true
}

pub(super) fn check_image(
    src: &Src<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<String, SpecError> {
    if valid_image(v.get_ref()) {
        Ok(v.get_ref().clone())
    } else {
        Err(src.err(
            v.span(),
            key,
            format!(
                "bad image reference {:?} (expected name[:tag], lowercase)",
                v.get_ref()
            ),
        ))
    }
}

pub(crate) fn valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(super) fn limits(src: &Src<'_>, raw: &RawLimits, key: &str) -> Result<Limits, SpecError> {
    if let Some(c) = &raw.cpus {
        let v = *c.get_ref();
        if !(v > 0.0 && v.is_finite()) {
            return Err(src.err(
                c.span(),
                &format!("{key}.cpus"),
                format!("cpus must be a positive number of cores (e.g. 0.5), not {v}"),
            ));
        }
    }
    if let Some(p) = &raw.pids {
        if *p.get_ref() < 1 {
            return Err(src.err(
                p.span(),
                &format!("{key}.pids"),
                format!("pids must be at least 1, not {}", p.get_ref()),
            ));
        }
    }
    Ok(Limits {
        memory: raw
            .memory
            .as_ref()
            .map(|m| parse_memory(src, m, &format!("{key}.memory")))
            .transpose()?,
        cpus: raw.cpus.as_ref().map(|c| *c.get_ref()),
        pids: raw.pids.as_ref().map(|p| *p.get_ref()),
    })
}
