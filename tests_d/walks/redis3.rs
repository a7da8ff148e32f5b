//! Walks on redis3 (a primary n1 and replicas n2, n3): every walk writes a value of some size
//! to the primary, the serial `aof` action turns the append-only file on or off on every node
//! (a barrier: once per option, for the walks that chose it), and the walk reads its value back
//! from the primary or a replica, noting what it saw. 2 x 2 x 2 = 8 walks, one cluster.
//!
//! `harness/tests/walks.rs` runs these walks and checks the barrier (in the traces' timestamps)
//! and that replaying one walk with `--exact` reproduces its trace.

use harness::prelude::*;

/// A walk's own state: what it wrote.
#[derive(Clone, Default)]
pub struct Model {
    written: usize,
}

/// The size of the value a walk writes.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    Small,
    Big,
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Size::Small => "small",
            Size::Big => "big",
        })
    }
}

impl Size {
    fn bytes(self) -> usize {
        match self {
            Size::Small => 16,
            Size::Big => 64 * 1024,
        }
    }
}

/// Writes the walk's key on the primary.
pub struct Write;

#[async_trait]
impl Action<Model> for Write {
    type Opt = Size;

    fn name(&self) -> &str {
        "write"
    }

    fn options(&self) -> Vec<Size> {
        vec![Size::Small, Size::Big]
    }

    async fn run(&self, size: &Size, walk: &mut Walk<Model>) -> TestResult {
        let key = walk.key("value");
        let n = size.bytes();
        walk.cluster()
            .node("n1")?
            .exec(format!(
                "head -c {n} /dev/zero | tr '\\0' x | redis-cli -x set {key} >/dev/null"
            ))
            .await?
            .check()?;
        walk.state.written = n;
        walk.note(format!("wrote {n} bytes to {key}"));
        Ok(())
    }
}

/// `CONFIG SET appendonly` on every node: cluster-wide, so a serial action.
pub struct Aof;

#[async_trait]
impl SerialAction<Model> for Aof {
    type Opt = &'static str;

    fn name(&self) -> &str {
        "aof"
    }

    fn options(&self) -> Vec<&'static str> {
        vec!["on", "off"]
    }

    async fn run(
        &self,
        option: &&'static str,
        cluster: &Cluster,
        walks: &mut [&mut Walk<Model>],
    ) -> TestResult {
        let value = if *option == "on" { "yes" } else { "no" };
        for node in cluster.nodes() {
            node.exec(format!("redis-cli config set appendonly {value}"))
                .await?
                .check()?;
        }
        for w in walks.iter_mut() {
            w.note(format!("appendonly {value} on every node"));
        }
        Ok(())
    }
}

/// Reads the walk's value back, from the primary or (once replicated) a replica.
pub struct Read;

#[async_trait]
impl Action<Model> for Read {
    type Opt = &'static str;

    fn name(&self) -> &str {
        "read"
    }

    fn options(&self) -> Vec<&'static str> {
        vec!["primary", "replica"]
    }

    async fn run(&self, from: &&'static str, walk: &mut Walk<Model>) -> TestResult {
        let node = walk
            .cluster()
            .node(if *from == "primary" { "n1" } else { "n2" })?;
        let key = walk.key("value");
        let want = walk.state.written;
        // A replica may lag the primary: wait for the value to arrive.
        let len = wait_until(Duration::from_secs(20), || async {
            let out = node.exec(format!("redis-cli strlen {key}")).await?.check()?;
            let len: usize = out.out().parse()?;
            Ok::<_, anyhow::Error>((len == want).then_some(len))
        })
        .await
        .with_context(|| format!("{} never held {want} bytes under {key}", node.name()))?;
        let aof = node
            .exec("redis-cli config get appendonly | tail -n 1")
            .await?
            .check()?;
        walk.note(format!(
            "read {len} bytes from {}; appendonly {}",
            node.name(),
            aof.out()
        ));
        Ok(())
    }
}

#[cluster_walk(cluster = "redis3", timeout = "60s")]
fn cache() -> Walks<Model> {
    Walks::new(Model::default())
        .action(Write)
        .serial(Aof)
        .action(Read)
}
