//! Self-tests of the run report and of retries: run the fixture suite (`examples/selftest_suite`)
//! as a subprocess on Docker, then check the JUnit report (flaky and rerun elements, schema),
//! each attempt's artifacts, and the HTML report as a real browser (headless Chromium) draws it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_valid, leftovers, spawn_suite};

#[test]
fn a_test_that_fails_then_passes_is_flaky_and_one_that_always_fails_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::retries", "--ignored", "--test-threads", "2"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(101), "{all}");
    for (name, result) in [("flaky", "ok"), ("always_fails", "FAILED")] {
        let line = regex::Regex::new(&format!(
            r"(?m)^test selftest::retries::{name} +\.\.\. {result}$"
        ))
        .unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{all}"
        );
    }
    assert!(
        stderr.contains(
            "FLAKY selftest::retries::flaky: failed 1 time(s), then passed on attempt 2 of 3"
        ),
        "{all}"
    );
    assert!(
        stderr.contains("retrying selftest::retries::always_fails: attempt 1 of 2 failed"),
        "{all}"
    );
    assert!(
        stderr
            .contains("1 flaky test(s) (failed, then passed on a retry): selftest::retries::flaky"),
        "{all}"
    );
    assert!(stdout.contains("all 2 attempts failed"), "{all}");

    let junit = dir.path().join("junit.xml");
    assert_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<flakyFailure "), "{xml}");
    assert!(xml.contains("<rerunFailure "), "{xml}");
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");

    // Each attempt kept its own artifacts: the failed ones always, the passing one never.
    let run = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let flaky = run.join("selftest::retries::flaky");
    assert!(flaky.join("test.log").is_file());
    assert!(!flaky.join("attempt-2").exists());
    let always = run.join("selftest::retries::always_fails");
    assert!(always.join("test.log").is_file());
    assert!(always.join("attempt-2/test.log").is_file());
    assert!(always.join("attempt-2/nodes/n2/service.log").is_file());
    let first = std::fs::read_to_string(always.join("test.log")).unwrap();
    let second = std::fs::read_to_string(always.join("attempt-2/test.log")).unwrap();
    // A fresh cluster for each attempt.
    let cluster = |log: &str| {
        regex::Regex::new(r"cluster (\S+) is up")
            .unwrap()
            .captures(log)
            .map(|c| c[1].to_string())
    };
    assert!(cluster(&first).is_some(), "{first}");
    assert_ne!(cluster(&first), cluster(&second));

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<b>1</b>flaky"), "summary");
    assert!(html.contains("data-name=\"selftest::retries::flaky\" data-status=\"flaky\""));
    assert!(html.contains("2 attempts"));
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
}

/// Cargo's target directory (the parent of the `tmp` directory cargo gives integration tests).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn headless(browser: &str, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        // A page that loads anything from the network shows nothing here: it has no network.
        "--proxy-server=127.0.0.1:9",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

// Where chromium is missing the build script marks this test ignored, naming the package; under
// `CI=true` it is never marked, so a CI without the browser fails here instead of skipping.
#[test]
#[cfg_attr(
    missing_chromium,
    ignore = "chromium is not installed: sudo apt-get install chromium (.ci/run does)"
)]
fn the_report_of_a_failing_run_draws_its_timeline_in_a_real_browser() {
    let browser = chromium().expect(
        "chromium is not installed (sudo apt-get install chromium): the browser test needs it",
    );
    // Kept after the test, as the artifact CI collects: the run, its report, a screenshot.
    let keep = target_dir().join("cluster-sim/browser-test");
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).unwrap();
    let (pid, out) = spawn_suite(
        &keep,
        &[
            "selftest::outcomes::fails_command",
            "selftest::outcomes::passes",
            "selftest::outcomes::plain_passes",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    let report = keep.join("report.html");
    assert!(report.is_file());
    let url = format!("file://{}", report.display());

    let profile = tempfile::tempdir().unwrap();
    let dom = headless(browser, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("running chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    std::fs::write(keep.join("report.dom.html"), &dom).unwrap();

    // The failing test is open, its timeline drawn by the page's script: a lane for the
    // cluster and for its node, the failed command in red on n1, and the failure point there.
    let start = dom
        .find("data-name=\"selftest::outcomes::fails_command\"")
        .expect("the failing test in the page");
    let end = dom[start..]
        .find("</details>\n")
        .map_or(dom.len(), |i| start + i);
    let section = &dom[start..end];
    assert!(section.contains("<svg"), "no timeline drawn:\n{section}");
    assert!(
        section.contains("class=\"lane\" data-node=\"cluster\""),
        "{section}"
    );
    assert!(
        section.contains("class=\"lane\" data-node=\"n1\""),
        "{section}"
    );
    assert!(section.contains("class=\"ev exec bad\""), "{section}");
    assert!(
        section.contains("class=\"failure-point\" data-node=\"n1\""),
        "{section}"
    );
    assert!(section.contains("failed: "), "{section}");
    // A passing test stays closed: its timeline is drawn only when opened.
    let passes = dom
        .find("data-name=\"selftest::outcomes::passes\"")
        .expect("the passing test in the page");
    assert!(
        !dom[passes..passes + 200].contains(" open"),
        "{}",
        &dom[passes..passes + 200]
    );

    let shot = keep.join("report.png");
    let s = headless(browser, profile.path())
        .arg("--window-size=1300,900")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("running chromium");
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("screenshot: {}", shot.display());
}
