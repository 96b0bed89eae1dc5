//! The dependency graph: services, jobs and layer barriers as nodes, `depends_on` as edges that
//! carry their condition. Waves are topological levels (what can run together); the critical
//! path is the longest chain, which bounds how fast a deploy can be. Order is deterministic:
//! names sort, and nothing depends on hash order.

use crate::diagnostics::Diagnostic;
use crate::model::stack::{Condition, Kind, Stack};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Service(Kind),
    /// Everything in a layer folder has started; the next layer waits for it.
    Barrier,
}

#[derive(Debug, Clone)]
pub struct GraphNode {
    pub name: String,
    pub kind: NodeKind,
}

/// Edges point from a dependency to the service that waits for it.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    graph: DiGraph<GraphNode, Condition>,
    index: BTreeMap<String, NodeIndex>,
    /// Topological level of each node (by node index), computed once when the graph is built.
    level: Vec<usize>,
}

/// The barrier node that closes a layer.
pub fn barrier_name(layer: &str) -> String {
    format!("layer:{layer}")
}

impl DependencyGraph {
    /// Builds the graph of the active services. Dependencies on unknown or inactive services are
    /// left out (validation reports them); a cycle is an error printed as its full path.
    pub fn build(stack: &Stack) -> Result<DependencyGraph, Diagnostic> {
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for (name, service) in &stack.services {
            index.insert(name.clone(), graph.add_node(GraphNode { name: name.clone(), kind: NodeKind::Service(service.kind) }));
        }
        for (name, service) in &stack.services {
            // A self-dependency is reported by validation; as an edge it would also be a cycle.
            for dependency in service.depends_on.iter().filter(|d| d.service != *name) {
                if let Some(&from) = index.get(&dependency.service) {
                    graph.add_edge(from, index[name], dependency.condition);
                }
            }
        }
        // Layers: a barrier after each non-empty layer that a later one waits for (the last
        // layer's would be a dangling node on the critical path); the next layer waits for it.
        let layers: Vec<&(String, Vec<String>)> = stack.layers.iter().filter(|(_, m)| !m.is_empty()).collect();
        for pair in layers.windows(2) {
            let ((layer, members), (_, next_members)) = (pair[0], pair[1]);
            let barrier = graph.add_node(GraphNode { name: barrier_name(layer), kind: NodeKind::Barrier });
            index.insert(barrier_name(layer), barrier);
            for member in members {
                graph.add_edge(index[member], barrier, Condition::ServiceStarted);
            }
            for member in next_members {
                graph.add_edge(barrier, index[member], Condition::ServiceStarted);
            }
        }
        let mut built = DependencyGraph { graph, index, level: Vec::new() };
        if let Some(cycle) = built.find_cycle() {
            let first = &cycle[0];
            let pos = stack.services.get(first).map(|s| s.pos);
            return Err(Diagnostic::error(pos, format!("dependency cycle: {}", cycle.join(" -> ")))
                .with_hint("remove one of these depends_on entries (layer folders order services implicitly)"));
        }
        built.level = built.compute_levels();
        Ok(built)
    }

