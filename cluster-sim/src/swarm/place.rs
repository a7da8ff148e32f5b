//! Placement: which engine each node of a cluster runs on. A `[[node]] engine` key pins a
//! node; the others follow the spec's `placement`: `spread` (the default) puts each node on the
//! engine holding the fewest of this cluster's nodes for its capacity, then the one with the
//! lowest share of its capacity in use (every cluster's nodes), earlier engines first on a tie,
//! so a cluster of N nodes over N engines has one on each whatever else runs there; `pack`
//! fills the engines in file order, each up to its capacity.

use crate::error::BackendError;
use crate::spec::{ClusterSpec, Placement};

/// An engine as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Its name in the engines file.
    pub(crate) name: String,
    /// Most nodes on it.
    pub(crate) capacity: usize,
    /// Nodes already on it (of every cluster).
    pub(crate) used: usize,
}

/// The engine (index into `slots`) of each node of `spec`, in spec order; an unknown engine
/// name or a cluster that does not fit is one clear error.
pub(crate) fn place(
    cluster: &str,
    spec: &ClusterSpec,
    slots: &[Slot],
) -> Result<Vec<usize>, BackendError> {
    let mut used: Vec<usize> = slots.iter().map(|s| s.used).collect();
    // This cluster's nodes on each engine.
    let mut mine: Vec<usize> = vec![0; slots.len()];
    let mut out = vec![usize::MAX; spec.nodes.len()];
    // Pinned nodes first, so the others fill around them.
    for (i, n) in spec.nodes.iter().enumerate() {
        let Some(name) = &n.engine else { continue };
        let e = slots.iter().position(|s| &s.name == name).ok_or_else(|| {
            let names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
            BackendError::refused(
                format!("node {} of {cluster}: engine {name:?}", n.name),
                format!("no such engine (the engines file has {})", names.join(", ")),
            )
        })?;
        if used[e] >= slots[e].capacity {
            return Err(full(cluster, &n.name, Some(&slots[e])));
        }
        used[e] += 1;
        mine[e] += 1;
        out[i] = e;
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        if out[i] != usize::MAX {
            continue;
        }
        let open = (0..slots.len()).filter(|&e| used[e] < slots[e].capacity);
        let chosen = match spec.placement {
            Placement::Pack => open.min(),
            // Lowest share of this cluster, then of everything, compared without division;
            // ties to the earlier engine.
            Placement::Spread => open.min_by(|&a, &b| {
                let share =
                    |of: &[usize]| (of[a] * slots[b].capacity).cmp(&(of[b] * slots[a].capacity));
                share(&mine).then(share(&used)).then(a.cmp(&b))
            }),
        };
        let e = chosen.ok_or_else(|| full(cluster, &n.name, None))?;
        used[e] += 1;
        mine[e] += 1;
        out[i] = e;
    }
    Ok(out)
}

fn full(cluster: &str, node: &str, slot: Option<&Slot>) -> BackendError {
    match slot {
        Some(s) => BackendError::refused(
            format!("node {node} of {cluster}: engine {}", s.name),
            format!(
                "it is full ({} nodes of capacity {}; raise `capacity` in the engines file)",
                s.used, s.capacity
            ),
        ),
        None => BackendError::refused(
            format!("node {node} of {cluster}"),
            "every engine is full (raise `capacity` in the engines file, or add engines)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ClusterSpec {
        ClusterSpec::parse(text, "t.toml", std::path::Path::new("."), "t").expect("spec")
    }

    fn slots(caps: &[(usize, usize)]) -> Vec<Slot> {
        caps.iter()
            .enumerate()
            .map(|(i, &(capacity, used))| Slot {
                name: format!("e{i}"),
                capacity,
                used,
            })
            .collect()
    }

    #[test]
    fn spread_pack_and_pins() {
        let six = spec("nodes = 6");
        assert_eq!(
            place("c", &six, &slots(&[(10, 0), (10, 0), (10, 0)])).unwrap(),
            vec![0, 1, 2, 0, 1, 2]
        );
        // Spread puts the cluster on every engine first, however busy, then weighs what is
        // already there and each engine's capacity.
        assert_eq!(
            place("c", &six, &slots(&[(10, 4), (10, 0), (20, 0)])).unwrap(),
            vec![1, 2, 0, 2, 1, 2]
        );
        assert_eq!(
            place(
                "c",
                &spec("nodes = 3"),
                &slots(&[(100, 0), (100, 30), (100, 30)])
            )
            .unwrap(),
            vec![0, 1, 2]
        );
        let pack = spec("nodes = 6\nplacement = \"pack\"");
        assert_eq!(
            place("c", &pack, &slots(&[(4, 0), (10, 0)])).unwrap(),
            vec![0, 0, 0, 0, 1, 1]
        );
        let pinned = spec("nodes = 3\n[[node]]\nname = \"n3\"\nengine = \"e0\"\n");
        assert_eq!(
            place("c", &pinned, &slots(&[(10, 0), (10, 0)])).unwrap(),
            vec![1, 0, 0]
        );
    }

    #[test]
    fn unknown_engines_and_full_ones_are_one_line() {
        let pinned = spec("nodes = 2\n[[node]]\nname = \"n2\"\nengine = \"nope\"\n");
        let e = place("c", &pinned, &slots(&[(10, 0)]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "node n2 of c: engine \"nope\": no such engine (the engines file has e0)"
        );
        let e = place("c", &spec("nodes = 3"), &slots(&[(1, 0), (1, 0)]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("node n3 of c: every engine is full"), "{e}");
    }

    #[test]
    fn a_bad_placement_names_its_line() {
        let e = ClusterSpec::parse(
            "nodes = 2\nplacement = \"fill\"\n",
            "t.toml",
            std::path::Path::new("."),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("t.toml:2:"), "{e}");
        assert!(e.contains("placement"), "{e}");
    }
}
