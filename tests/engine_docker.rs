//! The Docker engine layer against the real engine on this machine.
//!
//! Each test works under its own stack label and removes everything carrying it (or the
//! test-owner label, for the deliberately foreign objects) when it ends, pass or fail. Checks
//! go through the `docker` CLI where possible, so they do not trust the code under test.
//!
//! Needs a running Docker engine (API ≥ 1.41) and the image `swarmctl-test/busybox:latest`,
//! which is built on first use when missing (tests/images/build.sh, or a local fallback).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::FutureExt;
use swarmctl::engine::{connect, ConnectOptions, DockerEngine, EngineError, HostEngine};
use swarmctl::model::host::{CandidateNames, ContainerState, HealthState};
use swarmctl::model::labels::{LABEL_SERVICE, LABEL_STACK};
use swarmctl::model::objects::{
    BuildSpec, ContainerSpec, FileContent, FileDelivery, Healthcheck, Mount, MountKind, NetworkAttachment, NetworkSpec, VolumeSpec,
};

const BUSYBOX: &str = "swarmctl-test/busybox:latest";
/// Marks objects a test creates *without* the stack label, so cleanup still finds them.
const LABEL_TEST_OWNER: &str = "io.swarmctl.test-owner";

// ---------------------------------------------------------------- harness

/// Runs `docker ARGS…`, returns stdout; panics with stderr on failure.
fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn docker_succeeds(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Makes sure the busybox test image exists: the image factory first, a minimal local import
/// as the fallback (Debian's static busybox plus one symlink per applet).
fn ensure_busybox_image() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if docker_succeeds(&["image", "inspect", BUSYBOX]) {
            return;
        }
        let factory = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/build.sh");
        if std::path::Path::new(factory).exists()
            && Command::new("bash").args([factory, "busybox"]).status().is_ok_and(|status| status.success())
            && docker_succeeds(&["image", "inspect", BUSYBOX])
        {
            return;
        }
        import_busybox_fallback(BUSYBOX);
    });
}

fn import_busybox_fallback(tag: &str) {
    if !std::path::Path::new("/bin/busybox").exists() {
        let installed = Command::new("apt-get").args(["install", "-y", "busybox-static"]).status();
        assert!(installed.is_ok_and(|status| status.success()), "apt-get install busybox-static failed");
    }
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::create_dir_all(root.path().join("etc")).expect("mkdir etc");
    std::fs::create_dir_all(root.path().join("tmp")).expect("mkdir tmp");
    std::fs::set_permissions(root.path().join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777))
        .expect("chmod 1777 tmp");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    let applets = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines().filter(|applet| *applet != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet symlink");
    }
    std::fs::write(root.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(root.path().join("etc/group"), "root:x:0:\n").expect("group");
    let mut tar = Command::new("tar")
        .args(["-C", &root.path().to_string_lossy(), "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar runs");
    let imported = Command::new("docker")
        .args(["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"/bin/sh\"]", "-", tag])
        .stdin(tar.stdout.take().expect("tar stdout"))
        .output()
        .expect("docker import runs");
    assert!(tar.wait().is_ok_and(|status| status.success()), "tar of the busybox root failed");
    assert!(imported.status.success(), "docker import: {}", String::from_utf8_lossy(&imported.stderr));
}

async fn engine() -> DockerEngine {
    connect(&ConnectOptions::from_environment(|name| std::env::var(name).ok())).await.expect("the local engine answers")
}

/// Removes every container, network and volume of `stack` (and the test's foreign objects).
fn cleanup(stack: &str) {
    for label in [format!("{LABEL_STACK}={stack}"), format!("{LABEL_TEST_OWNER}={stack}")] {
        let filter = format!("label={label}");
        let containers = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<&str> = containers.split_whitespace().collect();
        if !ids.is_empty() {
            docker(&[&["rm", "-f"][..], &ids[..]].concat());
        }
        for kind in ["network", "volume"] {
            let listed = docker(&[kind, "ls", "-q", "--filter", &filter]);
            let names: Vec<&str> = listed.split_whitespace().collect();
            if !names.is_empty() {
                docker(&[&[kind, "rm"][..], &names[..]].concat());
            }
        }
        let images = docker(&["images", "-q", "--filter", &filter]);
        let image_ids: BTreeSet<&str> = images.split_whitespace().collect();
        for image in image_ids {
            docker(&["rmi", "-f", image]);
        }
    }
}

/// Runs one test body under a fresh stack name, cleaning up whatever happens.
async fn with_stack<Body, Fut>(purpose: &str, body: Body)
where
    Body: FnOnce(DockerEngine, String) -> Fut,
    Fut: Future<Output = ()>,
{
    ensure_busybox_image();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let stack = format!("et{}{:05}-{purpose}", std::process::id() % 1000, nanos % 100_000);
    let engine = engine().await;
    let outcome = AssertUnwindSafe(body(engine, stack.clone())).catch_unwind().await;
    cleanup(&stack);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn labels(stack: &str, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_STACK.to_string(), stack.to_string()), (LABEL_SERVICE.to_string(), service.to_string())])
}

