//! Planning: each registered test becomes one or more cases, the units the run lists, shards,
//! filters, runs and reports. A test without a matrix is one case named as the test; a test with
//! `matrix(nodes = [3, 5], snapshot_count = [100, 10000])` is one case per combination, named
//! `<test>[nodes=3,snapshot_count=100]` (axes in the attribute's order, the first varying
//! slowest), so names are stable across runs and `cargo test -- 'basic[nodes=3'` selects.
//!
//! The case being run is a task-local of its trial, so the code `#[cluster_test]` generates
//! hands the test its typed values, and [`case`] gives them to helpers.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::def::TestDef;

/// One value of a matrix axis, as written in the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamValue {
    /// An integer literal.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal.
    Str(&'static str),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(v) => f.write_str(v),
        }
    }
}

impl ParamValue {
    /// The value as templates see it.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Int(v) => v.into(),
            Self::Bool(v) => v.into(),
            Self::Str(v) => v.into(),
        }
    }
}

/// One axis of a matrix: a name and its values.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// The name (a parameter of the test function when the test takes it).
    pub name: &'static str,
    /// The values, in the attribute's order.
    pub values: &'static [ParamValue],
}

/// A value a test parameter can be built from; the attribute checks at compile time that
/// every value of an axis fits the parameter's type.
pub trait FromParam: Sized {
    /// Converts, or `None` when the value doesn't fit.
    fn from_param(value: ParamValue) -> Option<Self>;
}

macro_rules! from_param_int {
    ($($t:ty),*) => {$(
        impl FromParam for $t {
            fn from_param(value: ParamValue) -> Option<Self> {
                match value {
                    ParamValue::Int(v) => <$t>::try_from(v).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_param_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl FromParam for bool {
    fn from_param(value: ParamValue) -> Option<Self> {
        match value {
            ParamValue::Bool(v) => Some(v),
            _ => None,
        }
    }
}

impl FromParam for &'static str {
    fn from_param(value: ParamValue) -> Option<Self> {
        match value {
            ParamValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

impl FromParam for String {
    fn from_param(value: ParamValue) -> Option<Self> {
        <&str>::from_param(value).map(str::to_string)
    }
}

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
    pub chosen: crate::walk::Chosen,
    /// The definition's steps and generator.
    pub shape: Arc<crate::walk::Shape>,
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
            crate::def::TestBody::Walks(f) => walk_cases(d, f)
                .map_err(|e| format!("{}:{}: {}: {e}", d.file, d.line, d.full_name()))?,
            _ => cases(d),
        };
        all.extend(cases.into_iter().map(Arc::new));
    }
    Ok(all)
}

/// The shape of a walk definition: its function called (a panic there is an error).
pub(crate) fn walk_shape(
    f: fn() -> Box<dyn crate::walk::Plan>,
) -> Result<crate::walk::Shape, String> {
    // Planning runs before any test, on one thread: the default hook's "panicked at" lines
    // would only repeat the one error below.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let shape = std::panic::catch_unwind(|| f().shape());
    std::panic::set_hook(hook);
    let shape = shape.map_err(|p| {
        format!(
            "the walk definition panicked: {}",
            crate::body::panic_text(p.as_ref())
        )
    })?;
    crate::walk::validate(&shape)?;
    Ok(shape)
}

/// One case per generated walk: `<test>::w0007[write=big,read=quorum]`.
fn walk_cases(
    def: &'static TestDef,
    f: fn() -> Box<dyn crate::walk::Plan>,
) -> Result<Vec<Case>, String> {
    let shape = Arc::new(walk_shape(f)?);
    let base = def.full_name();
    Ok(crate::walk::generate(&shape)
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
    use crate::def::{TestBody, TestFuture};

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
