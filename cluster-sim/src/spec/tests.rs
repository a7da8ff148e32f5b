//! The spec's unit tests: shapes of `nodes`, `[[node]]` overrides, errors at file, line and key,
//! templates rendered at parse time, log rules and hooks, image syntax and memory sizes.

use std::path::Path;

use super::model::ClusterSpec;
use super::units::valid_image;
use super::HookWhen;
use crate::error::SpecError;
use crate::image::NODE_IMAGE;

fn parse(text: &str) -> Result<ClusterSpec, SpecError> {
    ClusterSpec::parse(text, "t.toml", Path::new("."), "t")
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn count_and_names() {
    let s = parse("nodes = 3").unwrap();
    let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert_eq!(s.nodes[0].image, NODE_IMAGE);
    let s = parse("nodes = { count = 2, prefix = \"db\" }").unwrap();
    assert_eq!(s.nodes[1].name, "db2");
    let s = parse("nodes = [\"a\", \"b\"]\nimage = \"x/y:1\"").unwrap();
    assert_eq!(s.nodes[1].image, "x/y:1");
}

#[test]
fn node_tables_override() {
    let s = parse(
        "nodes = 2\nroles = [\"r\"]\nenv = { A = \"1\" }\n[service]\ncommand = \"run\"\n\
         [[node]]\nname = \"n2\"\nroles = [\"primary\"]\nenv = { B = \"2\" }\ncommand = \"other\"\n",
    )
    .unwrap();
    assert_eq!(s.nodes[0].roles, ["r"]);
    assert_eq!(s.nodes[1].roles, ["primary"]);
    assert_eq!(s.nodes[1].env.len(), 2);
    assert_eq!(s.nodes[0].command.as_deref(), Some("run"));
    assert_eq!(s.nodes[1].command.as_deref(), Some("other"));
}

#[test]
fn errors_name_file_line_and_key() {
    insta::assert_snapshot!(err("nodes = 3\nbogus = 1\n"), @"t.toml:2:1: key `bogus`: unknown field `bogus`, expected one of `name`, `image`, `nodes`, `roles`, `env`, `packages`, `publish`, `service`, `ready`, `limits`, `timeout`, `file`, `dir`, `binary`, `collect`, `collect_limit`, `node`, `reuse`, `fail_on_log`, `allow_log`, `hook`, `faulty_dirs`, `fuse`, `placement`");
    insta::assert_snapshot!(err("nodes = 3\nimage = \"Bad Image\"\n"), @r#"t.toml:2:9: key `image`: bad image reference "Bad Image" (expected name[:tag], lowercase)"#);
    insta::assert_snapshot!(err("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n"), @r#"t.toml:4:8: key `node.name`: duplicate node "a""#);
    insta::assert_snapshot!(err("nodes = 1\n[[file]]\ntemplate = \"nope.tmpl\"\ndest = \"/x\"\n"), @r#"t.toml:3:12: key `file[0].template`: template "nope.tmpl" not found (looked for ./nope.tmpl, ./../templates/nope.tmpl, ./../nope.tmpl)"#);
    insta::assert_snapshot!(err("nodes = 3\nname = [\n"), @"t.toml:3:1: key `name`: invalid array, expected `]`");
    insta::assert_snapshot!(err("nodes = 2\n[ready]\ncommand = \"x\"\ntimeout = \"soon\"\n"), @r#"t.toml:4:11: key `ready.timeout`: bad duration "soon": expected number at 0"#);
    insta::assert_snapshot!(err("name = \"x\"\n"), @"t.toml:1:1: key `nodes`: the spec declares no nodes (set `nodes = 3` or add [[node]] tables)");
    insta::assert_snapshot!(err("nodes = [\"N1\"]\n"), @r#"t.toml:1:9: key `nodes`: bad node name "N1" (lowercase letters, digits and '-')"#);
}

#[test]
fn bad_values_say_what_is_expected() {
    insta::assert_snapshot!(err("nodes = -1\n"), @"t.toml:1:9: key `nodes`: a cluster needs 1 to 1000 nodes, not -1");
    insta::assert_snapshot!(err("nodes = 0\n"), @"t.toml:1:9: key `nodes`: a cluster needs 1 to 1000 nodes, not 0");
    insta::assert_snapshot!(err("nodes = \"three\"\n"), @r#"t.toml:1:9: key `nodes`: expected a node count (`nodes = 3`), a list of names (`nodes = ["a", "b"]`) or a table (`nodes = { count = 3, prefix = "db" }`), not string"#);
    insta::assert_snapshot!(err("nodes = { count = 2, prefx = \"a\" }\n"), @"t.toml:1:9: key `nodes`: unknown key `prefx` (a nodes table has `count` and `prefix`)");
    insta::assert_snapshot!(err("nodes = [1, 2]\n"), @"t.toml:1:9: key `nodes`: node names are strings, not integer");
    insta::assert_snapshot!(err("nodes = 2\n[ready]\ncommand = \"x\"\ninterval = \"0s\"\n"), @r#"t.toml:4:12: key `ready.interval`: "0s" is zero; use a positive duration such as "250ms""#);
    insta::assert_snapshot!(err("nodes = 1\n[limits]\ncpus = -1.0\n"), @"t.toml:3:8: key `limits.cpus`: cpus must be a positive number of cores (e.g. 0.5), not -1");
}

#[test]
fn templates_are_rendered_once_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = dir.path().join("clusters");
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&clusters).unwrap();
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("ok.tmpl"),
        "{{ node.name }} {{ nodes[0].address }}\n",
    )
    .unwrap();
    std::fs::write(templates.join("typo.tmpl"), "a\n{{ node.adress }}\n").unwrap();
    std::fs::write(templates.join("plain.conf"), "as is\n").unwrap();
    let spec = |body: &str| {
        let path = clusters.join("c.toml");
        std::fs::write(&path, body).unwrap();
        ClusterSpec::from_file(&path)
    };
    // `source` files are looked up in templates/ too, as book/src/cluster-spec.md says.
    let ok = spec("nodes = 2\n[[file]]\ntemplate = \"ok.tmpl\"\ndest = \"a\"\n[[file]]\nsource = \"plain.conf\"\ndest = \"b\"\n").unwrap();
    assert_eq!(ok.nodes[1].files.len(), 2);
    let e = spec("nodes = 2\n[[file]]\ntemplate = \"typo.tmpl\"\ndest = \"a\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.toml:3:12: key `file[0].template`: node n1: "),
        "{e}"
    );
    assert!(
        e.contains("typo.tmpl:2: undefined variable `node.adress`"),
        "{e}"
    );
    let e = spec("nodes = 1\n[[file]]\nsource = \"nope.conf\"\ndest = \"a\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `file[0].source`: source \"nope.conf\" not found (looked for "),
        "{e}"
    );
    assert!(e.contains("templates/nope.conf"), "{e}");
}

#[test]
fn log_keys_and_hooks() {
    let s = parse(
        "nodes = 3\nroles = [\"db\"]\nfail_on_log = [\"panicked at\", \"(?i)data race\"]\n\
         allow_log = [\"panicked at .*expected\"]\n[ready]\nlog = \"listening on \\\\d+\"\n\
         [[node]]\nname = \"n3\"\nroles = [\"web\"]\n\
         [[hook]]\nwhen = \"after_up\"\ncommand = \"echo up\"\n\
         [[hook]]\nwhen = \"before_down\"\nnode = \"n2\"\ncommand = \"echo down\"\n\
         [[hook]]\nwhen = \"after_restart\"\nroles = [\"web\"]\ncommand = \"echo again\"\n",
    )
    .unwrap();
    let ready = s.ready.unwrap();
    assert_eq!(ready.command, None);
    assert!(ready.log.unwrap().is_match("listening on 80"));
    assert!(s.log_rules.fails("thread 'main' panicked at src/a.rs:1"));
    assert!(s.log_rules.fails("WARNING: DATA RACE"));
    assert!(!s.log_rules.fails("panicked at x, as expected"));
    let nodes: Vec<_> = s
        .hooks
        .iter()
        .map(|h| (h.when, h.nodes.join(",")))
        .collect();
    assert_eq!(
        nodes,
        [
            (HookWhen::AfterUp, "n1,n2,n3".to_string()),
            (HookWhen::BeforeDown, "n2".to_string()),
            (HookWhen::AfterRestart, "n3".to_string()),
        ]
    );
}

#[test]
fn log_and_hook_errors_name_file_line_and_key() {
    insta::assert_snapshot!(err("nodes = 1\n[ready]\nlog = \"(unclosed\"\n"), @r#"t.toml:3:7: key `ready.log`: bad regex "(unclosed": unclosed group"#);
    insta::assert_snapshot!(err("nodes = 1\nfail_on_log = [\"ok\", \"a[\"]\n"), @r#"t.toml:2:22: key `fail_on_log[1]`: bad regex "a[": unclosed character class"#);
    insta::assert_snapshot!(err("nodes = 1\nallow_log = [\"x\"]\n"), @r#"t.toml:2:1: key `allow_log`: allow_log exempts lines from fail_on_log, which the spec does not set"#);
    insta::assert_snapshot!(err("nodes = 1\n[ready]\ntimeout = \"5s\"\n"), @r#"t.toml:2:1: key `ready`: [ready] needs a `command`, a `log` regex, or both"#);
    insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_down\"\ncommand = \"x\"\n"), @r#"t.toml:3:8: key `hook[0].when`: unknown hook time "after_down" (expected after_up, before_down or after_restart)"#);
    insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_up\"\nnode = \"n9\"\ncommand = \"x\"\n"), @r#"t.toml:4:8: key `hook[0].node`: no node "n9" in this spec (nodes: n1, n2)"#);
    insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_up\"\nroles = [\"web\"]\ncommand = \"x\"\n"), @r#"t.toml:4:9: key `hook[0].roles`: no node has any of the roles ["web"], so the hook would run nowhere"#);
}

#[test]
fn image_syntax() {
    for ok in [
        "a",
        "a/b:c",
        "localhost:5000/a/b:1.0",
        "cluster-sim/node",
        "a@sha256:00",
    ] {
        assert!(valid_image(ok), "{ok}");
    }
    for bad in ["", "A", "a b", "a:", "a/:x", "a:b/c:"] {
        assert!(!valid_image(bad), "{bad}");
    }
}

#[test]
fn memory_sizes() {
    let s = parse("nodes = 1\n[limits]\nmemory = \"512m\"\ncpus = 0.5\n").unwrap();
    assert_eq!(s.nodes[0].limits.memory, Some(512 << 20));
    assert!(err("nodes = 1\n[limits]\nmemory = \"lots\"\n").contains("bad memory size"));
}

#[test]
fn faulty_dirs_top_level_per_node_and_the_fault_filesystem_binary() {
    let s = parse(
        "nodes = 3\nfaulty_dirs = [\"data\", \"/var/log/x/\"]\n\
         [[node]]\nname = \"n2\"\nfaulty_dirs = [\"wal\"]\n\
         [[node]]\nname = \"n3\"\nfaulty_dirs = []\n",
    )
    .unwrap();
    assert_eq!(s.nodes[0].faulty_dirs, ["data", "/var/log/x"]);
    assert_eq!(s.nodes[1].faulty_dirs, ["wal"]);
    assert!(s.nodes[2].faulty_dirs.is_empty());
    // The fault filesystem is placed like a [[binary]], only where it is mounted.
    let faultfs = |i: usize| {
        s.nodes[i]
            .binaries
            .iter()
            .any(|b| b.package == "cluster-sim-faultfs")
    };
    assert!(faultfs(0) && faultfs(1) && !faultfs(2));
    assert!(s.nodes[0].packages.contains(&"fuse3".to_string()));
    assert!(s.nodes[0].fuse && !s.nodes[2].fuse);
    // Without faulty_dirs, nothing changes.
    let plain = parse("nodes = 1").unwrap();
    assert!(plain.binaries.is_empty() && plain.nodes[0].packages.is_empty());
    assert!(!plain.nodes[0].fuse);
    // `fuse = true`: FUSE (and fuse3) on every node, no fault filesystem of its own.
    let lab = parse("nodes = 2\nfuse = true\n").unwrap();
    assert!(lab.nodes.iter().all(|n| n.fuse && n.packages == ["fuse3"]));
    assert!(lab.binaries.is_empty() && lab.nodes[0].faulty_dirs.is_empty());
    assert!(err("nodes = 1\nfuse = \"yes\"\n").contains("key `fuse`"));
}

#[test]
fn an_added_node_gets_the_specs_faulty_dirs_or_its_own() {
    let s = parse("nodes = 1\nfaulty_dirs = [\"data\"]\n").unwrap();
    let faultfs = |n: &super::NodeSpec| {
        n.binaries
            .iter()
            .filter(|b| b.package == "cluster-sim-faultfs")
            .count()
    };
    let n2 = s.added_node("n2", 1, None, &Default::default());
    assert_eq!(n2.faulty_dirs, ["data"]);
    assert!(n2.fuse && faultfs(&n2) == 1 && n2.packages.contains(&"fuse3".to_string()));
    let mut n3 = s.added_node("n3", 2, None, &Default::default());
    s.set_faulty_dirs(&mut n3, &["wal/".into(), "/var/x".into()])
        .unwrap();
    assert_eq!(n3.faulty_dirs, ["wal", "/var/x"]);
    assert_eq!(faultfs(&n3), 1);
    s.set_faulty_dirs(&mut n3, &[]).unwrap();
    assert!(n3.faulty_dirs.is_empty() && !n3.fuse && faultfs(&n3) == 0);
    assert_eq!(
        s.set_faulty_dirs(&mut n3, &["../etc".into()]).unwrap_err(),
        "faulty dir \"../etc\" must not contain '..'"
    );
    // A spec without faulty_dirs builds no fault filesystem to mount.
    let plain = parse("nodes = 1").unwrap();
    let mut n2 = plain.added_node("n2", 1, None, &Default::default());
    assert!(n2.faulty_dirs.is_empty() && !n2.fuse);
    let e = plain
        .set_faulty_dirs(&mut n2, &["data".into()])
        .unwrap_err();
    assert!(e.contains("builds no fault filesystem"), "{e}");
}

#[test]
fn faulty_dirs_errors_name_file_line_and_key() {
    insta::assert_snapshot!(err("nodes = 1\nfaulty_dirs = [\"../etc\"]\n"), @r#"t.toml:2:16: key `faulty_dirs[0]`: faulty dir "../etc" must not contain '..'"#);
    insta::assert_snapshot!(err("nodes = 1\nfaulty_dirs = [\"data\", \"data/\"]\n"), @r#"t.toml:2:24: key `faulty_dirs[1]`: faulty dir "data/" is listed twice"#);
    insta::assert_snapshot!(err("nodes = 1\nfaulty_dirs = [\".\"]\n"), @r#"t.toml:2:16: key `faulty_dirs[0]`: faulty dir "." names the node's working directory itself; name a directory inside it"#);
    insta::assert_snapshot!(err("[[node]]\nname = \"a\"\nfaulty_dirs = [\"d*\"]\n"), @r#"t.toml:3:16: key `node.faulty_dirs[0]`: faulty dir "d*" must be a directory, not a glob"#);
}

#[test]
fn rerender_and_the_spec_of_an_added_node() {
    let text = "nodes = 2\nroles = [\"db\"]\nenv = { A = \"1\" }\n[service]\ncommand = \"run\"\n\
        [[file]]\ntemplate = \"members/peers.tmpl\"\ndest = \"peers\"\nrerender = true\n\
        [[file]]\ntemplate = \"etcd/etcd.yml.tmpl\"\ndest = \"etcd.yml\"\nroles = [\"etcd\"]\n";
    let s = ClusterSpec::parse(text, "t.toml", Path::new("../fixtures/clusters"), "t").unwrap();
    assert_eq!(s.nodes[0].files.len(), 1);
    assert!(s.nodes[0].files[0].rerender);
    let env = std::collections::BTreeMap::from([("B".to_string(), "2".to_string())]);
    let n3 = s.added_node("n3", 2, None, &env);
    assert_eq!((n3.name.as_str(), n3.index), ("n3", 2));
    assert_eq!(n3.roles, ["db"]);
    assert_eq!(n3.command.as_deref(), Some("run"));
    assert_eq!(n3.files, s.nodes[0].files);
    assert_eq!(
        (n3.env.get("A"), n3.env.get("B")),
        (Some(&"1".to_string()), Some(&"2".to_string()))
    );
    // Other roles, other files: the etcd one too.
    let n4 = s.added_node("n4", 3, Some(vec!["etcd".into()]), &Default::default());
    let dests: Vec<&str> = n4.files.iter().map(|f| f.dest.as_str()).collect();
    assert_eq!(dests, ["peers", "etcd.yml"]);
    assert!(!n4.files[1].rerender);
    // A node of the spec added again keeps what the spec gave it.
    assert_eq!(s.added_node("n2", 5, None, &Default::default()).index, 5);
    assert!(
        err("nodes = 1\n[[file]]\nsource = \"x\"\ndest = \"y\"\nrerender = 1\n")
            .contains("rerender")
    );
}