fn container(stack: &str, service: &str, command: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: format!("{stack}-{service}"),
        image: BUSYBOX.to_string(),
        command: Some(command.iter().map(|part| part.to_string()).collect()),
        labels: labels(stack, service),
        stop_grace: Some(Duration::from_secs(1)),
        ..ContainerSpec::default()
    }
}

fn healthcheck(test: &[&str], interval: Duration, retries: u32) -> Healthcheck {
    Healthcheck {
        test: test.iter().map(|part| part.to_string()).collect(),
        interval: Some(interval),
        // Generous: on a loaded 2-core machine the engine itself can take seconds to run a probe.
        timeout: Some(Duration::from_secs(10)),
        start_period: None,
        retries: Some(retries),
    }
}

fn inspect(object: &str) -> serde_json::Value {
    let text = docker(&["inspect", object]);
    let mut parsed: Vec<serde_json::Value> = serde_json::from_str(&text).expect("inspect JSON");
    parsed.pop().expect("one object")
}

fn unix_nanos_now() -> i128 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i128::try_from(elapsed.as_nanos()).expect("fits")
}

/// `2026-01-02T03:04:05.123456789Z` (the engine's timestamps) → nanoseconds since the epoch.
fn rfc3339_to_unix_nanos(text: &str) -> i128 {
    let number = |range: std::ops::Range<usize>| -> i128 { text[range].parse().expect("timestamp digits") };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let fraction = text[19..].trim_start_matches('.').trim_end_matches('Z');
    let nanos: i128 = format!("{fraction:0<9}")[..9].parse().expect("fraction digits");
    // Howard Hinnant's days_from_civil.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + nanos
}

/// How long after the end of `id`'s first passing probe a wait returned at `returned` (unix ns):
/// measured against the probe's own end time, so it does not depend on how loaded the machine is.
fn reaction_to_first_probe(id: &str, returned: i128) -> Duration {
    let probe_end = inspect(id)["State"]["Health"]["Log"][0]["End"].as_str().map(rfc3339_to_unix_nanos);
    let probe_end = probe_end.expect("the health log has an end time");
    Duration::from_nanos(u64::try_from(returned - probe_end).expect("returned after the probe"))
}

/// Creates and starts `count` sleeping containers `<prefix>NN` with `check`; their IDs.
async fn start_sleepers(engine: &DockerEngine, stack: &str, prefix: &str, count: usize, check: Healthcheck) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..count {
        let spec = ContainerSpec {
            healthcheck: Some(check.clone()),
            ..container(stack, &format!("{prefix}{index:02}"), &["/bin/sleep", "300"])
        };
        let id = engine.create_container(&spec).await.expect("create");
        engine.start_container(&id).await.expect("start");
        ids.push(id);
    }
    ids
}

const SECRET: &str = "s3cret-value-do-not-print";

