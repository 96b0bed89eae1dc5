//! The engine's own floor for the deploy benchmark (`benches/deploy.sh`): the same containers a
//! stack deploy makes (image, env, labels, health check, one user-defined network with the
//! service name as alias), created and started straight through the Docker Engine API with no
//! concurrency bound, no planning and no state. Not part of swarmctl; a yardstick.
//!
//!     engine_floor --topology FILE --prefix NAME --bench-id ID [--health] [--mode flat|dag] [--subnet CIDR]
//!
//! FILE has one line per service: `name<TAB>wave<TAB>dep,dep` (deps may be empty).
//!
//! * `flat`: every container created and started at once (create then start, N tasks in
//!   parallel), ignoring dependencies; with `--health`, then waits until all are healthy.
//! * `dag`: every container pre-created at once; then each is started the instant its
//!   dependencies are started (or healthy, with `--health`), learnt from the engine's event
//!   stream (push, no polling); ends when all are started (healthy). This is the stack's
//!   critical path on this engine with unbounded parallelism.
//!
//! Prints one `key=value` line of timings (milliseconds) on stdout. Removes nothing: the
//! benchmark script cleans up by the `org.swarmctl.bench` label.

use bollard::models::{
    ContainerCreateBody, EndpointSettings, EventMessage, HealthConfig, HostConfig, Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptions, EventsOptions};
use bollard::Docker;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Service {
    name: String,
    wave: usize,
    deps: Vec<usize>,
}

struct Args {
    topology: String,
    prefix: String,
    bench_id: String,
    image: String,
    health: bool,
    dag: bool,
    subnet: Option<String>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        topology: String::new(),
        prefix: String::new(),
        bench_id: String::new(),
        image: "swarmctl-test/testapp:latest".into(),
        health: false,
        dag: false,
        subnet: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--topology" => args.topology = value()?,
            "--prefix" => args.prefix = value()?,
            "--bench-id" => args.bench_id = value()?,
            "--image" => args.image = value()?,
            "--health" => args.health = true,
            "--subnet" => args.subnet = Some(value()?),
            "--mode" => match value()?.as_str() {
                "flat" => args.dag = false,
                "dag" => args.dag = true,
                other => return Err(format!("unknown mode {other}").into()),
            },
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.topology.is_empty() || args.prefix.is_empty() || args.bench_id.is_empty() {
        return Err("usage: engine_floor --topology FILE --prefix NAME --bench-id ID [--health] [--mode flat|dag] [--subnet CIDR]".into());
    }
    Ok(args)
}

fn read_topology(path: &str) -> Result<Vec<Service>, Error> {
    let text = std::fs::read_to_string(path)?;
    let rows: Vec<Vec<&str>> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.split('\t').collect()).collect();
    let index: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, r)| (r[0], i)).collect();
    rows.iter()
        .map(|r| {
            let deps = r.get(2).map(|d| d.split(',').filter(|s| !s.is_empty()).map(|d| index.get(d).copied().ok_or(format!("unknown dep {d}"))).collect::<Result<Vec<_>, _>>()).transpose()?;
            Ok(Service { name: r[0].to_string(), wave: r.get(1).and_then(|w| w.parse().ok()).unwrap_or(0), deps: deps.unwrap_or_default() })
        })
        .collect()
}

fn body(args: &Args, network: &str, service: &Service) -> ContainerCreateBody {
    let mut env = vec!["TESTAPP_PORTS=8080".to_string()];
    let mut healthcheck = None;
    if args.health {
        env.push("TESTAPP_START_DELAY=1s".into());
        healthcheck = Some(HealthConfig {
            test: Some(["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"].map(String::from).to_vec()),
            interval: Some(1_000_000_000),
            timeout: Some(2_000_000_000),
            retries: Some(30),
            ..Default::default()
        });
    }
    // As many labels as a swarmctl container carries.
    let labels = HashMap::from([
        ("org.swarmctl.bench".to_string(), args.bench_id.clone()),
        ("io.swarmctl.floor.stack".to_string(), args.prefix.clone()),
        ("io.swarmctl.floor.service".to_string(), service.name.clone()),
        ("io.swarmctl.floor.replica".to_string(), "1".to_string()),
        ("io.swarmctl.floor.hash".to_string(), format!("{:016x}", service.name.len() * 7919)),
    ]);
    ContainerCreateBody {
        image: Some(args.image.clone()),
        env: Some(env),
        labels: Some(labels),
        healthcheck,
        host_config: Some(HostConfig { network_mode: Some(network.to_string()), ..Default::default() }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings { aliases: Some(vec![service.name.clone()]), ..Default::default() },
            )])),
        }),
        ..Default::default()
    }
}

