//! Planning: each registered test becomes one or more cases, the units the run lists, shards,
//! filters, runs and reports. A test without a matrix is one case named as the test; a test with
//! `matrix(nodes = [3, 5], snapshot_count = [100, 10000])` is one case per combination, named
//! `<test>[nodes=3,snapshot_count=100]` (axes in the attribute's order, the first varying
//! slowest), so names are stable across runs and `cargo test -- 'basic[nodes=3'` selects.
//!
//! The case being run is a task-local of its trial, so the code `#[cluster_test]` generates
//! hands the test its typed values, and [`case`] gives them to helpers.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use super::def::{TestBody, TestDef};
use super::matrix::{FromParam, ParamValue};
use super::partition::Partition;
use super::walk::{generate, validate, Chosen, Plan, Shape};
use crate::outcome::panic_text;

/// One planned case of a registered test: what a trial runs.
#[derive(Debug, Clone)]
pub struct Case {
    /// The registered test.
    pub def: &'static TestDef,
    /// The trial's name: the test's, plus `[axis=value,...]` for a matrix combination.
    pub name: String,
    /// The combination's values, in the attribute's order (empty without a matrix).
    pub params: Vec<(&'static str, ParamValue)>,
    /// The walk this case runs, for a `#[cluster_walk]` definition.
    pub walk: Option<WalkCase>,
}

/// A case of a walk definition: one generated walk.
#[derive(Debug, Clone)]
pub struct WalkCase {
    /// The walk: id, options, label.
    pub chosen: Chosen,
    /// The definition's steps and generator.
    pub shape: Arc<Shape>,
}

impl Case {
    /// The value of axis `name`, if the case has one.
    pub fn value(&self, name: &str) -> Option<ParamValue> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The value of axis `name` as a `T` (`case.get::<u32>("nodes")`); `None` if there is no
    /// such axis or the value doesn't fit.
    pub fn get<T: FromParam>(&self, name: &str) -> Option<T> {
        self.value(name).and_then(T::from_param)
    }

