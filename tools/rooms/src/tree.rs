//! One crate's module tree, read from its root file by following `mod` declarations, and the
//! graph of its source files that the module paths in each file draw.
//!
//! A path resolves to the deepest module of the crate it names (`crate::a::b::f` is module
//! `a::b` when `b` is a module and `f` is not). When the next segment is a name that module
//! only imports (`use` or `pub use`), the import is followed to where the name is defined: a
//! re-export is a signpost, not a dependency on the module that re-exports. A `use` that names
//! a module itself (`use crate::a;`) draws no edge; the paths through it (`a::f()`) do.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::scan::{scan, FileScan, Scope};

/// Reads source files: the disk, or a map in tests.
pub trait Source {
    /// The file's text, if it exists.
    fn read(&self, path: &Path) -> Option<String>;
}

/// The real file system.
pub struct Disk;

impl Source for Disk {
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

#[derive(Debug, Default)]
struct Module {
    file: usize,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// Name -> the path it was imported from (as written, relative to this module).
    imports: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    defs: HashSet<String>,
}

/// A source file of the crate.
#[derive(Debug)]
pub struct File {
    /// Its path.
    pub path: PathBuf,
    /// Lines before its first `#[cfg(test)]` (all of them when it has none).
    pub code_lines: usize,
}

/// An import of one file by another: the first line that draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The importing file.
    pub from: usize,
    /// The imported file.
    pub to: usize,
    /// The importing line.
    pub line: usize,
}

/// A crate's files and the imports between them.
#[derive(Debug)]
pub struct Crate {
    /// Its files, the root first.
    pub files: Vec<File>,
    /// One edge per (importing file, imported file), at its first line.
    pub edges: Vec<Edge>,
}

struct Builder<'a> {
    source: &'a dyn Source,
    files: Vec<File>,
    scans: Vec<FileScan>,
    modules: Vec<Module>,
    /// (file, inline scope) -> module.
    scopes: HashMap<(usize, Scope), usize>,
    macros: HashMap<String, usize>,
}

/// Reads the crate whose root file is `root` and draws its file graph.
pub fn load(root: &Path, source: &dyn Source) -> Crate {
    let mut b = Builder {
        source,
        files: Vec::new(),
        scans: Vec::new(),
        modules: Vec::new(),
        scopes: HashMap::new(),
        macros: HashMap::new(),
    };
    b.add_file(root, None, true);
    let edges = b.edges();
    Crate {
        files: b.files,
        edges,
    }
}

