//! Builds the node image through the real engine (debootstrapping the base where no registry
//! answers: a minute or two the first time), checks the second `ensure` is a cache hit, and
//! runs a container from the image to check the tools every node relies on.

use std::collections::HashMap;

use anyhow::{bail, Context};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptionsBuilder};
use bollard::Docker;
use cluster_sim_core::image::{default_definition_dir, ImageBuilder, NODE_IMAGE};
use futures::StreamExt;

const LABEL_KEY: &str = "cluster-sim.cluster";
const LABEL_VALUE: &str = "image-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_image_builds_caches_and_runs() -> anyhow::Result<()> {
    let docker = Docker::connect_with_defaults()
        .context("connecting to the docker engine")?
        .negotiate_version()
        .await
        .context("negotiating the docker API version")?;
    remove_test_containers(&docker).await?;

    let dir = default_definition_dir().context("no docker/node definition found")?;
    let builder = ImageBuilder::new(dir);

    // Two concurrent callers: at most one builds, the other waits for it and finds the cache.
    let (first, second) =
        tokio::join!(builder.ensure_image(&docker), builder.ensure_image(&docker));
    let (first, second) = (first?, second?);
    assert_eq!(first.tag, second.tag);
    assert_eq!(first.id, second.id);
    assert!(
        !(first.built && second.built),
        "both concurrent callers built the image"
    );
    assert!(
        first.tag.starts_with(&format!("{NODE_IMAGE}:")),
        "{}",
        first.tag
    );
    assert_eq!(Some(first.tag.clone()), builder.tag().ok());

    // A third call is a plain cache hit: nothing built, same image. (Timed for the log only.)
    let started = std::time::Instant::now();
    let again = builder.ensure_image(&docker).await?;
    eprintln!(
        "cached ensure of {} took {:?}",
        again.tag,
        started.elapsed()
    );
    assert!(!again.built, "a cached image was rebuilt");
    assert_eq!(again.id, first.id);
    assert_eq!(builder.ensure(&docker).await?, first.tag);
    let latest = docker
        .inspect_image(&format!("{NODE_IMAGE}:latest"))
        .await
        .context("inspecting cluster-sim/node:latest")?;
    assert_eq!(latest.id.as_deref(), Some(first.id.as_str()));

    // Run it, and remove the container whatever the checks say.
    let container = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            ContainerCreateBody {
                image: Some(first.tag.clone()),
                labels: Some(HashMap::from([(
                    LABEL_KEY.to_owned(),
                    LABEL_VALUE.to_owned(),
                )])),
                ..Default::default()
            },
        )
        .await
        .context("creating the test container")?;
    let checks = check_container(&docker, &container.id).await;
    let removed = remove_test_containers(&docker).await;
    checks?;
    removed
}

/// An image built `from_image` is cached under a tag that hashes its base's id: the same base
/// is a cache hit, another base (here: the first build itself) a new tag and a new build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_from_another_image_follows_its_base() -> anyhow::Result<()> {
    let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
    let node = ImageBuilder::new(default_definition_dir().context("no docker/node")?)
        .ensure(&docker)
        .await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nRUN echo built-on-top > /from-image\n",
    )?;
    // No packages.txt: the base is the image itself.
    let repository = format!("cluster-sim/test-from-image-{}", std::process::id());
    let on = |image: &str| {
        ImageBuilder::new(dir.path())
            .repository(&repository)
            .from_image(image)
            .quiet(true)
    };
    let result = async {
        let err = on(&node).tag().expect_err("a tag without the base's id");
        assert!(err.to_string().contains("hashes that image's id"), "{err}");
        let first = on(&node).ensure_image(&docker).await?;
        assert!(
            first.built && first.base.as_deref() == Some(node.as_str()),
            "{first:?}"
        );
        let again = on(&node).ensure_image(&docker).await?;
        assert!(!again.built && again.tag == first.tag, "{again:?}");
        let other = on(&first.tag).ensure_image(&docker).await?;
        assert!(other.built && other.tag != first.tag, "{other:?}");
        ensure_layers_on(&docker, &other.tag, &first.id).await
    }
    .await;
    // Remove what this test built, whatever it found.
    let listed = docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(HashMap::from([(
                "reference".to_owned(),
                vec![format!("{repository}:*")],
            )])),
            ..Default::default()
        }))
        .await?;
    for image in listed {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        docker.remove_image(&image.id, Some(opts), None).await?;
    }
    result
}

