//! 12 tests, each on its own 3-node cluster, for the concurrency benchmark: provisioning waits
//! on the engine, so more threads should finish sooner on a 2-core machine.

mod clusters {
    use harness::prelude::*;

    async fn touch(cluster: &Cluster) -> TestResult {
        for node in cluster.nodes() {
            let out = node.exec("hostname").await?.check()?;
            ensure!(!out.out().is_empty());
        }
        Ok(())
    }

    macro_rules! cluster_tests {
        ($($name:ident)*) => {$(
            #[cluster_test(nodes = 3, image = "cluster-sim/node")]
            async fn $name(cluster: &Cluster) -> TestResult {
                touch(cluster).await
            }
        )*};
    }

    cluster_tests!(c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12);
}

fn main() {
    harness::main()
}