impl Builder<'_> {
    /// Reads `path` as a module (child of `parent`) and every module it declares.
    fn add_file(&mut self, path: &Path, parent: Option<usize>, is_root: bool) -> Option<usize> {
        let text = self.source.read(path)?;
        let scan = scan(&text);
        let lines = text.lines().count();
        let file = self.files.len();
        self.files.push(File {
            path: path.to_path_buf(),
            code_lines: scan.tests_from.map_or(lines, |l| l.saturating_sub(1)),
        });
        // Filled in below, once the children (which take the next indices) are read.
        self.scans.push(FileScan::default());
        let module = self.new_module(file, parent);
        self.scopes.insert((file, Scope::new()), module);
        for scope in &scan.inline {
            let (name, outer) = scope.split_last().expect("an inline module has a name");
            let outer = self.scopes[&(file, outer.to_vec())];
            let m = self.new_module(file, Some(outer));
            self.modules[outer].children.insert(name.clone(), m);
            self.scopes.insert((file, scope.clone()), m);
        }
        // Children of a crate root or a mod.rs live beside it; those of a.rs live in a/.
        let own_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let child_dir = if is_root || path.file_name().is_some_and(|n| n == "mod.rs") {
            own_dir.clone()
        } else {
            path.with_extension("")
        };
        for d in &scan.decls {
            let mut dir = child_dir.clone();
            dir.extend(d.scope.iter());
            let candidates = match &d.path {
                Some(p) if d.scope.is_empty() => vec![own_dir.join(p)],
                Some(p) => vec![dir.join(p)],
                None => vec![
                    dir.join(format!("{}.rs", d.name)),
                    dir.join(&d.name).join("mod.rs"),
                ],
            };
            let outer = self.scopes[&(file, d.scope.clone())];
            for c in candidates {
                if let Some(child) = self.add_file(&c, Some(outer), false) {
                    self.modules[outer].children.insert(d.name.clone(), child);
                    break;
                }
            }
        }
        for u in &scan.uses {
            let m = self.scopes[&(file, u.scope.clone())];
            if u.glob {
                self.modules[m].globs.push(u.path.clone());
            } else if let Some(name) = &u.name {
                self.modules[m].imports.insert(name.clone(), u.path.clone());
            }
        }
        for (scope, name) in &scan.defs {
            let m = self.scopes[&(file, scope.clone())];
            self.modules[m].defs.insert(name.clone());
        }
        for name in &scan.exported_macros {
            self.macros.insert(name.clone(), module);
        }
        self.scans[file] = scan;
        Some(module)
    }

    fn new_module(&mut self, file: usize, parent: Option<usize>) -> usize {
        self.modules.push(Module {
            file,
            parent,
            ..Module::default()
        });
        self.modules.len() - 1
    }

    fn edges(&self) -> Vec<Edge> {
        let mut first: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut add = |from: usize, to: usize, line: usize| {
            if from != to {
                let l = first.entry((from, to)).or_insert(line);
                *l = (*l).min(line);
            }
        };
        for (file, scan) in self.scans.iter().enumerate() {
            for u in &scan.uses {
                let m = self.scopes[&(file, u.scope.clone())];
                let target = if u.glob {
                    self.path_module(m, &u.path, 0)
                } else {
                    // A module imported by name draws no edge of its own (see the module docs).
                    match self.resolve(m, &u.path, 0) {
                        Some((t, true)) => Some(t),
                        _ => None,
                    }
                };
                if let Some(t) = target {
                    add(file, self.modules[t].file, u.line);
                }
            }
            for r in &scan.refs {
                let m = self.scopes[&(file, r.scope.clone())];
                if let Some((t, _)) = self.resolve(m, &r.path, 0) {
                    add(file, self.modules[t].file, r.line);
                }
            }
        }
        first
            .into_iter()
            .map(|((from, to), line)| Edge { from, to, line })
            .collect()
    }

    /// Where a path's first segment anchors it: the module to start from, the rest, and
    /// whether the anchor is already an item (a type or function imported by name).
    fn anchor<'p>(
        &self,
        m: usize,
        path: &'p [String],
        depth: usize,
    ) -> Option<(usize, &'p [String], bool)> {
        let first = path.first()?;
        match first.as_str() {
            "crate" => Some((0, &path[1..], false)),
            "self" | "super" => Some((m, path, false)),
            "::" => None,
            name if self.modules[m].children.contains_key(name) => Some((m, path, false)),
            name => {
                // A name this module imported: `use crate::a; a::f()`.
                let from = self.modules[m].imports.get(name)?;
                let (target, item) = self.resolve(m, from, depth + 1)?;
                Some((target, &path[1..], item))
            }
        }
    }

    /// The module a path names, and whether it names an item in it (`true`) rather than the
    /// module itself. `None` for paths outside the crate.
    fn resolve(&self, m: usize, path: &[String], depth: usize) -> Option<(usize, bool)> {
        if depth > 16 {
            return None;
        }
        let (mut cur, rest, item) = self.anchor(m, path, depth)?;
        if item {
            return Some((cur, true));
        }
        for seg in rest {
            match seg.as_str() {
                "self" => {}
                "super" => cur = self.modules[cur].parent?,
                name => match self.modules[cur].children.get(name) {
                    Some(&c) => cur = c,
                    None => return self.item(cur, name, depth).map(|t| (t, true)),
                },
            }
        }
        Some((cur, false))
    }

    /// The module that defines `name` as seen from module `m`: through imports and globs.
    /// `None` when the name is imported from another crate: a module that only passes on
    /// another crate's item (`pub use other::Thing;`) holds none of its logic, so a file that
    /// reaches the item through it does not depend on it.
    fn item(&self, m: usize, name: &str, depth: usize) -> Option<usize> {
        let module = &self.modules[m];
        if let Some(from) = module.imports.get(name) {
            return self.resolve(m, from, depth + 1).map(|(t, _)| t);
        }
        if module.defs.contains(name) {
            return Some(m);
        }
        if m == 0 {
            if let Some(&d) = self.macros.get(name) {
                return Some(d);
            }
        }
        for g in &module.globs {
            if let Some(gm) = self.path_module(m, g, depth + 1) {
                let inner = &self.modules[gm];
                if inner.defs.contains(name) || inner.imports.contains_key(name) {
                    return self.item(gm, name, depth + 1);
                }
            }
        }
        Some(m)
    }

    /// The module a path names when all of it is modules (a glob's source).
    fn path_module(&self, m: usize, path: &[String], depth: usize) -> Option<usize> {
        self.resolve(m, path, depth).map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map(HashMap<PathBuf, String>);

    impl Source for Map {
        fn read(&self, path: &Path) -> Option<String> {
            self.0.get(path).cloned()
        }
    }

    fn graph(files: &[(&str, &str)]) -> Vec<(String, String, usize)> {
        let map = Map(files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect());
        let c = load(Path::new("src/lib.rs"), &map);
        let name = |i: usize| c.files[i].path.display().to_string();
        let mut edges: Vec<_> = c
            .edges
            .iter()
            .map(|e| (name(e.from), name(e.to), e.line))
            .collect();
        edges.sort();
        edges
    }

    #[test]
    fn another_crate_s_item_passed_on_by_a_parent_draws_no_edge() {
        let edges = graph(&[
            ("src/lib.rs", "mod h;\n"),
            (
                "src/h/mod.rs",
                "mod c;\npub use other::Completed;\npub use c::Check;\n",
            ),
            ("src/h/c.rs", "use super::Completed;\npub struct Check;\n"),
        ]);
        assert_eq!(edges, vec![("src/h/mod.rs".into(), "src/h/c.rs".into(), 3)]);
    }

    #[test]
    fn paths_resolve_to_the_deepest_module_file() {
        let edges = graph(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "mod inner;\nuse crate::b::X;\n"),
            ("src/a/inner.rs", "fn f() { super::super::b::g(); }\n"),
            ("src/b/mod.rs", "pub struct X;\npub fn g() {}\n"),
        ]);
        assert_eq!(
            edges,
            vec![
                ("src/a.rs".into(), "src/b/mod.rs".into(), 2),
                ("src/a/inner.rs".into(), "src/b/mod.rs".into(), 1),
            ]
        );
    }

    #[test]
    fn re_exports_are_followed_to_the_defining_file() {
        let edges = graph(&[
            ("src/lib.rs", "mod room;\npub use room::Thing;\n"),
            (
                "src/room/mod.rs",
                "mod low;\nmod high;\npub use low::Thing;\n",
            ),
            ("src/room/low.rs", "pub struct Thing;\n"),
            (
                "src/room/high.rs",
                "use super::Thing;\nuse crate::Thing as T2;\n",
            ),
        ]);
        assert!(edges.contains(&("src/room/high.rs".into(), "src/room/low.rs".into(), 1)));
        // The parent's re-export is a downward edge; the child never points at the parent.
        assert!(edges.contains(&("src/room/mod.rs".into(), "src/room/low.rs".into(), 3)));
        assert!(!edges
            .iter()
            .any(|(f, t, _)| f.starts_with("src/room/") && t == "src/room/mod.rs"));
    }

    #[test]
    fn a_child_using_its_parents_own_logic_points_at_the_parent() {
        let edges = graph(&[
            ("src/lib.rs", "mod room;\n"),
            (
                "src/room/mod.rs",
                "mod child;\npub fn helper() {}\nfn run() { child::go(); }\n",
            ),
            ("src/room/child.rs", "pub fn go() { super::helper(); }\n"),
        ]);
        assert!(edges.contains(&("src/room/child.rs".into(), "src/room/mod.rs".into(), 1)));
        assert!(edges.contains(&("src/room/mod.rs".into(), "src/room/child.rs".into(), 3)));
    }

    #[test]
    fn modules_imported_by_name_draw_edges_through_their_uses_and_macros_live_where_defined() {
        let edges = graph(&[
            ("src/lib.rs", "mod a;\nmod p;\npub use crate::__m as m;\n"),
            ("src/a.rs", "use crate::p;\n\nfn f() { p::go(); crate::__m!(); }\n#[cfg(test)]\nmod tests { use super::*; }\n"),
            ("src/p.rs", "pub fn go() {}\n#[macro_export]\nmacro_rules! __m { () => {} }\n"),
        ]);
        assert_eq!(
            edges,
            vec![
                ("src/a.rs".into(), "src/p.rs".into(), 3),
                ("src/lib.rs".into(), "src/p.rs".into(), 3),
            ]
        );
    }

    #[test]
    fn code_lines_stop_at_the_tests() {
        let map = Map([(
            PathBuf::from("src/lib.rs"),
            "fn a() {}\n\n#[cfg(test)]\nmod tests {}\n".to_string(),
        )]
        .into_iter()
        .collect());
        let c = load(Path::new("src/lib.rs"), &map);
        assert_eq!(c.files[0].code_lines, 2);
    }
}