    /// What the case changes in its spec: `nodes` sizes the cluster, and templates see every
    /// value as `params.<axis>`.
    pub fn spec_params(&self) -> cluster_sim_core::SpecParams {
        cluster_sim_core::SpecParams {
            nodes: self.get::<usize>("nodes"),
            values: self
                .params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_json()))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

/// Every case of `defs`, in the order of `defs` and, within a test, of its combinations (or
/// walks). A walk definition that can't be planned is an error naming its place.
pub fn plan(defs: &[&'static TestDef]) -> Result<Vec<Arc<Case>>, String> {
    let mut all = Vec::new();
    for d in defs {
        let cases = match d.body {
            TestBody::Walks(f) => walk_cases(d, f)
                .map_err(|e| format!("{}:{}: {}: {e}", d.file, d.line, d.full_name()))?,
            _ => cases(d),
        };
        all.extend(cases.into_iter().map(Arc::new));
    }
    Ok(all)
}

/// The cases this run (or this shard of it) may run, named uniquely: an error names the two
/// tests that share a name, or the walk definition that can't be planned.
pub(crate) fn select(
    defs: &[&'static TestDef],
    shard: Option<&Partition>,
    durations: &std::collections::HashMap<String, u64>,
) -> Result<Vec<Arc<Case>>, String> {
    let cases = plan(defs)?;
    let mut names = HashSet::new();
    for c in &cases {
        if !names.insert(c.name.clone()) {
            return Err(format!(
                "two tests are named {} ({}:{}); rename one",
                c.name, c.def.file, c.def.line
            ));
        }
    }
    // A shard sees only its own cases, listing included.
    Ok(match shard {
        Some(p) => {
            let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
            cases
                .into_iter()
                .zip(p.select_timed(&names, durations))
                .filter_map(|(c, keep)| keep.then_some(c))
                .collect()
        }
        None => cases,
    })
}

/// The shape of a walk definition: its function called (a panic there is an error).
fn walk_shape(f: fn() -> Box<dyn Plan>) -> Result<Shape, String> {
    // Planning runs before any test, on one thread: the default hook's "panicked at" lines
    // would only repeat the one error below.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let shape = std::panic::catch_unwind(|| f().shape());
    std::panic::set_hook(hook);
    let shape =
        shape.map_err(|p| format!("the walk definition panicked: {}", panic_text(p.as_ref())))?;
    validate(&shape)?;
    Ok(shape)
}

/// One case per generated walk: `<test>::w0007[write=big,read=quorum]`.
fn walk_cases(def: &'static TestDef, f: fn() -> Box<dyn Plan>) -> Result<Vec<Case>, String> {
    let shape = Arc::new(walk_shape(f)?);
    let base = def.full_name();
    Ok(generate(&shape)
        .into_iter()
        .map(|chosen| Case {
            def,
            name: format!("{base}::{}[{}]", chosen.id, chosen.label),
            params: Vec::new(),
            walk: Some(WalkCase {
                chosen,
                shape: shape.clone(),
            }),
        })
        .collect())
}

/// The cases of one test: its combinations, the first axis varying slowest.
pub fn cases(def: &'static TestDef) -> Vec<Case> {
    let base = def.full_name();
    let mut combos: Vec<Vec<(&'static str, ParamValue)>> = vec![Vec::new()];
    for axis in def.matrix {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((axis.name, *v));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|params| {
            let name = if params.is_empty() {
                base.clone()
            } else {
                let label: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{base}[{}]", label.join(","))
            };
            Case {
                def,
                name,
                params,
                walk: None,
            }
        })
        .collect()
}

tokio::task_local! {
    static CURRENT: Arc<Case>;
}

/// The case the calling task runs, inside a test (and the code the attribute generates).
///
/// `Some` in a test's body and what it awaits, for every `#[cluster_test]`: a test without a
/// matrix is one case named as the test, with no values. `None` outside a test, and in tasks
/// the test spawned (`tokio::spawn` does not carry it over). A walk's actions use
/// `Walk::id` and `Walk::label` instead.
///
/// ```no_run
/// use harness::prelude::*;
///
/// #[cluster_test(cluster = "etcd_tuned", matrix(snapshot_count = [100, 10000]))]
/// async fn tuned(cluster: &Cluster) -> TestResult {
///     check_tuning(cluster).await
/// }
///
/// async fn check_tuning(cluster: &Cluster) -> TestResult {
///     let case = harness::case().context("runs inside a test")?;
///     let count: u64 = case.get("snapshot_count").context("no snapshot_count axis")?;
///     harness::println!("{}", case.name); // etcd::tuning::tuned[snapshot_count=100]
///     let conf = cluster.node("n1")?.exec("cat \"$CLUSTER_SIM_WORKDIR/etcd.yml\"").await?;
///     ensure!(conf.out().contains(&format!("snapshot-count: {count}")));
///     Ok(())
/// }
/// # fn main() {}
/// ```
pub fn case() -> Option<Arc<Case>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// `fut` with `case` as its current case (nothing changes for `None`).
pub(crate) async fn scoped<F: Future>(case: Option<Arc<Case>>, fut: F) -> F::Output {
    match case {
        Some(c) => CURRENT.scope(c, fut).await,
        None => fut.await,
    }
}

/// The current case's value of `name` for the parameter the attribute generated it for. The
/// attribute has checked the values' types at compile time, so `None` here is a harness bug.
#[doc(hidden)]
pub fn __param<T: FromParam>(name: &str) -> T {
    let case = case().expect("a matrix test runs inside its case");
    case.get(name).unwrap_or_else(|| {
        panic!(
            "{}: axis `{name}` has no value of the parameter's type",
            case.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TestFuture;
    use crate::plan::Axis;

    fn body() -> TestFuture {
        Box::pin(async { Ok(()) })
    }

    const AXES: &[Axis] = &[
        Axis {
            name: "nodes",
            values: &[ParamValue::Int(3), ParamValue::Int(5)],
        },
        Axis {
            name: "snapshot_count",
            values: &[ParamValue::Int(100), ParamValue::Int(10000)],
        },
        Axis {
            name: "mode",
            values: &[ParamValue::Str("fast")],
        },
    ];
    static DEF: TestDef = TestDef::new(
        "suite::etcd::snap",
        "keeps",
        "f.rs",
        1,
        ".",
        TestBody::Plain(body),
    )
    .matrix(AXES);
    static PLAIN: TestDef = TestDef::new(
        "suite::etcd::snap",
        "plain",
        "f.rs",
        9,
        ".",
        TestBody::Plain(body),
    );

    #[test]
    fn every_combination_is_a_named_case() {
        let names: Vec<String> = plan(&[&DEF, &PLAIN])
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "etcd::snap::keeps[nodes=3,snapshot_count=100,mode=fast]",
                "etcd::snap::keeps[nodes=3,snapshot_count=10000,mode=fast]",
                "etcd::snap::keeps[nodes=5,snapshot_count=100,mode=fast]",
                "etcd::snap::keeps[nodes=5,snapshot_count=10000,mode=fast]",
                "etcd::snap::plain",
            ]
        );
    }

    #[test]
    fn values_are_typed_and_reach_the_spec() {
        let c = &cases(&DEF)[2];
        assert_eq!(c.get::<u32>("nodes"), Some(5));
        assert_eq!(c.get::<u64>("snapshot_count"), Some(100));
        assert_eq!(c.get::<u8>("snapshot_count"), Some(100));
        assert_eq!(c.get::<&str>("mode"), Some("fast"));
        assert_eq!(c.get::<u32>("mode"), None);
        assert_eq!(c.get::<u32>("missing"), None);
        let p = c.spec_params();
        assert_eq!(p.nodes, Some(5));
        assert_eq!(p.values["snapshot_count"], 100);
        assert_eq!(p.values["mode"], "fast");
        assert_eq!(
            cases(&PLAIN)[0].spec_params(),
            cluster_sim_core::SpecParams::default()
        );
    }

    #[tokio::test]
    async fn the_current_case_is_task_local() {
        assert!(case().is_none());
        let c = Arc::new(cases(&DEF).remove(0));
        let got = scoped(Some(c), async {
            (case().unwrap().name.clone(), __param::<u32>("nodes"))
        })
        .await;
        assert_eq!(got.1, 3);
        assert!(got.0.ends_with("[nodes=3,snapshot_count=100,mode=fast]"));
    }
}
