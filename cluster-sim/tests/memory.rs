//! The memory backend through the contract alone: a cluster's commands run in its nodes'
//! directories, deadlines kill what a command started, what it can't do is refused in one
//! line, and its janitor and lookup see its records. No engine, no hosts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cluster_sim_core::backend::ownership::run_id;
use cluster_sim_core::memory::MemoryBackend;
use cluster_sim_core::{Backend, BackendError, Cluster, ClusterSpec, ExecError};

fn spec(text: &str) -> ClusterSpec {
    ClusterSpec::parse(text, "<test>", Path::new("."), "mem").expect("spec")
}

#[tokio::test]
async fn a_cluster_runs_commands_in_its_nodes_directories_and_leaves_nothing() {
    let backend = Arc::new(MemoryBackend::new());
    let c = Cluster::builder(spec("nodes = 2\n[ready]\ncommand = \"test -d tmp\"\n"))
        .backend(backend.clone())
        .up()
        .await
        .expect("up");
    let n1 = c.node("n1").unwrap();
    let env = n1.exec("echo $CLUSTER_SIM_NODE $HOME").await.unwrap();
    assert!(env.out().starts_with("n1 /"), "{env:?}");
    let out = n1
        .exec("echo hi; pwd; echo oops >&2; exit 3")
        .await
        .unwrap();
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout_lossy().lines().next(), Some("hi"));
    assert!(out.stdout_lossy().trim_end().ends_with("/n1"), "{out:?}");
    assert_eq!(out.err(), "oops");
    n1.write_file("data/x", "1").await.unwrap();
    assert_eq!(n1.read_file("data/x").await.unwrap(), b"1");
    assert!(n1.exec("cat data/x").await.unwrap().check().is_ok());
    // Each node has a directory of its own.
    assert!(!c
        .node("n2")
        .unwrap()
        .exec("test -e data/x")
        .await
        .unwrap()
        .success());
    let dir = PathBuf::from(n1.exec("pwd").await.unwrap().out().into_owned());
    c.down().await.unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    let left = backend.lookup().unwrap().clusters().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_deadline_kills_the_command_and_what_it_started() {
    let b = MemoryBackend::new();
    let c = Cluster::builder(spec("nodes = 1"))
        .backend(Arc::new(b))
        .up()
        .await
        .unwrap();
    let n1 = c.node("n1").unwrap();
    let started = std::time::Instant::now();
    let out = n1
        .cmd("(sleep 30; touch late) & sleep 30")
        .timeout(Duration::from_millis(300))
        .run()
        .await
        .unwrap();
    assert!(out.timed_out && out.code == 137, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!n1.exec("test -e late").await.unwrap().success());
    c.down().await.unwrap();
}

#[tokio::test]
async fn what_it_cannot_do_is_one_clear_refusal() {
    let b: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let e = Cluster::builder(spec("nodes = 1\n[service]\ncommand = \"sleep 9\"\n"))
        .backend(b.clone())
        .up()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node n1's service command: the memory backend runs no services"),
        "{e}"
    );
    let c = Cluster::builder(spec("nodes = 1"))
        .backend(b.clone())
        .up()
        .await
        .unwrap();
    let n1 = c.node("n1").unwrap();
    let e = n1.write_file("/etc/x", "1").await.unwrap_err().to_string();
    assert!(
        e.starts_with(
            "node n1: write /etc/x: write /etc/x: the memory backend's nodes share this machine"
        ),
        "{e}"
    );
    let e = n1.cmd("true").user("root").run().await.unwrap_err();
    assert!(matches!(
        e,
        ExecError::Backend {
            source: BackendError::Refused { .. },
            ..
        }
    ));
    assert!(matches!(
        n1.read_file("nope").await.unwrap_err().source,
        BackendError::NoSuchFile
    ));
    n1.kill().await.unwrap();
    let e = n1.exec("true").await.unwrap_err();
    assert!(matches!(
        e,
        ExecError::Backend {
            source: BackendError::NotRunning { .. },
            ..
        }
    ));
    assert!(n1.logs().await.unwrap().contains("kill"));
    c.down().await.unwrap();
}

