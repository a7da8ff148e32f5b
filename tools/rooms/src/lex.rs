//! A Rust lexer just deep enough to find module paths: comments dropped, string literals kept
//! as one token (their text is needed for `#[path = "..."]`), every token tagged with its line.
//!
//! Why not `syn`: paths inside macro invocations (`format!`, `tokio::select!`, `quote!`) are
//! token streams to syn and would be missed; a token scan sees them all, and it compiles in a
//! second.

/// One token of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (`r#` stripped from raw identifiers).
    Ident(String),
    /// `::`.
    PathSep,
    /// A string literal's contents, escapes left as written.
    Str(String),
    /// Any other punctuation character (`{`, `;`, `#`, `$`, ...).
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its line.
    pub line: usize,
}

/// The tokens of `src`. Numbers, lifetimes and char literals are dropped: no path holds them.
pub fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                // Block comments nest in Rust.
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => {
                let start_line = line;
                let (text, next, lines) = quoted(&chars, i + 1);
                out.push(Token {
                    tok: Tok::Str(text),
                    line: start_line,
                });
                line += lines;
                i = next;
            }
            '\'' => {
                // A char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`).
                if at(i + 1) == '\\' {
                    // Past the quote, the backslash and the escaped character (maybe a quote).
                    i += 3;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                    while is_ident_char(at(i)) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() => {
                while is_ident_char(at(i)) {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                // Raw strings and byte/C strings start like identifiers.
                if let Some((text, next, lines)) = prefixed_string(&chars, i) {
                    out.push(Token {
                        tok: Tok::Str(text),
                        line,
                    });
                    line += lines;
                    i = next;
                    continue;
                }
                if c == 'b' && at(i + 1) == '\'' {
                    // A byte literal: b'x', b'\n'.
                    i += 2;
                    if at(i) == '\\' {
                        i += 1;
                    }
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                    continue;
                }
                if c == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
                    i += 2;
                }
                let start = i;
                while is_ident_char(at(i)) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(chars[start..i].iter().collect()),
                    line,
                });
            }
            ':' if at(i + 1) == ':' => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            c => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line,
                });
                i += 1;
            }
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A `"..."` body from `i` (just past the quote): its text, the index past the closing quote and
/// the newlines it held.
fn quoted(chars: &[char], mut i: usize) -> (String, usize, usize) {
    let mut text = String::new();
    let mut lines = 0;
    while i < chars.len() && chars[i] != '"' {
        if chars[i] == '\\' && i + 1 < chars.len() {
            text.push(chars[i]);
            i += 1;
        }
        if chars[i] == '\n' {
            lines += 1;
        }
        text.push(chars[i]);
        i += 1;
    }
    (text, i + 1, lines)
}

/// `r"..."`, `r#"..."#`, `b"..."`, `br"..."`, `c"..."`, `cr#"..."#` starting at `i`, if one does.
fn prefixed_string(chars: &[char], i: usize) -> Option<(String, usize, usize)> {
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut j = i;
    if at(j) == 'b' || at(j) == 'c' {
        j += 1;
    }
    let raw = at(j) == 'r';
    if raw {
        j += 1;
    }
    if !raw {
        // b"..." or c"...": an ordinary body.
        return (j > i && at(j) == '"').then(|| quoted(chars, j + 1));
    }
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if at(j) != '"' {
        return None;
    }
    j += 1;
    let start = j;
    let mut lines = 0;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            let text = chars[start..j].iter().collect();
            return Some((text, j + 1 + hashes, lines));
        }
        if chars[j] == '\n' {
            lines += 1;
        }
        j += 1;
    }
    Some((chars[start..].iter().collect(), chars.len(), lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokens(src)
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(s) => Some(s),
                Tok::PathSep => Some("::".into()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_chars_and_lifetimes_hide_no_paths() {
        let src = r####"
            // use crate::a;
            /* use crate::b; /* nested */ still comment */
            let s = "use crate::c;";
            let r = r#"use crate::d; "quoted""#;
            let c = '"'; let q = '\''; fn f<'a>(x: &'a str) {}
            let b = b'"'; let bs = b"crate::e";
            use crate::real;
        "####;
        let ids = idents(src);
        let joined = ids.join(" ");
        assert!(joined.contains("use crate :: real"), "{joined}");
        for hidden in ["a", "b", "c ;", "d", "e"] {
            assert!(!joined.contains(&format!("crate :: {hidden}")), "{joined}");
        }
    }

    #[test]
    fn lines_count_newlines_inside_comments_and_strings() {
        let src = "/* one\ntwo */\n\"a\nb\"\nfoo";
        let last = tokens(src).pop().unwrap();
        assert_eq!(last.tok, Tok::Ident("foo".into()));
        assert_eq!(last.line, 5);
    }

    #[test]
    fn raw_identifiers_and_path_strings() {
        let t = tokens("#[path = \"x/y.rs\"] mod r#type;");
        assert!(t.contains(&Token {
            tok: Tok::Str("x/y.rs".into()),
            line: 1
        }));
        assert!(t.contains(&Token {
            tok: Tok::Ident("type".into()),
            line: 1
        }));
    }
}