fn container_name(args: &Args, service: &Service) -> String {
    format!("{}-{}-1", args.prefix, service.name)
}

enum Message {
    /// The start call of this service returned.
    Started(usize, Duration),
    /// The engine reported the container healthy.
    Healthy(usize),
    Failed(String),
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn percentile(mut values: Vec<Duration>, p: f64) -> u128 {
    if values.is_empty() {
        return 0;
    }
    values.sort();
    ms(values[((values.len() - 1) as f64 * p).round() as usize])
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let services = read_topology(&args.topology)?;
    let n = services.len();
    let begin = Instant::now();
    let docker = Docker::connect_with_local_defaults()?.negotiate_version().await?;
    let connected = begin.elapsed();

    // Subscribe to the events first, so no health change is missed (replay from the start of this second).
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let by_name: HashMap<String, usize> = services.iter().enumerate().map(|(i, s)| (container_name(&args, s), i)).collect();
    if args.health {
        let since = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs().to_string();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![format!("org.swarmctl.bench={}", args.bench_id)]),
        ]);
        let mut events = Box::pin(docker.events(Some(EventsOptions { since: Some(since), until: None, filters: Some(filters) })));
        // Make sure the subscription is live before anything starts: the first poll sends the request.
        let (live_tx, live_rx) = tokio::sync::oneshot::channel::<()>();
        let events_tx = tx.clone();
        let names = by_name.clone();
        tokio::spawn(async move {
            let mut live = Some(live_tx);
            loop {
                let next = futures::future::poll_fn(|cx| {
                    let poll = futures::Stream::poll_next(events.as_mut(), cx);
                    if let Some(live) = live.take() {
                        let _ = live.send(());
                    }
                    poll
                })
                .await;
                let Some(event) = next else { break };
                let event: EventMessage = match event {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = events_tx.send(Message::Failed(format!("event stream: {e}")));
                        break;
                    }
                };
                if event.action.as_deref() != Some("health_status: healthy") {
                    continue;
                }
                let name = event.actor.and_then(|a| a.attributes).and_then(|mut a| a.remove("name")).unwrap_or_default();
                if let Some(&i) = names.get(&name) {
                    let _ = events_tx.send(Message::Healthy(i));
                }
            }
        });
        let _ = live_rx.await;
        // The request is on its way; give the daemon a moment to register the subscription.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let network = format!("{}_default", args.prefix);
    let t_network = Instant::now();
    docker
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([("org.swarmctl.bench".to_string(), args.bench_id.clone())])),
            ipam: args.subnet.clone().map(|subnet| Ipam {
                config: Some(vec![IpamConfig { subnet: Some(subnet), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let network_time = t_network.elapsed();

    let mut create_times: Vec<Duration> = Vec::new();
    let mut start_times: Vec<Duration> = Vec::new();
    let mut ids: Vec<String> = vec![String::new(); n];
    let mut create_all = Duration::ZERO;
    let t_containers = Instant::now();

    let create = |i: usize| {
        let docker = docker.clone();
        let name = container_name(&args, &services[i]);
        let config = body(&args, &network, &services[i]);
        async move {
            let t = Instant::now();
            let id = docker.create_container(Some(CreateContainerOptions { name: Some(name), ..Default::default() }), config).await?.id;
            Ok::<_, Error>((i, id, t.elapsed()))
        }
    };
    let spawn_start = |i: usize, id: String, tx: mpsc::UnboundedSender<Message>| {
        let docker = docker.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            match docker.start_container(&id, None).await {
                Ok(()) => tx.send(Message::Started(i, t.elapsed())),
                Err(e) => tx.send(Message::Failed(format!("start {id}: {e}"))),
            }
        });
    };

    let mut started_at: Vec<Option<Duration>> = vec![None; n];
    let mut healthy_at: Vec<Option<Duration>> = vec![None; n];
    if args.dag {
        let created = futures::future::join_all((0..n).map(create)).await;
        for result in created {
            let (i, id, t) = result?;
            ids[i] = id;
            create_times.push(t);
        }
        create_all = t_containers.elapsed();
        let mut waiting: Vec<usize> = services.iter().map(|s| s.deps.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in services.iter().enumerate() {
            for &d in &s.deps {
                dependents[d].push(i);
            }
        }
        for i in (0..n).filter(|&i| waiting[i] == 0) {
            spawn_start(i, ids[i].clone(), tx.clone());
        }
        let mut done = 0;
        while done < n {
            let gate = match rx.recv().await.ok_or("channel closed")? {
                Message::Failed(e) => return Err(e.into()),
                Message::Started(i, t) => {
                    start_times.push(t);
                    started_at[i] = Some(begin.elapsed());
                    if !args.health {
                        done += 1;
                        Some(i)
                    } else {
                        None
                    }
                }
                Message::Healthy(i) if healthy_at[i].is_none() => {
                    healthy_at[i] = Some(begin.elapsed());
                    done += 1;
                    Some(i)
                }
                Message::Healthy(_) => None,
            };
            if let Some(i) = gate {
                for &next in &dependents[i] {
                    waiting[next] -= 1;
                    if waiting[next] == 0 {
                        spawn_start(next, ids[next].clone(), tx.clone());
                    }
                }
            }
        }
    } else {
        let all = futures::future::join_all((0..n).map(|i| {
            let create = create(i);
            let docker = docker.clone();
            async move {
                let (i, id, tc) = create.await?;
                let t = Instant::now();
                docker.start_container(&id, None).await?;
                Ok::<_, Error>((i, tc, t.elapsed(), begin.elapsed()))
            }
        }))
        .await;
        for result in all {
            let (i, tc, ts, at) = result?;
            create_times.push(tc);
            start_times.push(ts);
            started_at[i] = Some(at);
        }
        if args.health {
            let mut done = healthy_at.iter().filter(|h| h.is_some()).count();
            while done < n {
                match rx.recv().await.ok_or("channel closed")? {
                    Message::Failed(e) => return Err(e.into()),
                    Message::Healthy(i) if healthy_at[i].is_none() => {
                        healthy_at[i] = Some(begin.elapsed());
                        done += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let total = begin.elapsed();
    // Per wave: when its last container was started / healthy.
    let waves = services.iter().map(|s| s.wave).max().unwrap_or(0) + 1;
    let wave_end = |at: &[Option<Duration>]| -> String {
        (0..waves)
            .map(|w| {
                let end = services.iter().enumerate().filter(|(_, s)| s.wave == w).filter_map(|(i, _)| at[i]).max().unwrap_or_default();
                ms(end).to_string()
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "mode={} n={n} health={} total_ms={} connect_ms={} network_ms={} create_all_ms={} create_p50_ms={} create_max_ms={} start_p50_ms={} start_max_ms={} wave_started_ms={} wave_healthy_ms={}",
        if args.dag { "dag" } else { "flat" },
        args.health,
        ms(total),
        ms(connected),
        ms(network_time),
        ms(create_all),
        percentile(create_times.clone(), 0.5),
        percentile(create_times, 1.0),
        percentile(start_times.clone(), 0.5),
        percentile(start_times, 1.0),
        wave_end(&started_at),
        if args.health { wave_end(&healthy_at) } else { "-".into() },
    );
    Ok(())
}
