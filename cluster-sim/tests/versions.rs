//! Versions of a binary: the spec's `[[binary]]` `name`, `rev` and `path` and `[[node]]
//! versions`, with their errors at file, line and key; a revision built once and cached;
//! `Node::set_version` and `Cluster::rolling_restart` on the memory backend (no engine). The
//! docker proof with kvd is tests_d/kvd/upgrade.rs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster_sim_core::memory::MemoryBackend;
use cluster_sim_core::spec::BinarySource;
use cluster_sim_core::{Cluster, ClusterSpec, EventKind, EventSink};

fn clusters_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters")
}

fn parse_in(dir: &Path, text: &str) -> Result<ClusterSpec, String> {
    ClusterSpec::parse(text, "t.toml", dir, "t").map_err(|e| e.to_string())
}

const TWO_KVDS: &str = "nodes = 2\n\
    [[binary]]\npackage = \"kvd\"\nname = \"new\"\ndest = \"/usr/local/bin/kvd\"\n\
    [[binary]]\npackage = \"kvd\"\nname = \"old\"\nrev = \"HEAD\"\ndest = \"/usr/local/bin/kvd\"\n";

#[test]
fn versions_are_chosen_per_node_and_default_to_the_first_declared() {
    let text = format!("{TWO_KVDS}[[node]]\nname = \"n2\"\nversions = {{ kvd = \"old\" }}\n");
    let spec = parse_in(&clusters_dir(), &text).unwrap();
    let pick = |n: usize| {
        let b = &spec.nodes[n].binaries;
        assert_eq!(b.len(), 1, "{b:?}");
        b[0].name.clone()
    };
    assert_eq!(pick(0), "new");
    assert_eq!(pick(1), "old");
    assert!(spec.binaries.iter().all(|b| b.switchable));
    let BinarySource::Rev { rev, commit } = &spec.binaries[1].source else {
        panic!("{:?}", spec.binaries[1].source)
    };
    assert_eq!(rev, "HEAD");
    assert_eq!(commit.len(), 40, "{commit}");
    // One version alone is not switchable, and its name defaults to the package.
    let one = parse_in(
        &clusters_dir(),
        "nodes = 1\n[[binary]]\npackage = \"kvd\"\ndest = \"kvd\"\n",
    )
    .unwrap();
    assert_eq!(one.binaries[0].name, "kvd");
    assert!(!one.binaries[0].switchable);
}