fn secret_file() -> FileDelivery {
    FileDelivery {
        path: "/run/secrets/token".into(),
        mode: 0o400,
        uid: 1000,
        gid: 1001,
        content: FileContent::new(format!("{SECRET}\n")),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn engine_info_reports_the_negotiated_api_version() {
    let info = engine().await.info().await.expect("info");
    assert!(!info.id.is_empty());
    let expected = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(info.api_version, expected.trim(), "the client must speak the server's API version");
    let swarm = docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
    assert_eq!(info.swarm_manager, swarm.trim() == "true");
}

#[tokio::test]
async fn a_container_joins_two_networks_with_aliases_gets_its_files_and_is_observed() {
    with_stack("full", |engine, stack| async move {
        // Networks and a volume of the stack.
        let front = engine
            .create_network(&NetworkSpec { name: format!("{stack}-front"), labels: labels(&stack, ""), ..NetworkSpec::default() })
            .await
            .expect("create front network");
        let back = engine
            .create_network(&NetworkSpec {
                name: format!("{stack}-back"),
                internal: true,
                labels: labels(&stack, ""),
                ..NetworkSpec::default()
            })
            .await
            .expect("create back network");
        let volume = format!("{stack}-data");
        engine
            .create_volume(&VolumeSpec { name: volume.clone(), labels: labels(&stack, "app"), ..VolumeSpec::default() })
            .await
            .expect("create volume");

        // The app: two networks with aliases, a volume, a secret file.
        let app_spec = ContainerSpec {
            network: Some(NetworkAttachment { network_id: front.clone(), aliases: vec!["app".into(), "app-front".into()], ..Default::default() }),
            mounts: vec![Mount { kind: MountKind::Volume, source: volume.clone(), target: "/data".into(), read_only: false, ..Default::default() }],
            ..container(&stack, "app", &["/bin/sleep", "300"])
        };
        let app = engine.create_container(&app_spec).await.expect("create app");
        let back_attachment = NetworkAttachment { network_id: back.clone(), aliases: vec!["app-back".into()], ..Default::default() };
        engine.connect_network(&app, &back_attachment).await.expect("connect back");
        engine.copy_files(&app, &[secret_file()]).await.expect("copy files");
        let inspected = inspect(&app);
        assert_eq!(inspected["State"]["Status"], "created", "create must not start");
        let endpoints = &inspected["NetworkSettings"]["Networks"];
        let front_name = format!("{stack}-front");
        let back_name = format!("{stack}-back");
        let aliases = |network: &str| -> BTreeSet<String> {
            endpoints[network]["Aliases"]
                .as_array()
                .map(|list| list.iter().filter_map(|alias| alias.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        assert!(aliases(&front_name).contains("app") && aliases(&front_name).contains("app-front"), "{endpoints}");
        assert!(aliases(&back_name).contains("app-back"), "{endpoints}");
        assert_eq!(endpoints.as_object().map(|networks| networks.len()), Some(2), "exactly the two networks: {endpoints}");

        engine.start_container(&app).await.expect("start app");
        engine.wait_running(&app, Duration::from_secs(10)).await.expect("app runs");

        // The delivered file, read back by a container that prints its mode, owner and content.
        let reader_spec = container(
            &stack,
            "reader",
            &["/bin/sh", "-c", "stat -c '%a %u %g' /run/secrets/token && cat /run/secrets/token && stat -c '%a' /run/secrets"],
        );
        let reader = engine.create_container(&reader_spec).await.expect("create reader");
        engine.copy_files(&reader, &[secret_file()]).await.expect("copy files");
        engine.start_container(&reader).await.expect("start reader");
        let outcome = engine.wait_exit(&reader, Duration::from_secs(20), 10).await.expect("reader exits");
        assert_eq!(outcome.exit_code, 0, "{:?}", outcome.log_tail);
        assert_eq!(outcome.log_tail, ["400 1000 1001", SECRET, "755"]);

        // A foreign container, network and volume holding names the plan wants.
        let foreign_container = format!("{stack}-web");
        let foreign_network = format!("{stack}-taken-net");
        let foreign_volume = format!("{stack}-taken-vol");
        let owner = format!("{LABEL_TEST_OWNER}={stack}");
        docker(&["create", "--name", &foreign_container, "--label", &owner, BUSYBOX, "true"]);
        docker(&["network", "create", "--label", &owner, &foreign_network]);
        docker(&["volume", "create", "--label", &owner, &foreign_volume]);

        let candidates = CandidateNames {
            containers: BTreeSet::from([format!("{stack}-app"), foreign_container.clone(), format!("{stack}-free")]),
            networks: BTreeSet::from([front_name.clone(), foreign_network.clone()]),
            volumes: BTreeSet::from([volume.clone(), foreign_volume.clone()]),
            host_paths: BTreeSet::from(["/etc".to_string(), "/swarmctl-does-not-exist".to_string()]),
        };
        let observed = engine.observe(&stack, &candidates).await.expect("observe");
        assert_eq!(observed.missing_host_paths, BTreeSet::from(["/swarmctl-does-not-exist".to_string()]));
        let names: Vec<&str> = observed.containers.iter().map(|container| container.name.as_str()).collect();
        assert_eq!(names, [format!("{stack}-app"), format!("{stack}-reader")]);
        let observed_app = &observed.containers[0];
        assert_eq!(observed_app.id, app);
        assert_eq!(observed_app.state, ContainerState::Running);
        assert_eq!(observed_app.image, BUSYBOX);
        assert_eq!(observed_app.labels.get(LABEL_SERVICE).map(String::as_str), Some("app"));
        assert!(observed_app.created.ends_with('Z') && observed_app.created.len() == 20, "{}", observed_app.created);
        assert_eq!(observed.containers[1].state, ContainerState::Exited { code: 0 });
        let network_ids: BTreeSet<&str> = observed.networks.iter().map(|network| network.id.as_str()).collect();
        assert_eq!(network_ids, BTreeSet::from([front.as_str(), back.as_str()]));
        assert_eq!(observed.volumes.len(), 1);
        assert_eq!(observed.volumes[0].name, volume);
        assert_eq!(observed.foreign_names.containers, BTreeSet::from([foreign_container.clone()]));
        assert_eq!(observed.foreign_names.networks, BTreeSet::from([foreign_network.clone()]));
        assert_eq!(observed.foreign_names.volumes, BTreeSet::from([foreign_volume.clone()]));
        assert!(observed.images.contains(BUSYBOX), "{:?}", observed.images);
        let snapshot = serde_json::to_string(&observed).expect("snapshot serialises");
        assert!(!snapshot.contains(SECRET));

        // Teardown through the engine, twice: removal is idempotent.
        engine.stop_container(&app, Some(Duration::from_secs(1))).await.expect("stop app");
        for _ in 0..2 {
            engine.remove_container(&app, false).await.expect("remove app");
            engine.remove_container(&reader, false).await.expect("remove reader");
            engine.remove_network(&front).await.expect("remove front");
            engine.remove_network(&back).await.expect("remove back");
            engine.remove_volume(&volume).await.expect("remove volume");
        }
        let after = engine.observe(&stack, &CandidateNames::default()).await.expect("observe after");
        assert!(after.containers.is_empty() && after.networks.is_empty() && after.volumes.is_empty(), "{after:?}");
    })
    .await;
}

#[tokio::test]
async fn wait_healthy_returns_promptly_and_reports_unhealthy_checks_with_their_log() {
    with_stack("health", |engine, stack| async move {
        let healthy_spec = ContainerSpec {
            healthcheck: Some(healthcheck(&["CMD-SHELL", "echo fine"], Duration::from_millis(300), 2)),
            ..container(&stack, "good", &["/bin/sleep", "300"])
        };
        let failing_spec = ContainerSpec {
            healthcheck: Some(healthcheck(
                &["CMD-SHELL", "echo probe-failed-marker; exit 1"],
                Duration::from_millis(300),
                2,
            )),
            ..container(&stack, "bad", &["/bin/sleep", "300"])
        };
        let good = engine.create_container(&healthy_spec).await.expect("create good");
        let bad = engine.create_container(&failing_spec).await.expect("create bad");
        engine.start_container(&bad).await.expect("start bad");
        engine.start_container(&good).await.expect("start good");
        engine.wait_healthy(&good, Duration::from_secs(20)).await.expect("good becomes healthy");
        // React to the health event, not to a poll (polling alone: up to 5 s).
        let reaction = reaction_to_first_probe(&good, unix_nanos_now());
        writeln!(std::io::stderr(), "wait_healthy returned {reaction:?} after the first passing probe ended").ok();
        assert!(reaction < Duration::from_millis(500), "healthy noticed {reaction:?} after the probe");
        let health = inspect(&good)["State"]["Health"]["Status"].clone();
        assert_eq!(health, "healthy");

        let error = engine.wait_healthy(&bad, Duration::from_secs(20)).await.expect_err("bad is unhealthy");
        let EngineError::WaitFailed { resource, reason, detail, .. } = &error else {
            panic!("expected WaitFailed, got {error:?}");
        };
        assert_eq!(resource, &format!("{stack}-bad"));
        assert!(reason.contains("unhealthy"), "{reason}");
        assert!(!detail.is_empty() && detail.len() <= 5, "{detail:?}");
        assert!(detail.iter().any(|line| line.contains("exit 1") && line.contains("probe-failed-marker")), "{detail:?}");
        assert!(detail.iter().all(|line| line.starts_with("health check exit")), "{detail:?}");

        // Observe reads health from the list's status text; it must agree with inspect.
        let observed = engine.observe(&stack, &CandidateNames::default()).await.expect("observe");
        let health_of = |name: &str| {
            observed.containers.iter().find(|container| container.name == name).and_then(|container| container.health)
        };
        assert_eq!(health_of(&format!("{stack}-good")), Some(HealthState::Healthy));
        assert_eq!(health_of(&format!("{stack}-bad")), Some(HealthState::Unhealthy));
    })
    .await;
}

#[tokio::test]
async fn wait_healthy_times_out_while_starting_and_fails_when_the_container_dies() {
    with_stack("slowdeath", |engine, stack| async move {
        let slow_spec = ContainerSpec {
            healthcheck: Some(Healthcheck {
                start_period: Some(Duration::from_secs(120)),
                ..healthcheck(&["CMD-SHELL", "exit 1"], Duration::from_millis(200), 1)
            }),
            ..container(&stack, "slow", &["/bin/sleep", "300"])
        };
        let dying_spec = ContainerSpec {
            healthcheck: Some(healthcheck(&["CMD-SHELL", "true"], Duration::from_secs(5), 3)),
            ..container(&stack, "dying", &["/bin/sh", "-c", "echo dying-marker; sleep 0.3; exit 7"])
        };
        let slow = engine.create_container(&slow_spec).await.expect("create slow");
        let dying = engine.create_container(&dying_spec).await.expect("create dying");
        engine.start_container(&slow).await.expect("start slow");
        engine.start_container(&dying).await.expect("start dying");

        let started = Instant::now();
        let error = engine.wait_healthy(&slow, Duration::from_millis(1500)).await.expect_err("still starting");
        assert!(started.elapsed() >= Duration::from_millis(1500) && started.elapsed() < Duration::from_secs(4));
        let EngineError::Timeout { detail, .. } = &error else { panic!("expected Timeout, got {error:?}") };
        assert!(detail.first().is_some_and(|line| line.contains("health starting")), "{detail:?}");

        let started = Instant::now();
        let error = engine.wait_healthy(&dying, Duration::from_secs(20)).await.expect_err("it dies");
        assert!(started.elapsed() < Duration::from_secs(3), "death noticed after {:?}", started.elapsed());
        let EngineError::WaitFailed { reason, detail, .. } = &error else { panic!("expected WaitFailed, got {error:?}") };
        assert!(reason.contains("exited with code 7"), "{reason}");
        assert!(detail.iter().any(|line| line.contains("dying-marker")), "{detail:?}");
    })
    .await;
}

/// How many event subscriptions the daemon is serving right now, to anyone.
fn daemon_event_listeners() -> usize {
    docker(&["info", "--format", "{{.NEventsListener}}"]).trim().parse().expect("a listener count")
}

#[tokio::test]
async fn concurrent_waits_share_one_event_subscription_which_restarts_after_going_idle() {
    const WAITS: usize = 12;
    with_stack("shared", |engine, stack| async move {
        // Healthy only once the test says so, so every wait is still listening when we count.
        let ready_file = healthcheck(&["CMD-SHELL", "test -f /tmp/ready"], Duration::from_millis(300), 100);
        let ids = start_sleepers(&engine, &stack, "w", WAITS, ready_file).await;
        let waits = futures::future::join_all(ids.iter().map(|id| engine.wait_healthy(id, Duration::from_secs(60))));
        futures::pin_mut!(waits);
        // Count the daemon's subscribers while all waits run. Other tests in this binary may hold
        // a subscription each; a subscription per wait would show at least WAITS.
        let mut most = 0;
        for _ in 0..10 {
            tokio::select! {
                _ = &mut waits => panic!("a wait ended before its container could be healthy"),
                () = tokio::time::sleep(Duration::from_millis(200)) => most = most.max(daemon_event_listeners()),
            }
        }
        for id in &ids {
            docker(&["exec", id, "touch", "/tmp/ready"]);
        }
        for outcome in waits.await {
            outcome.expect("every container becomes healthy");
        }
        writeln!(std::io::stderr(), "{WAITS} concurrent waits: at most {most} daemon event subscriptions").ok();
        assert!((1..WAITS).contains(&most), "{most} event subscriptions for {WAITS} waits");

        // Once nobody listens the subscription ends; the next wait starts a new one and still
        // reacts to the health event rather than to a poll.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let spec = ContainerSpec {
            healthcheck: Some(healthcheck(&["CMD-SHELL", "true"], Duration::from_millis(300), 3)),
            ..container(&stack, "late", &["/bin/sleep", "300"])
        };
        let late = engine.create_container(&spec).await.expect("create late");
        engine.start_container(&late).await.expect("start late");
        engine.wait_healthy(&late, Duration::from_secs(20)).await.expect("late becomes healthy");
        let reaction = reaction_to_first_probe(&late, unix_nanos_now());
        assert!(reaction < Duration::from_millis(500), "healthy noticed {reaction:?} after the probe");
    })
    .await;
}

#[tokio::test]
async fn wait_exit_returns_the_code_and_the_last_log_lines() {
    with_stack("exit", |engine, stack| async move {
        let job_spec = container(
            &stack,
            "job",
            &["/bin/sh", "-c", "echo err-line >&2; sleep 0.2; for i in 1 2 3 4 5; do echo line-$i; done; exit 3"],
        );
        let job = engine.create_container(&job_spec).await.expect("create job");
        engine.start_container(&job).await.expect("start job");
        let outcome = engine.wait_exit(&job, Duration::from_secs(20), 3).await.expect("job exits");
        assert_eq!(outcome.exit_code, 3);
        assert_eq!(outcome.log_tail, ["line-3", "line-4", "line-5"]);
        let everything = engine.wait_exit(&job, Duration::from_secs(5), 100).await.expect("exited already");
        assert_eq!(everything.log_tail.first().map(String::as_str), Some("err-line"), "stderr is included");

        // wait_running refuses a container that exited non-zero and shows why.
        let error = engine.wait_running(&job, Duration::from_secs(5)).await.expect_err("exited 3");
        let EngineError::WaitFailed { reason, detail, .. } = &error else { panic!("expected WaitFailed, got {error:?}") };
        assert!(reason.contains("exited with code 3"), "{reason}");
        assert!(detail.iter().any(|line| line.contains("line-5")), "{detail:?}");

        // A container that does not exit in time.
        let sleeper = engine.create_container(&container(&stack, "sleeper", &["/bin/sleep", "300"])).await.expect("create");
        engine.start_container(&sleeper).await.expect("start sleeper");
        let error = engine.wait_exit(&sleeper, Duration::from_millis(500), 5).await.expect_err("still running");
        assert!(matches!(error, EngineError::Timeout { .. }), "{error:?}");
    })
    .await;
}

/// "Converged" means it stays up: a container that dies a second after starting fails the
/// stability wait with its exit code and last lines; one that stays up passes.
#[tokio::test]
async fn wait_stable_fails_on_a_container_that_dies_soon_after_starting() {
    with_stack("stable", |engine, stack| async move {
        let dying = engine
            .create_container(&container(&stack, "dying", &["/bin/sh", "-c", "echo bad config; sleep 1; exit 2"]))
            .await
            .expect("create dying");
        engine.start_container(&dying).await.expect("start dying");
        engine.wait_running(&dying, Duration::from_secs(10)).await.expect("running at first");
        let error = engine.wait_stable(&dying, Duration::from_secs(4), true).await.expect_err("dies within the window");
        let EngineError::WaitFailed { reason, detail, .. } = &error else { panic!("expected WaitFailed, got {error:?}") };
        assert!(reason.contains("exited with code 2"), "{reason}");
        assert!(detail.iter().any(|line| line.contains("bad config")), "{detail:?}");

        let steady = engine.create_container(&container(&stack, "steady", &["/bin/sleep", "300"])).await.expect("create steady");
        engine.start_container(&steady).await.expect("start steady");
        engine.wait_stable(&steady, Duration::from_secs(2), true).await.expect("stays up");
    })
    .await;
}

#[tokio::test]
async fn stop_uses_the_stop_signal_stored_at_create() {
    with_stack("signal", |engine, stack| async move {
        let spec = ContainerSpec {
            stop_signal: Some("SIGUSR1".into()),
            stop_grace: Some(Duration::from_secs(20)),
            ..container(
                &stack,
                "graceful",
                &["/bin/sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done"],
            )
        };
        let id = engine.create_container(&spec).await.expect("create");
        let config = inspect(&id)["Config"].clone();
        assert_eq!(config["StopSignal"], "SIGUSR1");
        assert_eq!(config["StopTimeout"], 20);
        engine.start_container(&id).await.expect("start");
        engine.wait_running(&id, Duration::from_secs(5)).await.expect("running");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        engine.stop_container(&id, None).await.expect("stop");
        assert!(started.elapsed() < Duration::from_secs(5), "the trap ran, no SIGKILL after 20 s");
        let outcome = engine.wait_exit(&id, Duration::from_secs(5), 5).await.expect("exited");
        assert_eq!(outcome.exit_code, 0);
        assert!(outcome.log_tail.iter().any(|line| line == "got-usr1"), "{:?}", outcome.log_tail);
    })
    .await;
}

#[tokio::test]
async fn conflicts_missing_objects_and_half_made_containers() {
    with_stack("conflict", |engine, stack| async move {
        // Same container name twice.
        let spec = container(&stack, "web", &["/bin/sleep", "300"]);
        let first = engine.create_container(&spec).await.expect("create");
        let error = engine.create_container(&spec).await.expect_err("name taken");
        assert!(error.is_conflict(), "{error:?}");
        assert!(error.to_string().starts_with(&format!("create container {stack}-web: conflict")), "{error}");

        // Same network name twice: Engine 20.10 would create a duplicate without CheckDuplicate.
        let network = NetworkSpec { name: format!("{stack}-net"), labels: labels(&stack, ""), ..NetworkSpec::default() };
        engine.create_network(&network).await.expect("create network");
        let error = engine.create_network(&network).await.expect_err("network name taken");
        assert!(error.is_conflict(), "{error:?}");
        let same_name = docker(&["network", "ls", "-q", "--filter", &format!("name=^{}$", network.name)]);
        assert_eq!(same_name.split_whitespace().count(), 1, "no duplicate network was created");

        // Rename onto a taken name.
        let other = engine.create_container(&container(&stack, "other", &["/bin/true"])).await.expect("create other");
        let error = engine.rename_container(&other, &format!("{stack}-web")).await.expect_err("taken");
        assert!(error.is_conflict(), "{error:?}");
        engine.rename_container(&other, &format!("{stack}-renamed")).await.expect("rename");
        assert_eq!(inspect(&other)["Name"], format!("/{stack}-renamed"));

        // Missing things.
        assert!(engine.start_container("swarmctl-no-such-container").await.expect_err("missing").is_not_found());
        engine.remove_container("swarmctl-no-such-container", false).await.expect("removing a missing container succeeds");
        engine.remove_network("0000000000000000000000000000000000000000000000000000000000000000").await.expect("missing network");
        engine.remove_volume("swarmctl-no-such-volume").await.expect("missing volume");
        assert!(engine.image_exists(BUSYBOX).await.expect("inspect image"));
        assert!(!engine.image_exists("swarmctl-test/no-such-image:1").await.expect("inspect image"));
        let missing_image = ContainerSpec { image: "swarmctl-test/no-such-image:1".into(), ..container(&stack, "noimage", &["x"]) };
        assert!(engine.create_container(&missing_image).await.expect_err("no image").is_not_found());

        // Engine 20.10 quirk: connecting a created container to a missing network succeeds;
        // the start fails instead, with a 404 the executor can match.
        let net_id = engine
            .create_network(&NetworkSpec { name: format!("{stack}-ok"), labels: labels(&stack, ""), ..NetworkSpec::default() })
            .await
            .expect("network");
        let dangling = ContainerSpec {
            network: Some(NetworkAttachment { network_id: net_id.clone(), aliases: vec![], ..Default::default() }),
            ..container(&stack, "dangling", &["/bin/true"])
        };
        let dangling_id = engine.create_container(&dangling).await.expect("create succeeds");
        let missing = NetworkAttachment { network_id: "swarmctl-no-such-network".into(), aliases: vec![], ..Default::default() };
        engine.connect_network(&dangling_id, &missing).await.expect("connect succeeds");
        let error = engine.start_container(&dangling_id).await.expect_err("start fails");
        assert!(error.is_not_found(), "{error:?}");
        assert!(error.to_string().contains(&format!("{stack}-dangling")), "errors name the container: {error}");

        // A file that cannot be written (under a regular file) fails the copy, naming the
        // container and never the content.
        let half = ContainerSpec {
            network: Some(NetworkAttachment { network_id: net_id, aliases: vec![], ..Default::default() }),
            ..container(&stack, "half", &["/bin/true"])
        };
        let half_id = engine.create_container(&half).await.expect("create");
        let impossible = FileDelivery { path: "/etc/passwd/impossible".into(), ..secret_file() };
        let error = engine.copy_files(&half_id, &[impossible]).await.expect_err("delivery fails");
        assert!(error.to_string().starts_with(&format!("copy files {stack}-half")), "{error}");
        assert!(!error.to_string().contains(SECRET));

        // A running container is not removed without a stop.
        engine.start_container(&first).await.expect("start");
        assert!(engine.remove_container(&first, false).await.expect_err("running").is_conflict());

        // Redacted file content (a plan read back from JSON) is refused before anything changes.
        let json = serde_json::to_string(&secret_file()).expect("serialise");
        let redacted: FileDelivery = serde_json::from_str(&json).expect("deserialise");
        let error = engine.copy_files(&half_id, &[redacted]).await.expect_err("redacted content");
        assert!(matches!(error, EngineError::Invalid { .. }), "{error:?}");
        assert!(!error.to_string().contains(SECRET));
    })
    .await;
}

#[tokio::test]
async fn build_image_tags_a_context_and_reports_a_failing_step() {
    with_stack("build", |engine, stack| async move {
        let context = tempfile::tempdir().expect("context dir");
        std::fs::write(
            context.path().join("Dockerfile"),
            format!("FROM {BUSYBOX}\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\nCOPY hello.txt /hello.txt\n"),
        )
        .expect("Dockerfile");
        std::fs::write(context.path().join("hello.txt"), "hello from the context\n").expect("hello.txt");
        let tag = format!("swarmctl-test/{stack}:latest");
        let owner = BTreeMap::from([(LABEL_TEST_OWNER.to_string(), stack.clone())]);
        let spec = BuildSpec {
            context: context.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            build_args: BTreeMap::from([("GREETING".to_string(), "built-with-args".to_string())]),
            tag: tag.clone(),
            labels: owner.clone(),
            ..BuildSpec::default()
        };
        engine.build_image(&spec).await.expect("build");
        assert!(engine.image_exists(&tag).await.expect("inspect"));

        let reader = ContainerSpec { image: tag.clone(), ..container(&stack, "built", &["/bin/sh", "-c", "cat /greeting /hello.txt"]) };
        let id = engine.create_container(&reader).await.expect("create from built image");
        engine.start_container(&id).await.expect("start");
        let outcome = engine.wait_exit(&id, Duration::from_secs(20), 5).await.expect("exit");
        assert_eq!(outcome.log_tail, ["built-with-args", "hello from the context"]);

        std::fs::write(context.path().join("Broken.dockerfile"), format!("FROM {BUSYBOX}\nRUN echo broken-step-output; exit 3\n"))
            .expect("broken Dockerfile");
        let broken = BuildSpec { dockerfile: "Broken.dockerfile".into(), tag: format!("swarmctl-test/{stack}-broken:latest"), labels: owner, ..spec };
        let error = engine.build_image(&broken).await.expect_err("RUN fails");
        let EngineError::WaitFailed { reason, detail, .. } = &error else { panic!("expected WaitFailed, got {error:?}") };
        assert!(reason.contains("non-zero code: 3"), "{reason}");
        assert!(detail.iter().any(|line| line.contains("broken-step-output")), "{detail:?}");

        let missing = BuildSpec { dockerfile: "Nope".into(), ..broken };
        assert!(matches!(engine.build_image(&missing).await, Err(EngineError::Invalid { .. })));
    })
    .await;
}

#[tokio::test]
async fn observe_is_fast_and_reads_health_from_one_list() {
    with_stack("timing", |engine, stack| async move {
        let candidates = CandidateNames::default();
        let mut empty = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            engine.observe(&stack, &candidates).await.expect("observe");
            empty.push(started.elapsed());
        }
        let ids = start_sleepers(&engine, &stack, "svc", 20, healthcheck(&["CMD-SHELL", "true"], Duration::from_millis(500), 3)).await;
        for id in &ids {
            engine.wait_healthy(id, Duration::from_secs(30)).await.expect("healthy");
        }
        let mut full = Vec::new();
        let mut observed = None;
        for _ in 0..5 {
            let started = Instant::now();
            observed = Some(engine.observe(&stack, &candidates).await.expect("observe"));
            full.push(started.elapsed());
        }
        let observed = observed.expect("observed");
        assert_eq!(observed.containers.len(), 20);
        assert!(observed.containers.iter().all(|container| container.health == Some(HealthState::Healthy)));
        empty.sort();
        full.sort();
        let mut stderr = std::io::stderr();
        writeln!(stderr, "observe timing: empty stack median {:?}, 20 containers median {:?}", empty[2], full[2]).ok();
        assert!(full[2] < Duration::from_millis(250), "observe of 20 containers took {:?}", full[2]);
    })
    .await;
}