    /// A shortest cycle as `a -> b -> … -> a`, read "a depends on b", through the smallest name
    /// of the first cyclic component. Breadth-first and iterative: a cycle of 100,000 services
    /// is found without deep recursion or quadratic scans.
    fn find_cycle(&self) -> Option<Vec<String>> {
        let name = |i: NodeIndex| self.graph[i].name.as_str();
        // kosaraju_scc walks with an explicit stack; tarjan_scc recurses once per node.
        let start = kosaraju_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]))
            .filter_map(|c| c.into_iter().min_by(|a, b| name(*a).cmp(name(*b))))
            .min_by(|a, b| name(*a).cmp(name(*b)))?;
        let mut parent: Vec<Option<NodeIndex>> = vec![None; self.graph.node_count()];
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(current) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self.graph.neighbors_directed(current, Direction::Incoming).collect();
            next.sort_by(|a, b| name(*a).cmp(name(*b)));
            for candidate in next {
                if candidate == start {
                    let mut path = vec![start];
                    let mut at = current;
                    while at != start {
                        path.push(at);
                        at = parent[at.index()].unwrap_or(start);
                    }
                    let mut names: Vec<String> = std::iter::once(start).chain(path.into_iter().skip(1).rev()).map(|i| name(i).to_string()).collect();
                    names.push(name(start).to_string());
                    return Some(names);
                }
                if parent[candidate.index()].is_none() {
                    parent[candidate.index()] = Some(current);
                    queue.push_back(candidate);
                }
            }
        }
        None
    }

    pub fn nodes(&self) -> impl Iterator<Item = &GraphNode> {
        self.index.values().map(|&i| &self.graph[i])
    }

    /// What `name` waits for, with conditions, sorted by name.
    pub fn dependencies(&self, name: &str) -> Vec<(&str, Condition)> {
        let Some(&node) = self.index.get(name) else { return Vec::new() };
        let mut deps: Vec<(&str, Condition)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (self.graph[e.source()].name.as_str(), *e.weight()))
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }

    /// Level of each node: 0 for nodes with no dependencies, else one more than the deepest one.
    fn compute_levels(&self) -> Vec<usize> {
        let mut level = vec![0; self.graph.node_count()];
        let order = petgraph::algo::toposort(&self.graph, None).unwrap_or_default();
        for node in order {
            level[node.index()] = self.graph.neighbors_directed(node, Direction::Incoming).map(|d| level[d.index()] + 1).max().unwrap_or(0);
        }
        level
    }

    fn levels(&self) -> BTreeMap<&str, usize> {
        self.index.iter().map(|(name, i)| (name.as_str(), self.level[i.index()])).collect()
    }

    /// Services grouped by topological level; each wave only depends on earlier waves.
    pub fn waves(&self) -> Vec<Vec<String>> {
        let mut waves: Vec<Vec<String>> = Vec::new();
        for (name, level) in self.levels() {
            if waves.len() <= level {
                waves.resize(level + 1, Vec::new());
            }
            waves[level].push(name.to_string());
        }
        waves
    }

    /// The longest dependency chain, first dependency first; ties break by name.
    pub fn critical_path(&self) -> Vec<String> {
        let levels = self.levels();
        let Some((&end, _)) = levels.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))) else {
            return Vec::new();
        };
        let mut path = vec![end.to_string()];
        let mut current = end;
        while levels[current] > 0 {
            let node = self.index[current];
            let previous = self
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|d| self.graph[d].name.as_str())
                .filter(|d| levels[d] + 1 == levels[current])
                .min()
                .expect("a node above level 0 has a dependency one level down");
            path.push(previous.to_string());
            current = previous;
        }
        path.reverse();
        path
    }

    fn label(&self, name: &str) -> String {
        match self.graph[self.index[name]].kind {
            NodeKind::Service(Kind::Deployment) => name.to_string(),
            NodeKind::Service(kind) => format!("{name} ({})", format!("{kind:?}").to_lowercase()),
            NodeKind::Barrier => name.to_string(),
        }
    }

    /// Waves, each service with what it waits for, then the critical path.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (number, wave) in self.waves().iter().enumerate() {
            let _ = writeln!(out, "wave {number}:");
            for name in wave {
                let deps = self.dependencies(name);
                if deps.is_empty() {
                    let _ = writeln!(out, "  {}", self.label(name));
                } else {
                    let waits: Vec<String> = deps.iter().map(|(d, c)| format!("{d} ({})", c.as_str())).collect();
                    let _ = writeln!(out, "  {} <- {}", self.label(name), waits.join(", "));
                }
            }
        }
        let _ = writeln!(out, "critical path: {}", self.critical_path().join(" -> "));
        out
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph stack {\n  rankdir=LR;\n  node [shape=box];\n");
        for (number, wave) in self.waves().iter().enumerate() {
            let _ = writeln!(out, "  subgraph wave_{number} {{ rank=same;");
            for name in wave {
                let shape = match self.graph[self.index[name]].kind {
                    NodeKind::Barrier => ", shape=point, xlabel=\"".to_string() + name + "\"",
                    NodeKind::Service(Kind::Job) => ", shape=cds".into(),
                    NodeKind::Service(Kind::Statefulset) => ", shape=cylinder".into(),
                    NodeKind::Service(Kind::Daemonset) => ", shape=box3d".into(),
                    NodeKind::Service(Kind::Deployment) => String::new(),
                };
                let _ = writeln!(out, "    \"{name}\" [label=\"{}\"{shape}];", self.label(name));
            }
            out.push_str("  }\n");
        }
        for (from, to, condition) in self.sorted_edges() {
            let _ = writeln!(out, "  \"{from}\" -> \"{to}\" [label=\"{}\"];", condition.as_str());
        }
        out.push_str("}\n");
        out
    }

    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let ids = self.mermaid_ids();
        let id = |name: &str| ids.get(name).cloned().unwrap_or_default();
        for node in self.nodes() {
            let shape = match node.kind {
                NodeKind::Barrier => format!("{}{{{{\"{}\"}}}}", id(&node.name), node.name),
                NodeKind::Service(Kind::Job) => format!("{}[/\"{}\"/]", id(&node.name), self.label(&node.name)),
                NodeKind::Service(Kind::Statefulset) => format!("{}[(\"{}\")]", id(&node.name), self.label(&node.name)),
                _ => format!("{}[\"{}\"]", id(&node.name), self.label(&node.name)),
            };
            let _ = writeln!(out, "  {shape}");
        }
        for (from, to, condition) in self.sorted_edges() {
            let label = match condition {
                Condition::ServiceStarted => "started",
                Condition::ServiceHealthy => "healthy",
                Condition::ServiceCompletedSuccessfully => "completed",
            };
            let _ = writeln!(out, "  {} -->|{label}| {}", id(from), id(to));
        }
        out
    }

    /// Mermaid node ids: names with other characters than letters and digits replaced by `_`,
    /// made unique (`my-app` and `my_app` would both be `my_app`) in name order.
    fn mermaid_ids(&self) -> BTreeMap<&str, String> {
        let mut taken = std::collections::BTreeSet::new();
        let mut ids = BTreeMap::new();
        for name in self.index.keys() {
            let base = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
            let mut id = base.clone();
            let mut suffix = 2;
            while !taken.insert(id.clone()) {
                id = format!("{base}_{suffix}");
                suffix += 1;
            }
            ids.insert(name.as_str(), id);
        }
        ids
    }

    fn sorted_edges(&self) -> Vec<(&str, &str, Condition)> {
        let mut edges: Vec<(&str, &str, Condition)> = self
            .graph
            .edge_references()
            .map(|e| (self.graph[e.source()].name.as_str(), self.graph[e.target()].name.as_str(), *e.weight()))
            .collect();
        edges.sort();
        edges
    }
}
