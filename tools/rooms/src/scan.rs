//! What one source file says about modules: the `mod` declarations it makes, the modules it
//! defines inline, the names it imports (`use`), the paths its code names (`crate::x::f()`), the
//! items it defines, and where its tests start.

use crate::lex::{tokens, Tok, Token};

/// A module path inside a file: empty for the file's own module, `["tests"]` for an inline
/// `mod tests { .. }`.
pub type Scope = Vec<String>;

/// `mod name;`: a child module in a file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModDecl {
    /// Where it is declared.
    pub scope: Scope,
    /// The module's name.
    pub name: String,
    /// Its `#[path = ".."]`, if it has one.
    pub path: Option<String>,
}

/// One leaf of a `use` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseLeaf {
    /// Where the `use` is.
    pub scope: Scope,
    /// The full path as written (`crate`, `super`, `self` or a name first).
    pub path: Vec<String>,
    /// The name it brings into scope (`None` for `*` and `as _`).
    pub name: Option<String>,
    /// `use a::*`.
    pub glob: bool,
    /// The line of the leaf.
    pub line: usize,
}

/// A path in code (not in a `use`) that may name a module of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    /// Where it is.
    pub scope: Scope,
    /// Its segments (`crate`, `super`, `self` or a name first).
    pub path: Vec<String>,
    /// Its line.
    pub line: usize,
}

/// Everything the module graph needs from one file.
#[derive(Debug, Default)]
pub struct FileScan {
    /// `mod x;` declarations.
    pub decls: Vec<ModDecl>,
    /// Inline modules, parents before children.
    pub inline: Vec<Scope>,
    /// `use` leaves.
    pub uses: Vec<UseLeaf>,
    /// Paths in code.
    pub refs: Vec<PathRef>,
    /// Items defined (`fn`, `struct`, ...), by scope.
    pub defs: Vec<(Scope, String)>,
    /// `#[macro_export]` macros: they live at the crate root whatever file defines them.
    pub exported_macros: Vec<String>,
    /// The line of the first `#[cfg(test)]`, if any.
    pub tests_from: Option<usize>,
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "trait", "type", "const", "static", "union",
];

