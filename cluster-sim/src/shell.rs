//! Quoting for POSIX `sh`: the one quoter every script we build goes through (exec agents,
//! ssh commands, fault scripts, `collect`), so a path or value with a quote or a space means
//! the same thing everywhere.

/// Quotes `s` as one word for `sh`: left bare when it holds only characters no shell treats
/// specially (so scripts in logs stay readable), else single-quoted with each `'` spelled
/// `'\''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare_and_the_rest_is_quoted() {
        assert_eq!(quote("abc/d-e.f"), "abc/d-e.f");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's $x"), r"'it'\''s $x'");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("~"), "'~'");
    }

    #[test]
    fn sh_reads_back_what_was_quoted() {
        for s in [
            "plain",
            "two words",
            "it's",
            "$HOME `x` \"y\"",
            "*",
            "a\nb",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(s))])
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }
}
