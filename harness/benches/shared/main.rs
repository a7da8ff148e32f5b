//! 12 etcd3 tests twice, for the shared-cluster benchmark: `fresh::*` each on its own cluster,
//! `shared::*` on one cluster of group `bench`, emptied by etcd3's `[reuse] reset` between tests.

use harness::prelude::*;

/// What each test does: a write on one member read back from another.
async fn put_get(cluster: &Cluster, key: &str) -> TestResult {
    cluster
        .node("n1")?
        .exec(format!("etcdctl put {key} v"))
        .await?
        .check()?;
    let out = cluster
        .node("n2")?
        .exec(format!("etcdctl get --print-value-only {key}"))
        .await?
        .check()?;
    ensure!(out.out() == "v", "n2 read {:?}", out.out());
    Ok(())
}

mod fresh {
    use super::*;

    macro_rules! fresh_tests {
        ($($name:ident)*) => {$(
            #[cluster_test(cluster = "etcd3")]
            async fn $name(cluster: &Cluster) -> TestResult {
                put_get(cluster, stringify!($name)).await
            }
        )*};
    }
    fresh_tests!(f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12);
}

mod shared {
    use super::*;

    macro_rules! shared_tests {
        ($($name:ident)*) => {$(
            #[cluster_test(cluster = "etcd3", share = "bench")]
            async fn $name(cluster: &Cluster) -> TestResult {
                put_get(cluster, stringify!($name)).await
            }
        )*};
    }
    shared_tests!(s01 s02 s03 s04 s05 s06 s07 s08 s09 s10 s11 s12);
}

fn main() {
    harness::main()
}