#[test]
fn version_errors_name_file_line_and_key() {
    let dir = clusters_dir();
    let err = |text: &str| parse_in(&dir, text).unwrap_err();
    let e = err(&format!(
        "{TWO_KVDS}[[node]]\nname = \"n1\"\nversions = {{ kvd = \"older\" }}\n"
    ));
    assert!(
        e.starts_with("t.toml:13:20: key `node.versions`: node n1: kvd has no version \"older\" (its versions: new, old)"),
        "{e}"
    );
    let e = err(&format!(
        "{TWO_KVDS}[[node]]\nname = \"n1\"\nversions = {{ kv = \"old\" }}\n"
    ));
    assert!(
        e.contains("key `node.versions`: node n1: no [[binary]] \"kv\" to choose a version of (binaries: kvd)"),
        "{e}"
    );
    let e = err(&TWO_KVDS
        .replace("name = \"old\"\n", "")
        .replace("name = \"new\"\n", ""));
    assert!(
        e.starts_with("t.toml:6:11: key `binary[1].name`: binary[0] is already the version of kvd named \"kvd\""),
        "{e}"
    );
    let e = err(&TWO_KVDS.replace(
        "rev = \"HEAD\"\ndest = \"/usr/local/bin/kvd\"",
        "rev = \"HEAD\"\ndest = \"kvd\"",
    ));
    assert!(
        e.contains("key `binary[1].dest`: the versions of kvd go to one place, and binary[0] puts new at \"/usr/local/bin/kvd\""),
        "{e}"
    );
    let e = err(&TWO_KVDS.replace("HEAD", "no-such-rev"));
    assert!(
        e.starts_with(
            "t.toml:9:7: key `binary[1].rev`: no commit \"no-such-rev\" in the git repository at "
        ),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let e = err("nodes = 1\n[[binary]]\npackage = \"kvd\"\npath = \"kvd\"\ndest = \"kvd\"\n");
    assert!(e.contains("`package` and `path` exclude each other"), "{e}");
    let e = err("nodes = 1\n[[binary]]\npath = \"bin/kvd-0.1\"\ndest = \"kvd\"\n");
    assert!(
        e.starts_with("t.toml:3:8: key `binary[0].path`: no file ")
            && e.ends_with("(a `path` is relative to the spec's folder)"),
        "{e}"
    );
    let e = err("nodes = 1\n[[binary]]\ndest = \"kvd\"\n");
    assert!(e.contains("a [[binary]] needs `package`"), "{e}");
}

/// A revision is built once: a second build, in this process or another, finds its cached
/// executable under the target directory.
#[tokio::test]
async fn a_revision_builds_once_and_is_cached_by_commit() {
    let spec = parse_in(&clusters_dir(), TWO_KVDS).unwrap();
    let old = spec.binaries[1].clone();
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let progress: Arc<dyn Fn(&str) + Send + Sync> =
        Arc::new(move |l: &str| seen.lock().unwrap().push(l.to_string()));
    let built = cluster_sim_core::service::build_one(&spec, &old, progress.clone())
        .await
        .unwrap();
    assert!(
        built.request.describe().starts_with("kvd@"),
        "{:?}",
        built.request
    );
    let BinarySource::Rev { commit, .. } = &old.source else {
        unreachable!()
    };
    let cached = cluster_sim_core::service::Workspace::around(&clusters_dir())
        .unwrap()
        .target_dir
        .join("cluster-sim/rev")
        .join(commit);
    assert!(cached.join(&built.request.profile).join("kvd").is_file());
    // No tree of the commit is left beside the cache.
    let left: Vec<_> = std::fs::read_dir(&cached)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("src."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Two prebuilt executables as versions of `tool`, switched at run time on the memory backend:
/// one node directly, then all in a rolling restart that stops at the first failing step.
#[tokio::test]
async fn set_version_and_rolling_restart_switch_prebuilt_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, from) in [("ok", "/bin/true"), ("bad", "/bin/false")] {
        std::fs::copy(from, dir.path().join(name)).unwrap();
    }
    let text = "nodes = 3\n\
        [[binary]]\npath = \"ok\"\nbin = \"tool\"\nname = \"a\"\ndest = \"bin/tool\"\n\
        [[binary]]\npath = \"bad\"\nbin = \"tool\"\nname = \"b\"\ndest = \"bin/tool\"\n\
        [[node]]\nname = \"n3\"\nversions = { tool = \"b\" }\n";
    let spec = parse_in(dir.path(), text).unwrap();
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |e: &cluster_sim_core::Event| {
        if e.kind == EventKind::Lifecycle {
            sink_events.lock().unwrap().push(format!(
                "{}: {}",
                e.node.as_deref().unwrap_or("-"),
                e.message
            ));
        }
    });
    let c = Cluster::builder(spec)
        .backend(Arc::new(MemoryBackend::new()))
        .on_event(sink)
        .up()
        .await
        .unwrap();
    let runs = |n: &str| {
        let node = c.node(n).unwrap();
        async move { node.exec("bin/tool").await.unwrap().code }
    };
    assert_eq!((runs("n1").await, runs("n3").await), (0, 1));
    let n1 = c.node("n1").unwrap();
    n1.set_version("tool", "b").await.unwrap();
    assert_eq!(runs("n1").await, 1);
    assert_eq!(n1.version("tool").as_deref(), Some("b"));
    let e = n1.set_version("tool", "c").await.unwrap_err().to_string();
    assert_eq!(e, "node n1: tool has no version \"c\" (its versions: a, b)");
    let e = n1.set_version("kvd", "a").await.unwrap_err().to_string();
    assert_eq!(e, "node n1: no binary \"kvd\" on it (its binaries: tool)");

    // Every node back to `a`, one at a time; a step that fails stops the roll there.
    c.rolling_restart(|n| async move { n.set_version("tool", "a").await })
        .await
        .unwrap();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(runs(n).await, 0, "{n}");
    }
    let err = c
        .rolling_restart(|n| async move {
            if n.name() == "n2" {
                anyhow::bail!("no upgrade path for {}", n.name());
            }
            n.set_version("tool", "b").await?;
            anyhow::Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.node, "n2");
    assert_eq!(err.done, ["n1"]);
    assert_eq!(
        err.to_string(),
        "rolling restart stopped at node n2 (after n1): no upgrade path for n2"
    );
    assert_eq!(
        (runs("n1").await, runs("n2").await, runs("n3").await),
        (1, 0, 0)
    );
    // A step that restarts nothing: the roll restarts each node itself, once.
    let restarts = |events: &[String]| events.iter().filter(|e| e.ends_with(": restart")).count();
    let before = restarts(&events.lock().unwrap());
    c.rolling_restart(|_| async { anyhow::Ok(()) })
        .await
        .unwrap();
    assert_eq!(restarts(&events.lock().unwrap()) - before, 3);
    let events = events.lock().unwrap().join("\n");
    for want in [
        "n1: version of tool: a -> b (tool (prebuilt) \"a\"",
        "n3: rolling restart 3/3: n3",
        "-: rolling restart done: n1, n2, n3",
        "n2: rolling restart stopped at n2: no upgrade path for n2",
    ] {
        assert!(
            events.contains(want.split(" (").next().unwrap()),
            "{want:?} not in\n{events}"
        );
    }
    c.down().await.unwrap();
}