/// Scans one file's source.
pub fn scan(src: &str) -> FileScan {
    let toks = tokens(src);
    let mut out = FileScan::default();
    // Open inline modules: (scope, brace depth outside it).
    let mut open: Vec<(Scope, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_scope: Option<Scope> = None;
    let mut pending_path: Option<String> = None;
    let mut pending_export = false;
    let ident = |i: usize| match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Tok| toks.get(i).map(|x| &x.tok) == Some(t);
    let scope_of =
        |open: &Vec<(Scope, usize)>| open.last().map(|(s, _)| s.clone()).unwrap_or_default();
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].line;
        match &toks[i].tok {
            Tok::Punct('#') => {
                let words = attribute_words(&toks, i);
                match words.as_slice() {
                    [w, ..] if w == "macro_export" => pending_export = true,
                    [w, v] if w == "path" => pending_path = Some(v.clone()),
                    [w, t] if w == "cfg" && t == "test" => {
                        out.tests_from.get_or_insert(line);
                    }
                    _ => {}
                }
                i += 1;
            }
            Tok::Punct('{') => {
                if let Some(s) = pending_scope.take() {
                    open.push((s, depth));
                }
                depth += 1;
                pending_path = None;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                pending_path = None;
                pending_export = false;
                i += 1;
            }
            Tok::Punct(';') => {
                pending_path = None;
                pending_export = false;
                i += 1;
            }
            Tok::Ident(k) if k == "mod" => {
                let Some(name) = ident(i + 1) else {
                    i += 1;
                    continue;
                };
                let scope = scope_of(&open);
                if is(i + 2, &Tok::Punct(';')) {
                    out.decls.push(ModDecl {
                        scope,
                        name: name.to_string(),
                        path: pending_path.take(),
                    });
                } else if is(i + 2, &Tok::Punct('{')) {
                    let mut s = scope;
                    s.push(name.to_string());
                    out.inline.push(s.clone());
                    pending_scope = Some(s);
                }
                i += 2;
            }
            Tok::Ident(k) if k == "use" && !is(i + 1, &Tok::Punct('<')) => {
                let end = (i..toks.len())
                    .find(|&j| is(j, &Tok::Punct(';')))
                    .unwrap_or(toks.len());
                let mut pos = i + 1;
                let scope = scope_of(&open);
                use_tree(&toks[..end], &mut pos, Vec::new(), &scope, &mut out.uses);
                i = end;
            }
            Tok::Ident(k) if k == "macro_rules" && is(i + 1, &Tok::Punct('!')) => {
                if let Some(name) = ident(i + 2) {
                    out.defs.push((scope_of(&open), name.to_string()));
                    if pending_export {
                        out.exported_macros.push(name.to_string());
                    }
                }
                pending_export = false;
                i += 3;
            }
            Tok::Ident(k) if ITEM_KEYWORDS.contains(&k.as_str()) => {
                if let Some(name) = ident(i + 1).filter(|n| !ITEM_KEYWORDS.contains(n)) {
                    out.defs.push((scope_of(&open), name.to_string()));
                }
                i += 1;
            }
            Tok::Ident(first)
                if is(i + 1, &Tok::PathSep) && !is(i.wrapping_sub(1), &Tok::PathSep) =>
            {
                // `$crate::x` is `crate::x` to the file that defines the macro.
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while is(j, &Tok::PathSep) {
                    match ident(j + 1) {
                        Some(s) => path.push(s.to_string()),
                        None => break,
                    }
                    j += 2;
                }
                out.refs.push(PathRef {
                    scope: scope_of(&open),
                    path,
                    line,
                });
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// The words of the attribute starting at `#` (index `i`): `#[path = "x"]` is `["path", "x"]`,
/// `#[cfg(test)]` is `["cfg", "test"]`; anything else starts with its name.
fn attribute_words(toks: &[Token], i: usize) -> Vec<String> {
    if toks.get(i + 1).map(|t| &t.tok) != Some(&Tok::Punct('[')) {
        return Vec::new();
    }
    let mut words = Vec::new();
    let mut depth = 0;
    for t in &toks[i + 1..] {
        match &t.tok {
            Tok::Punct('[') | Tok::Punct('(') => depth += 1,
            Tok::Punct(']') | Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Ident(s) | Tok::Str(s) => words.push(s.clone()),
            Tok::Punct('=') => {}
            _ => words.push(String::new()),
        }
    }
    words
}

/// Parses a `use` tree from `toks[*pos..]`, appending its leaves under `prefix`.
fn use_tree(
    toks: &[Token],
    pos: &mut usize,
    prefix: Vec<String>,
    scope: &Scope,
    out: &mut Vec<UseLeaf>,
) {
    let mut path = prefix;
    if toks.get(*pos).map(|t| &t.tok) == Some(&Tok::PathSep) {
        // `use ::name`: another crate.
        path.push("::".into());
        *pos += 1;
    }
    while let Some(t) = toks.get(*pos) {
        match &t.tok {
            Tok::Ident(s) => {
                path.push(s.clone());
                *pos += 1;
                if toks.get(*pos).map(|t| &t.tok) == Some(&Tok::PathSep) {
                    *pos += 1;
                    continue;
                }
                // `a::b::{self}` imports `b` itself.
                if path.len() > 1 && path.last().is_some_and(|l| l == "self") {
                    path.pop();
                }
                let mut name = path.last().cloned();
                if let Some(Tok::Ident(a)) = toks.get(*pos).map(|t| &t.tok) {
                    if a == "as" {
                        name = match toks.get(*pos + 1).map(|t| &t.tok) {
                            Some(Tok::Ident(n)) if n != "_" => Some(n.clone()),
                            _ => None,
                        };
                        *pos += 2;
                    }
                }
                out.push(UseLeaf {
                    scope: scope.clone(),
                    path,
                    name,
                    glob: false,
                    line: t.line,
                });
                return;
            }
            Tok::Punct('*') => {
                *pos += 1;
                out.push(UseLeaf {
                    scope: scope.clone(),
                    path,
                    name: None,
                    glob: true,
                    line: t.line,
                });
                return;
            }
            Tok::Punct('{') => {
                *pos += 1;
                loop {
                    match toks.get(*pos).map(|t| &t.tok) {
                        None => return,
                        Some(Tok::Punct('}')) => {
                            *pos += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *pos += 1,
                        Some(_) => {
                            let before = *pos;
                            use_tree(toks, pos, path.clone(), scope, out);
                            if *pos == before {
                                *pos += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                *pos += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(src: &str) -> Vec<(String, Option<String>, bool)> {
        scan(src)
            .uses
            .into_iter()
            .map(|u| (u.path.join("::"), u.name, u.glob))
            .collect()
    }

    #[test]
    fn use_trees_become_leaves_with_their_names() {
        let got = leaves(
            "pub(crate) use crate::a::{self, b::C as D, e::*, f::{g, h as _}};\nuse super::x;",
        );
        assert_eq!(
            got,
            vec![
                ("crate::a".into(), Some("a".into()), false),
                ("crate::a::b::C".into(), Some("D".into()), false),
                ("crate::a::e".into(), None, true),
                ("crate::a::f::g".into(), Some("g".into()), false),
                ("crate::a::f::h".into(), None, false),
                ("super::x".into(), Some("x".into()), false),
            ]
        );
    }

    #[test]
    fn modules_inline_scopes_and_test_start() {
        let s = scan(
            "mod a;\n#[path = \"other.rs\"]\npub mod b;\nmod inner {\n    mod c;\n    use crate::a::X;\n}\nfn f() { crate::b::g(); }\n#[cfg(test)]\nmod tests { use super::*; }\n",
        );
        let decls: Vec<_> = s
            .decls
            .iter()
            .map(|d| (d.scope.join("::"), d.name.clone(), d.path.clone()))
            .collect();
        assert_eq!(
            decls,
            vec![
                (String::new(), "a".into(), None),
                (String::new(), "b".into(), Some("other.rs".into())),
                ("inner".into(), "c".into(), None),
            ]
        );
        assert_eq!(
            s.inline,
            vec![vec!["inner".to_string()], vec!["tests".to_string()]]
        );
        assert_eq!(s.uses[0].scope, vec!["inner".to_string()]);
        assert_eq!(s.uses[1].scope, vec!["tests".to_string()]);
        assert_eq!(s.refs.len(), 1);
        assert_eq!(s.refs[0].path, ["crate", "b", "g"]);
        assert_eq!(s.refs[0].scope, Scope::new());
        assert_eq!(s.tests_from, Some(9));
        assert!(s.defs.contains(&(Scope::new(), "f".into())));
    }

    #[test]
    fn exported_macros_and_dollar_crate() {
        let s = scan("#[macro_export]\nmacro_rules! m { () => { $crate::p::w() } }\nmacro_rules! local { () => {} }");
        assert_eq!(s.exported_macros, ["m"]);
        assert!(s.refs.iter().any(|r| r.path == ["crate", "p", "w"]));
    }
}