#[tokio::test]
async fn the_janitor_and_lookup_see_the_records() {
    let b = MemoryBackend::new();
    let arc: Arc<dyn Backend> = Arc::new(b.clone());
    let keep = Cluster::builder(spec("nodes = 1"))
        .backend(arc.clone())
        .keep(true)
        .up()
        .await
        .unwrap();
    let other = Cluster::builder(spec("nodes = 2"))
        .backend(arc.clone())
        .expires_after(Duration::ZERO)
        .up()
        .await
        .unwrap();
    let lookup = arc.lookup().unwrap();
    let listed = lookup.clusters().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(lookup.nodes(other.name()).await.unwrap().len(), 2);
    assert!(matches!(
        lookup.nodes("nope").await,
        Err(BackendError::UnknownCluster(_))
    ));
    let janitor = arc.janitor().unwrap();
    // Its owner (this process) lives: past its lease or not, nothing is reaped.
    assert!(janitor.reap().await.unwrap().is_empty());
    let r = janitor.remove_run(run_id()).await.unwrap();
    assert_eq!(r.removed, vec![other.name().to_string()]);
    assert_eq!(
        lookup.clusters().await.unwrap().len(),
        1,
        "the kept one stays"
    );
    keep.down().await.unwrap();
    assert!(!janitor.outlives_owner());
}

#[tokio::test]
async fn nodes_join_and_leave_with_their_templates_rendered_for_the_new_membership() {
    use cluster_sim_core::NodeOptions;
    let backend = Arc::new(MemoryBackend::new());
    let text = "nodes = 2\nroles = [\"peer\"]\n[ready]\ncommand = \"test -s peers\"\n\
                [[file]]\ntemplate = \"members/peers.tmpl\"\ndest = \"peers\"\nrerender = true\n";
    let s = ClusterSpec::parse(
        text,
        "<test>",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters"),
        "mem",
    )
    .expect("spec");
    let c = Cluster::builder(s)
        .backend(backend.clone())
        .up()
        .await
        .expect("up");
    let names =
        |c: &Cluster| -> Vec<String> { c.nodes().iter().map(|n| n.name().to_string()).collect() };
    let peers = |n: &str| {
        let n = c.node(n).unwrap();
        async move { n.exec("cat peers").await.unwrap().out().to_string() }
    };
    let n3 = c
        .add_node(NodeOptions::named("n3").env("K", "v"))
        .await
        .expect("add n3");
    assert_eq!(names(&c), ["n1", "n2", "n3"]);
    assert_eq!(n3.spec().roles, ["peer"]);
    assert_eq!(n3.exec("echo $K").await.unwrap().out(), "v");
    let all = "n1@127.0.0.1,n2@127.0.0.1,n3@127.0.0.1";
    assert_eq!(peers("n3").await, format!("me=n3 added=yes\npeers={all}"));
    assert_eq!(peers("n1").await, format!("me=n1 added=no\npeers={all}"));
    let w3 = n3.exec("pwd").await.unwrap().out().to_string();
    assert!(Path::new(&w3).is_dir(), "{w3}");

    // Bad input: one clear error each, the cluster unchanged.
    let e = c.add_node(NodeOptions::named("n2")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cluster {} already has a node n2", c.name())
    );
    let e = c.add_node(NodeOptions::named("Bad")).await.unwrap_err();
    assert!(e.to_string().contains("bad node name \"Bad\""), "{e}");
    let e = c.remove_node("n9").await.unwrap_err();
    assert!(e.to_string().contains("(it has n1, n2, n3)"), "{e}");

    assert!(c.remove_node("n3").await.expect("remove n3").is_empty());
    assert_eq!(names(&c), ["n1", "n2"]);
    assert!(!Path::new(&w3).exists(), "{w3} left behind");
    assert_eq!(
        peers("n1").await,
        "me=n1 added=no\npeers=n1@127.0.0.1,n2@127.0.0.1"
    );
    assert!(c.node("n3").is_err());
    // The default name is the first free one; the last node can't go.
    assert_eq!(
        c.add_node(NodeOptions::default()).await.unwrap().name(),
        "n3"
    );
    c.remove_node("n1").await.unwrap();
    c.remove_node("n2").await.unwrap();
    let e = c.remove_node("n3").await.unwrap_err();
    assert!(e.to_string().contains("is its last node"), "{e}");
    c.down().await.unwrap();
    assert!(backend
        .lookup()
        .unwrap()
        .clusters()
        .await
        .unwrap()
        .is_empty());
}