/// `image`'s layers start with all of `base`'s.
async fn ensure_layers_on(docker: &Docker, image: &str, base: &str) -> anyhow::Result<()> {
    let layers =
        |i: bollard::models::ImageInspect| i.root_fs.and_then(|r| r.layers).unwrap_or_default();
    let mine = layers(docker.inspect_image(image).await?);
    let theirs = layers(docker.inspect_image(base).await?);
    anyhow::ensure!(
        !theirs.is_empty() && mine.starts_with(&theirs) && mine.len() > theirs.len(),
        "{image} is not built on {base}"
    );
    Ok(())
}

async fn check_container(docker: &Docker, id: &str) -> anyhow::Result<()> {
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .context("starting the test container")?;

    let expectations: &[(&str, &str)] = &[
        ("etcd --version", "etcd Version: 3."),
        ("etcdctl version", "etcdctl version: 3."),
        ("redis-server --version", "Redis server v="),
        ("redis-cli --version", "redis-cli "),
        ("test -x /usr/sbin/sshd && ssh -V 2>&1", "OpenSSH_"),
        ("ip -brief link show lo", "lo"),
        ("tc -V", "tc utility"),
        ("iptables --version", "iptables v"),
        ("nft --version", "nftables v"),
        ("ps -o comm= -p 1", "tini"),
        ("command -v nc && command -v ping", "/usr/bin/ping"),
        ("cat /usr/local/share/cluster-sim/packages.txt", "etcd-server"),
        // No baked host keys: each node generates its own.
        (
            "test -z \"$(ls /etc/ssh/ssh_host_* 2>/dev/null)\" && echo no-host-keys",
            "no-host-keys",
        ),
        // cluster-sim-init makes this node's keys and a working sshd.
        (
            "cluster-sim-init --sshd && ls /etc/ssh/ssh_host_ed25519_key && pgrep -x sshd >/dev/null && echo sshd-up",
            "sshd-up",
        ),
        // Packaged redis config stays in the foreground.
        ("grep -E '^daemonize' /etc/redis/redis.conf", "daemonize no"),
    ];
    let mut failures = Vec::new();
    for (cmd, expected) in expectations {
        let (code, output) = exec(docker, id, cmd).await?;
        if code != 0 || !output.contains(expected) {
            failures.push(format!(
                "`{cmd}` exited {code}, expected output containing {expected:?}, got:\n{output}"
            ));
        }
    }
    if !failures.is_empty() {
        bail!("node image checks failed:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// Runs `sh -c cmd` in the container; returns its exit code and stdout+stderr.
async fn exec(docker: &Docker, id: &str, cmd: &str) -> anyhow::Result<(i64, String)> {
    let exec = docker
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(vec!["sh", "-c", cmd]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating exec `{cmd}`"))?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker
        .start_exec(&exec.id, None)
        .await
        .with_context(|| format!("starting exec `{cmd}`"))?
    {
        while let Some(chunk) = stream.next().await {
            output.push_str(
                &chunk
                    .with_context(|| format!("reading exec `{cmd}`"))?
                    .to_string(),
            );
        }
    }
    let code = docker
        .inspect_exec(&exec.id)
        .await
        .with_context(|| format!("inspecting exec `{cmd}`"))?
        .exit_code
        .unwrap_or(-1);
    Ok((code, output))
}

/// Removes every container this test labels, including any a crashed earlier run left.
async fn remove_test_containers(docker: &Docker) -> anyhow::Result<()> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_KEY}={LABEL_VALUE}")],
            )])),
            ..Default::default()
        }))
        .await
        .context("listing test containers")?;
    for container in containers {
        if let Some(id) = container.id {
            docker
                .remove_container(
                    &id,
                    Some(
                        RemoveContainerOptionsBuilder::default()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await
                .with_context(|| format!("removing test container {id}"))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_step_reports_step_message_and_output() -> anyhow::Result<()> {
    let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
    let real = default_definition_dir().context("no docker/node definition found")?;
    // Same package list as the real definition, so the same (cached) base is used.
    let dir = tempfile::tempdir()?;
    std::fs::copy(real.join("packages.txt"), dir.path().join("packages.txt"))?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\nRUN echo about to fail >&2 && exit 3\n",
    )?;

    let err = ImageBuilder::new(dir.path())
        .ensure(&docker)
        .await
        .expect_err("the RUN step exits 3");
    let text = err.to_string();
    eprintln!("reported error: {text}");
    match &err {
        cluster_sim_core::image::ImageError::Build {
            step,
            message,
            tail,
            ..
        } => {
            assert!(step.contains("RUN echo about to fail"), "{text}");
            assert!(message.contains("non-zero code: 3"), "{text}");
            assert!(tail.iter().any(|l| l.contains("about to fail")), "{text}");
        }
        other => panic!("expected a build error, got: {other}"),
    }
    Ok(())
}
