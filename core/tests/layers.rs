//! The crate's modules form layers: no module uses, directly or through
//! others, a module that uses it back (the crate doc lists the layers).
//!
//! Read from the sources: every `crate::<module>` path in code (not in
//! comments, so doc links may point up) outside the unit tests is an edge
//! from the top-level module of its file to `<module>`. Tests may reach
//! across layers; shipped code may not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules and what each one's code names of the others.
fn module_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name != "lib" {
            graph.entry(name).or_default();
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let mut files = Vec::new();
    collect_files(&src, &mut files);
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.iter().next().unwrap().to_str().unwrap();
        let top = top.strip_suffix(".rs").unwrap_or(top).to_owned();
        if top == "lib" {
            continue;
        }
        for used in crate_paths(&fs::read_to_string(&file).unwrap()) {
            if used != top && modules.contains(&used) {
                graph.get_mut(&top).unwrap().insert(used);
            }
        }
    }
    graph
}

/// The crate's source files, unit-test files left out.
fn collect_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if path.is_dir() {
            if name != "tests" {
                collect_files(&path, files);
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            files.push(path);
        }
    }
}

/// The first segment of every `crate::` path in `source`'s code, up to its
/// inline `#[cfg(test)] mod ... {`.
fn crate_paths(source: &str) -> Vec<String> {
    let mut used = Vec::new();
    let mut lines = source.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if line == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.starts_with("mod ") && next.ends_with('{'))
        {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                used.push(module);
            }
        }
    }
    used
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for used in &graph[module] {
            if let Some(cycle) = visit(used, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let graph = module_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle among core's modules: {}\nthe graph: {graph:#?}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_nexus_facing_types_are_below_the_node() {
    let graph = module_graph();
    assert!(
        graph["node"].contains("api"),
        "the node answers with api's types"
    );
    for lower in ["api", "wire"] {
        assert!(
            !graph[lower].contains("node"),
            "{lower} uses the node: {:?}",
            graph[lower]
        );
    }
}

#[test]
fn a_cycle_is_found() {
    let edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")];
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    assert_eq!(find_cycle(&graph).unwrap().join(" -> "), "a -> b -> c -> a");
    graph.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn paths_in_comments_and_unit_tests_are_not_uses() {
    let source = "use crate::ids::Epoch;\n/// [`crate::node::Node`]\nfn f() { crate::wire::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::node::Node;\n}\n";
    assert_eq!(crate_paths(source), ["ids", "wire"]);
}
