//! No cycles between modules: between the crate's top-level rooms (`io`, `model`, `tiling`…) and
//! between sibling submodules at every depth (`model::bundle`, `model::import`…). A room that
//! reaches back into one that reaches it is no longer a room, and `architecture.md` draws the
//! house as a graph that flows one way.
//!
//! The check reads `src/` as text (no compiler, a few milliseconds): every `use` tree and every
//! `crate::`/`super::`/`self::` path outside comments and strings is resolved to the module that
//! defines the item, following `use` and `pub use` re-exports, and counts as a use of that module
//! and of every module whose re-export it goes through (`crate::model::ALIGNMENT` uses `model`
//! and `geometry`, where it is defined). An edge from `a::x::…` to `a::y::…` becomes an
//! edge between the siblings `a::x` and `a::y`; a parent using its child or a child its parent is
//! no cycle between rooms and is not counted. `src/bin` is another crate and is not read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep, // ::
    Punct(char),
}

fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    let skip_to = |i: &mut usize, line: &mut usize, end: usize| {
        *line += chars[*i..end.min(chars.len())].iter().filter(|&&c| c == '\n').count();
        *i = end;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            skip_to(&mut i, &mut line, j);
        } else if (c == 'r' || (c == 'b' && next == Some('r'))) && {
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            chars.get(start + hashes) == Some(&'"')
        } {
            // Raw string r#"…"#: ends at a quote followed by as many hashes.
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            let mut j = start + hashes + 1;
            while j < chars.len()
                && !(chars[j] == '"' && chars[j + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes)
            {
                j += 1;
            }
            skip_to(&mut i, &mut line, j + 1 + hashes);
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            skip_to(&mut i, &mut line, j + 1);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a), which has no closing quote.
            let j = if c == 'b' { i + 2 } else { i + 1 };
            if chars.get(j) == Some(&'\\') {
                let mut k = j + 2;
                while k < chars.len() && chars[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
            } else if chars.get(j + 1) == Some(&'\'') {
                i = j + 2;
            } else {
                i = j; // lifetime: its name is read as an identifier next
            }
        } else if c.is_alphanumeric() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            toks.push((Tok::Ident(chars[i..j].iter().collect()), line));
            i = j;
        } else if c == ':' && next == Some(':') {
            toks.push((Tok::Sep, line));
            i += 2;
        } else {
            toks.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    toks
}

/// A name a `use` brings into a module: `name` (or `*` for a glob) stands for `path` as written
/// there (resolved later, since it may be relative).
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    path: Vec<String>,
}

#[derive(Debug, Clone)]
struct Reference {
    from: ModPath,
    path: Vec<String>,
    site: String,
}

#[derive(Debug, Default)]
struct Crate {
    modules: BTreeSet<ModPath>,
    bindings: BTreeMap<ModPath, Vec<Binding>>,
    references: Vec<Reference>,
}

fn module_path_of(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("file name");
    let stem = last.trim_end_matches(".rs").to_string();
    if !(parts.is_empty() && stem == "lib") && stem != "mod" {
        parts.push(stem);
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("readable src").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Parses `use` trees starting at `toks[i]` (just after `use`); returns the leaves and the index
/// after the closing `;`.
fn parse_use_tree(toks: &[(Tok, usize)], mut i: usize, prefix: &[String], leaves: &mut Vec<Binding>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Sep) => i += 1,
            Some(Tok::Ident(name)) => {
                let mut bound = name.clone();
                if name == "self" && !path.is_empty() {
                    // `a::b::{self, …}` binds `b`.
                    bound = path.last().cloned().unwrap_or_default();
                    i += 1;
                } else {
                    path.push(name.clone());
                    i += 1;
                    if matches!(toks.get(i).map(|t| &t.0), Some(Tok::Sep)) {
                        continue;
                    }
                }
                if matches!(toks.get(i).map(|t| &t.0), Some(Tok::Ident(a)) if a == "as") {
                    if let Some((Tok::Ident(alias), _)) = toks.get(i + 1) {
                        bound = alias.clone();
                    }
                    i += 2;
                }
                leaves.push(Binding { name: bound, path });
                return i;
            }
            Some(Tok::Punct('*')) => {
                leaves.push(Binding { name: "*".to_string(), path: path.clone() });
                return i + 1;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => i = parse_use_tree(toks, i, &path, leaves),
                    }
                }
            }
            _ => return i,
        }
    }
}

