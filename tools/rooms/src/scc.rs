//! Strongly connected components (Tarjan's algorithm) of a small directed graph, and a shortest
//! loop through one, to show a cycle as a path a reader can follow.

use std::collections::VecDeque;

/// The components of the graph on `n` nodes with `edges`, that hold a cycle: two nodes or more
/// (self-loops are not counted). Each is sorted; the list is in order of its smallest node.
pub fn cycles(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
    }
    let mut t = Tarjan {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut out: Vec<Vec<usize>> = t.out.into_iter().filter(|c| c.len() > 1).collect();
    for c in &mut out {
        c.sort_unstable();
    }
    out.sort();
    out
}

struct Tarjan<'a> {
    adj: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    /// Recursive: source-file graphs are a few hundred nodes deep at most.
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.adj[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.out.push(component);
        }
    }
}

/// A shortest loop from `start` back to itself using only nodes of `component`
/// (breadth-first): `[start, a, b, start]`.
pub fn shortest_loop(start: usize, component: &[usize], edges: &[(usize, usize)]) -> Vec<usize> {
    let inside = |v: usize| component.binary_search(&v).is_ok();
    let size = component.iter().max().map_or(0, |m| m + 1).max(start + 1);
    let mut prev: Vec<Option<usize>> = vec![None; size];
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &(a, b) in edges {
            if a != v || !inside(b) {
                continue;
            }
            if b == start {
                let mut path = vec![v];
                let mut cur = v;
                while let Some(p) = prev[cur].filter(|_| cur != start) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if prev[b].is_none() {
                prev[b] = Some(v);
                queue.push_back(b);
            }
        }
    }
    vec![start]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acyclic_graphs_have_no_cycles() {
        assert!(cycles(4, &[(0, 1), (1, 2), (0, 2), (2, 3)]).is_empty());
        assert!(cycles(1, &[(0, 0)]).is_empty());
        assert!(cycles(0, &[]).is_empty());
    }

    #[test]
    fn components_are_found_and_sorted() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 <-> 4, 5 alone.
        let edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 3)];
        assert_eq!(cycles(6, &edges), vec![vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn shortest_loops_follow_edges_back_to_the_start() {
        let edges = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 3), (3, 4), (4, 3)];
        assert_eq!(shortest_loop(0, &[0, 1, 2], &edges), vec![0, 1, 0]);
        assert_eq!(shortest_loop(2, &[0, 1, 2], &edges), vec![2, 0, 1, 2]);
        assert_eq!(shortest_loop(3, &[3, 4], &edges), vec![3, 4, 3]);
    }
}
