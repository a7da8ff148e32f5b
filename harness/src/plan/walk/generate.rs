//! Which walks a definition yields: its shape (steps, options, generator), checked, and the
//! walks chosen from it, every combination or a seeded pairwise covering subset.

use std::collections::HashSet;
use std::fmt::{self, Display};

use cluster_sim_core::rng::SplitMix64;

/// How walks are chosen from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// Every combination.
    All,
    /// A covering subset in which every pair of options of any two actions appears in some
    /// walk, drawn with the seed (same seed and actions, same walks).
    Pairwise {
        /// The seed.
        seed: u64,
    },
}

impl Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Generator::All => f.write_str("all"),
            Generator::Pairwise { seed } => write!(f, "pairwise(seed={seed})"),
        }
    }
}

/// One step of a definition, as planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepShape {
    /// The action's name.
    pub name: String,
    /// Whether it is a serial action.
    pub serial: bool,
    /// Its options' labels.
    pub labels: Vec<String>,
}

/// What planning needs of a definition.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The steps in order.
    pub steps: Vec<StepShape>,
    /// The generator.
    pub generator: Generator,
}

/// A walk chosen by the generator: its option index for every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The walk's id (`w0007`).
    pub id: String,
    /// The option of every step.
    pub options: Vec<usize>,
    /// `action=option,...`.
    pub label: String,
}

/// Checks a definition's shape: what planning reports as an error (with the test's location).
pub fn validate(shape: &Shape) -> Result<(), String> {
    if shape.steps.is_empty() {
        return Err("the walk definition has no actions".into());
    }
    let mut names = HashSet::new();
    for s in &shape.steps {
        let bad = |what: &str| Err(format!("action {:?}: {what}", s.name));
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            return bad("a name is letters, digits, `_` and `-`");
        }
        if !names.insert(s.name.as_str()) {
            return bad("two actions have this name");
        }
        if s.labels.is_empty() {
            return bad("it has no options");
        }
        let mut seen = HashSet::new();
        for l in &s.labels {
            if l.is_empty() || l.contains(['[', ']', ',', '=', ' ', '\n']) || l.contains("::") {
                return bad(&format!(
                    "option {l:?} can't be a label (no spaces, `[`, `]`, `,`, `=` or `::`)"
                ));
            }
            if !seen.insert(l.as_str()) {
                return bad(&format!("option {l:?} is given twice"));
            }
        }
    }
    Ok(())
}

/// The walks the generator makes, in a stable order: ids `w0000`, `w0001`... by position.
pub fn generate(shape: &Shape) -> Vec<Chosen> {
    let sizes: Vec<usize> = shape.steps.iter().map(|s| s.labels.len()).collect();
    let rows = match shape.generator {
        Generator::All => all_combinations(&sizes),
        Generator::Pairwise { seed } => pairwise(&sizes, seed),
    };
    let width = rows.len().saturating_sub(1).to_string().len().max(4);
    rows.into_iter()
        .enumerate()
        .map(|(i, options)| {
            let label: Vec<String> = shape
                .steps
                .iter()
                .zip(&options)
                .map(|(s, o)| format!("{}={}", s.name, s.labels[*o]))
                .collect();
            Chosen {
                id: format!("w{i:0width$}"),
                options,
                label: label.join(","),
            }
        })
        .collect()
}

/// Every combination, the first step varying slowest.
fn all_combinations(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut rows = vec![Vec::new()];
    for &n in sizes {
        rows = rows
            .into_iter()
            .flat_map(|prefix: Vec<usize>| {
                (0..n).map(move |o| {
                    let mut r = prefix.clone();
                    r.push(o);
                    r
                })
            })
            .collect();
    }
    rows
}