fn read_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut krate = Crate::default();
    for file in files {
        if file.strip_prefix(src).expect("under src").starts_with("bin") {
            continue;
        }
        let base = module_path_of(src, &file);
        let shown = format!("src/{}", file.strip_prefix(src).expect("under src").display());
        let text = std::fs::read_to_string(&file).expect("readable source");
        let toks = tokenize(&text);
        krate.modules.insert(base.clone());
        // Inline `mod name { … }` blocks: (module path, brace depth at which it closes).
        let mut inline: Vec<(ModPath, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            let current = inline.last().map_or_else(|| base.clone(), |(m, _)| m.clone());
            let (tok, line) = (&toks[i].0, toks[i].1);
            match tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(word) if word == "mod" => {
                    if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                        (toks.get(i + 1), toks.get(i + 2))
                    {
                        let mut m = current.clone();
                        m.push(name.clone());
                        krate.modules.insert(m.clone());
                        inline.push((m, depth));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
                Tok::Ident(word) if word == "use" => {
                    let mut leaves = Vec::new();
                    i = parse_use_tree(&toks, i + 1, &[], &mut leaves);
                    for leaf in leaves {
                        let mut path = leaf.path.clone();
                        if leaf.name == "*" {
                            path.push("*".to_string());
                        }
                        krate.references.push(Reference {
                            from: current.clone(),
                            path,
                            site: format!("{shown}:{line}"),
                        });
                        krate.bindings.entry(current.clone()).or_default().push(leaf);
                    }
                    continue;
                }
                Tok::Ident(word) if matches!(word.as_str(), "crate" | "super" | "self") => {
                    let after_sep = i > 0 && matches!(toks[i - 1].0, Tok::Sep);
                    if !after_sep && matches!(toks.get(i + 1).map(|t| &t.0), Some(Tok::Sep)) {
                        let mut path = vec![word.clone()];
                        let mut j = i + 1;
                        while let (Some((Tok::Sep, _)), Some((Tok::Ident(seg), _))) = (toks.get(j), toks.get(j + 1)) {
                            path.push(seg.clone());
                            j += 2;
                        }
                        krate.references.push(Reference {
                            from: current.clone(),
                            path,
                            site: format!("{shown}:{line}"),
                        });
                        i = j;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    krate
}

impl Crate {
    /// The module that defines what `path` (as written in module `from`) names, or `None` for
    /// another crate (std, tch…). Every module whose re-export the path goes through is added to
    /// `via`: naming `crate::model::ALIGNMENT` uses `model` even when `geometry` defines it.
    fn resolve(
        &self,
        from: &ModPath,
        path: &[String],
        seen: &mut BTreeSet<(ModPath, String)>,
        via: &mut Vec<ModPath>,
    ) -> Option<ModPath> {
        let (first, rest) = path.split_first()?;
        let mut at: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.clone(),
            "super" => from[..from.len().saturating_sub(1)].to_vec(),
            name => {
                let mut child = from.clone();
                child.push(name.to_string());
                if self.modules.contains(&child) {
                    child
                } else {
                    // A name a `use` of this module brought in (2018 paths may start with one).
                    return self.through_binding(from, name, rest, seen, via);
                }
            }
        };
        let mut rest = rest;
        while let Some((segment, tail)) = rest.split_first() {
            match segment.as_str() {
                "super" => at.truncate(at.len().saturating_sub(1)),
                "self" => {}
                "*" => return Some(at),
                name => {
                    let mut child = at.clone();
                    child.push(name.to_string());
                    if self.modules.contains(&child) {
                        at = child;
                    } else {
                        // An item of `at`: defined there, or brought in by one of its `use`s.
                        via.push(at.clone());
                        return self.through_binding(&at, name, tail, seen, via).or(Some(at));
                    }
                }
            }
            rest = tail;
        }
        Some(at)
    }

    fn through_binding(
        &self,
        module: &ModPath,
        name: &str,
        tail: &[String],
        seen: &mut BTreeSet<(ModPath, String)>,
        via: &mut Vec<ModPath>,
    ) -> Option<ModPath> {
        if !seen.insert((module.clone(), name.to_string())) {
            return None;
        }
        let binding = self.bindings.get(module)?.iter().find(|b| b.name == name)?;
        let mut path = binding.path.clone();
        path.extend(tail.iter().cloned());
        self.resolve(module, &path, seen, via)
    }
}

/// Edges between siblings: (parent, from child, to child) → first site that makes it.
fn sibling_edges(krate: &Crate) -> BTreeMap<(ModPath, String, String), String> {
    let mut edges = BTreeMap::new();
    for r in &krate.references {
        let mut via = Vec::new();
        let Some(defined) = krate.resolve(&r.from, &r.path, &mut BTreeSet::new(), &mut via) else { continue };
        for to in via.into_iter().chain([defined]) {
            let common = r.from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == r.from.len() || common == to.len() {
                continue; // the same module, or a parent and its descendant
            }
            let key = (r.from[..common].to_vec(), r.from[common].clone(), to[common].clone());
            edges.entry(key).or_insert_with(|| format!("{} uses {}", r.site, r.path.join("::")));
        }
    }
    edges
}

fn show(parent: &ModPath, child: &str) -> String {
    let mut parts = vec!["crate".to_string()];
    parts.extend(parent.iter().cloned());
    parts.push(child.to_string());
    parts.join("::")
}

/// Every cycle between sibling modules of the crate rooted at `src`, each as readable lines; empty
/// when the graph flows one way.
pub fn module_cycles(src: &Path) -> Vec<String> {
    let krate = read_crate(src);
    let edges = sibling_edges(&krate);
    let mut by_parent: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, from, to) in edges.keys() {
        by_parent.entry(parent.clone()).or_default().entry(from.clone()).or_default().insert(to.clone());
    }
    let mut reported: BTreeSet<(ModPath, BTreeSet<String>)> = BTreeSet::new();
    let mut cycles = Vec::new();
    for (parent, graph) in &by_parent {
        for (from, targets) in graph {
            for to in targets {
                // The shortest way back from `to` to `from` closes a cycle through this edge.
                let mut previous: BTreeMap<String, String> = BTreeMap::new();
                let mut visited = BTreeSet::from([to.clone()]);
                let mut queue = VecDeque::from([to.clone()]);
                let mut found = false;
                while let Some(node) = queue.pop_front() {
                    if node == *from {
                        found = true;
                        break;
                    }
                    for next in graph.get(&node).into_iter().flatten() {
                        if visited.insert(next.clone()) {
                            previous.insert(next.clone(), node.clone());
                            queue.push_back(next.clone());
                        }
                    }
                }
                if !found {
                    continue;
                }
                let mut back = vec![from.clone()];
                let mut node = from.clone();
                while node != *to {
                    node = previous[&node].clone();
                    back.push(node.clone());
                }
                back.reverse();
                let mut ring = vec![from.clone()];
                ring.extend(back);
                let members: BTreeSet<String> = ring.iter().cloned().collect();
                if !reported.insert((parent.clone(), members)) {
                    continue;
                }
                let mut text =
                    format!("module cycle: {}", ring.iter().map(|m| show(parent, m)).collect::<Vec<_>>().join(" -> "));
                for pair in ring.windows(2) {
                    let site = &edges[&(parent.clone(), pair[0].clone(), pair[1].clone())];
                    text.push_str(&format!("\n    {} -> {}: {site}", show(parent, &pair[0]), show(parent, &pair[1])));
                }
                cycles.push(text);
            }
        }
    }
    cycles
}

/// The crate's top-level graph, one line per room: what it uses.
fn top_level_graph(src: &Path) -> String {
    let krate = read_crate(src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (parent, from, to) in sibling_edges(&krate).keys() {
        if parent.is_empty() {
            graph.entry(from.clone()).or_default().insert(to.clone());
        }
    }
    graph
        .iter()
        .map(|(from, to)| format!("{from} -> {}\n", to.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect()
}

#[test]
fn src_has_no_module_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    println!("top-level module graph (room -> rooms it uses):\n{}", top_level_graph(&src));
    let cycles = module_cycles(&src);
    assert!(cycles.is_empty(), "{} module cycle(s) in src/:\n{}", cycles.len(), cycles.join("\n"));
}

/// The check itself: a planted cycle at the top level (an item named through another room's
/// re-export, and an inline path),
/// one between sibling submodules, and mentions in comments, strings and char literals that
/// would close a third cycle if they counted.
#[test]
fn module_cycle_check_finds_planted_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |name: &str, text: &str| {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod geometry;\npub mod model;\npub mod tiling;\n");
    write(
        "geometry.rs",
        "pub const Q: char = '\"'; pub const B: u8 = b'{';\n// crate::model::ALIGN in a comment\n/* use crate::model; /* nested */ */\n\
         pub const ALIGNMENT: usize = 8;\npub const S: &str = \"crate::model::bundle::load \\\" crate::tiling\";\n\
         pub fn f<'a>(x: &'a str) -> &'a str { x }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    );
    write(
        "model/mod.rs",
        "pub mod net;\npub mod bundle;\npub mod import;\npub use crate::geometry::ALIGNMENT;\npub use net::ALIGN;\n",
    );
    write("model/net.rs", "pub const ALIGN: usize = super::ALIGNMENT;\n");
    write("model/bundle.rs", "use super::net::ALIGN;\npub fn load() { super::import::import(); }\n");
    write(
        "model/import.rs",
        "use super::bundle::{self, load};\npub fn import() { let _ = crate::tiling::round_up(1); }\n",
    );
    // Defined in geometry, but named through model's re-export: a use of model.
    write("tiling.rs", "use crate::model::ALIGNMENT;\npub fn round_up(v: usize) -> usize { v * ALIGNMENT }\n");
    write("bin/tool.rs", "use deepcad::tiling; fn main() {}\n");
    let cycles = module_cycles(src);
    let text = cycles.join("\n");
    assert_eq!(cycles.len(), 2, "{text}");
    assert!(text.contains("module cycle: crate::model -> crate::tiling -> crate::model"), "{text}");
    assert!(text.contains("crate::tiling -> crate::model: src/tiling.rs:1 uses crate::model::ALIGNMENT"), "{text}");
    assert!(
        text.contains("module cycle: crate::model::bundle -> crate::model::import -> crate::model::bundle"),
        "{text}"
    );
    assert!(!text.contains("geometry"), "comments and strings are no uses: {text}");
    // Break both and the check passes.
    write("tiling.rs", "use crate::geometry::ALIGNMENT;\npub fn round_up(v: usize) -> usize { v * ALIGNMENT }\n");
    write("model/bundle.rs", "use super::net::ALIGN;\npub fn load() {}\n");
    assert_eq!(module_cycles(src), Vec::<String>::new());
}