/// A pairwise covering array, built greedily (AETG-style): each new row starts from a pair not
/// yet covered, and fills the other steps, in a seeded order, with the option that covers the
/// most new pairs; the best of a few candidates is kept. Deterministic for a seed.
fn pairwise(sizes: &[usize], seed: u64) -> Vec<Vec<usize>> {
    if sizes.len() < 3 {
        return all_combinations(sizes);
    }
    const CANDIDATES: usize = 24;
    let k = sizes.len();
    let mut uncovered: HashSet<(usize, usize, usize, usize)> = HashSet::new();
    for i in 0..k {
        for j in i + 1..k {
            for a in 0..sizes[i] {
                for b in 0..sizes[j] {
                    uncovered.insert((i, a, j, b));
                }
            }
        }
    }
    let mut rng = SplitMix64::new(seed);
    let mut rows: Vec<Vec<usize>> = Vec::new();
    while !uncovered.is_empty() {
        // The pairs left, in a stable order, so the seed alone decides.
        let mut left: Vec<_> = uncovered.iter().copied().collect();
        left.sort_unstable();
        let mut best: Option<(usize, Vec<usize>)> = None;
        for _ in 0..CANDIDATES {
            let (i, a, j, b) = left[rng.below(left.len())];
            let mut row: Vec<Option<usize>> = vec![None; k];
            row[i] = Some(a);
            row[j] = Some(b);
            let mut order: Vec<usize> = (0..k).filter(|&f| f != i && f != j).collect();
            rng.shuffle(&mut order);
            for f in order {
                let mut best_v = 0;
                let mut best_gain = None;
                let start = rng.below(sizes[f]);
                for step in 0..sizes[f] {
                    let v = (start + step) % sizes[f];
                    let gain = row
                        .iter()
                        .enumerate()
                        .filter_map(|(g, x)| x.map(|x| (g, x)))
                        .filter(|&(g, x)| {
                            let key = if g < f { (g, x, f, v) } else { (f, v, g, x) };
                            uncovered.contains(&key)
                        })
                        .count();
                    if best_gain.is_none_or(|b| gain > b) {
                        best_gain = Some(gain);
                        best_v = v;
                    }
                }
                row[f] = Some(best_v);
            }
            let row: Vec<usize> = row.into_iter().map(|x| x.unwrap_or(0)).collect();
            let gain = covered_by(&row, &uncovered);
            if best.as_ref().is_none_or(|(g, _)| gain > *g) {
                best = Some((gain, row));
            }
        }
        let Some((_, row)) = best else { break };
        for i in 0..k {
            for j in i + 1..k {
                uncovered.remove(&(i, row[i], j, row[j]));
            }
        }
        rows.push(row);
    }
    rows
}

fn covered_by(row: &[usize], uncovered: &HashSet<(usize, usize, usize, usize)>) -> usize {
    let mut n = 0;
    for i in 0..row.len() {
        for j in i + 1..row.len() {
            if uncovered.contains(&(i, row[i], j, row[j])) {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sizes: &[usize], generator: Generator) -> Shape {
        Shape {
            steps: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| StepShape {
                    name: format!("a{i}"),
                    serial: i == 1,
                    labels: (0..n).map(|o| format!("o{o}")).collect(),
                })
                .collect(),
            generator,
        }
    }

    #[test]
    fn all_is_every_combination_with_stable_ids() {
        let walks = generate(&shape(&[2, 3, 2], Generator::All));
        assert_eq!(walks.len(), 12);
        assert_eq!(walks[0].id, "w0000");
        assert_eq!(walks[0].label, "a0=o0,a1=o0,a2=o0");
        assert_eq!(walks[7].label, "a0=o1,a1=o0,a2=o1");
        assert_eq!(walks[11].id, "w0011");
        let distinct: HashSet<_> = walks.iter().map(|w| w.options.clone()).collect();
        assert_eq!(distinct.len(), 12);
    }

    #[test]
    fn pairwise_covers_every_pair_in_fewer_walks_and_is_seeded() {
        let s = shape(&[3, 3, 3, 3, 3], Generator::Pairwise { seed: 7 });
        let walks = generate(&s);
        assert!(walks.len() < 3usize.pow(5) / 4, "{} walks", walks.len());
        assert!(walks.len() >= 9, "{} walks", walks.len());
        for i in 0..5 {
            for j in i + 1..5 {
                for a in 0..3 {
                    for b in 0..3 {
                        assert!(
                            walks.iter().any(|w| w.options[i] == a && w.options[j] == b),
                            "pair ({i}={a}, {j}={b}) missing"
                        );
                    }
                }
            }
        }
        assert_eq!(generate(&s), walks);
        let other = generate(&shape(&[3, 3, 3, 3, 3], Generator::Pairwise { seed: 8 }));
        assert_ne!(other, walks);
    }

    #[test]
    fn ids_widen_past_ten_thousand_walks() {
        let walks = generate(&shape(&[10, 10, 10, 11], Generator::All));
        assert_eq!(walks.len(), 11000);
        assert_eq!(walks[0].id, "w00000");
        assert_eq!(walks[10999].id, "w10999");
    }

    #[test]
    fn bad_definitions_are_named() {
        let mut s = shape(&[2, 2], Generator::All);
        assert!(validate(&s).is_ok());
        s.steps[1].labels[1] = "a=b".into();
        assert!(validate(&s)
            .unwrap_err()
            .contains("option \"a=b\" can't be a label"));
        s.steps[1].labels = vec![];
        assert_eq!(
            validate(&s).unwrap_err(),
            "action \"a1\": it has no options"
        );
        s.steps[1].name = "a0".into();
        s.steps[1].labels = vec!["x".into()];
        assert!(validate(&s).unwrap_err().contains("two actions"));
        assert!(validate(&shape(&[], Generator::All)).is_err());
    }
}
