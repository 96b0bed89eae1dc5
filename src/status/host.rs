//! The status of a stack on one host, read from its containers' labels (so a name is enough).

use super::{Desired, Instance, ServiceStatus, StackStatus};
use crate::model::host::{ContainerState, HealthState, ObservedContainer};
use crate::model::labels::{LABEL_KIND, LABEL_SERVICE};
use std::collections::BTreeMap;

/// The status of a stack from its containers; `desired` (from the stack or the last revision)
/// says how many replicas each service should have, so a missing container shows.
pub fn from_containers(stack: &str, containers: &[ObservedContainer], desired: Option<&Desired>) -> StackStatus {
    let mut services: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for container in containers {
        services.entry(container.labels.get(LABEL_SERVICE).map_or("?", String::as_str)).or_default().push(container);
    }
    for name in desired.into_iter().flat_map(|d| d.keys()) {
        services.entry(name).or_default();
    }
    let services = services
        .into_iter()
        .map(|(name, containers)| {
            let wanted = desired.and_then(|d| d.get(name));
            let kind = wanted
                .map(|w| w.kind.as_str().to_string())
                .or_else(|| containers.first().and_then(|c| c.labels.get(LABEL_KIND).cloned()))
                .unwrap_or_else(|| "unknown".into());
            let job = kind == "job";
            let instances: Vec<Instance> = containers
                .iter()
                .map(|c| Instance {
                    name: c.name.clone(),
                    node: None,
                    state: state_text(c.state),
                    health: c.health.map(|h| health_text(h).to_string()),
                    ready: ready(c, job),
                    image: c.image.clone(),
                    created: c.created.clone(),
                })
                .collect();
            ServiceStatus {
                name: name.to_string(),
                kind,
                desired: wanted.map_or(instances.len(), |w| w.replicas as usize),
                ready: instances.iter().filter(|c| c.ready).count(),
                instances,
                problem: None,
            }
        })
        .collect();
    StackStatus { stack: stack.to_string(), target: "host", services, nodes: Vec::new(), placement: None }
}

/// A job is ready once it exited 0; anything else once it runs and is not failing its check.
fn ready(container: &ObservedContainer, job: bool) -> bool {
    match container.state {
        ContainerState::Exited { code: 0 } => job,
        ContainerState::Running => !job && !matches!(container.health, Some(HealthState::Starting | HealthState::Unhealthy)),
        _ => false,
    }
}

fn state_text(state: ContainerState) -> String {
    match state {
        ContainerState::Created => "created".into(),
        ContainerState::Running => "running".into(),
        ContainerState::Restarting => "restarting".into(),
        ContainerState::Paused => "paused".into(),
        ContainerState::Exited { code } => format!("exited ({code})"),
        ContainerState::Dead => "dead".into(),
        ContainerState::Removing => "removing".into(),
    }
}

fn health_text(health: HealthState) -> &'static str {
    match health {
        HealthState::Starting => "starting",
        HealthState::Healthy => "healthy",
        HealthState::Unhealthy => "unhealthy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, service: &str, kind: &str, state: ContainerState, health: Option<HealthState>) -> ObservedContainer {
        ObservedContainer {
            id: name.into(),
            name: name.into(),
            image: "app:1".into(),
            labels: [(LABEL_SERVICE.to_string(), service.to_string()), (LABEL_KIND.to_string(), kind.to_string())].into(),
            state,
            health,
            created: "2026-11-22T00:00:00Z".into(),
            networks: Default::default(),
            anonymous_volumes: Default::default(),
        }
    }

    #[test]
    fn readiness_counts_health_and_completed_jobs() {
        let status = from_containers(
            "shop",
            &[
                container("shop-db-0", "db", "statefulset", ContainerState::Running, Some(HealthState::Healthy)),
                container("shop-migrate-1", "migrate", "job", ContainerState::Exited { code: 0 }, None),
                container("shop-web-1", "web", "deployment", ContainerState::Running, None),
                container("shop-web-2", "web", "deployment", ContainerState::Running, Some(HealthState::Starting)),
            ],
            None,
        );
        let text = status.to_string();
        assert!(text.contains("db                   statefulset  1/1 ready"), "{text}");
        assert!(text.contains("migrate              job          1/1 ready"), "{text}");
        assert!(text.contains("web                  deployment   1/2 ready"), "{text}");
        assert!(text.contains("shop-web-2      running, starting"), "{text}");
        assert!(!status.all_ready());
    }

    #[test]
    fn a_failed_job_and_an_exited_server_are_not_ready() {
        let status = from_containers(
            "shop",
            &[
                container("shop-migrate-1", "migrate", "job", ContainerState::Exited { code: 3 }, None),
                container("shop-web-1", "web", "deployment", ContainerState::Exited { code: 0 }, None),
            ],
            None,
        );
        assert_eq!(status.services.iter().map(|s| s.ready).collect::<Vec<_>>(), [0, 0]);
        assert!(status.to_string().contains("exited (3)"));
    }
}

#[cfg(test)]
mod desired_tests {
    use super::*;
    use crate::model::stack::Kind;
    use crate::status::DesiredService;

    /// Two of three replicas removed by hand: not ready, whatever the remaining one says.
    #[test]
    fn missing_replicas_count_against_the_desired_number() {
        let running = ObservedContainer {
            id: "1".into(),
            name: "shop-web-1".into(),
            image: "app:1".into(),
            labels: [(LABEL_SERVICE.to_string(), "web".to_string())].into(),
            state: ContainerState::Running,
            health: None,
            created: String::new(),
            networks: Default::default(),
            anonymous_volumes: Default::default(),
        };
        let desired: Desired = [("web".to_string(), DesiredService { kind: Kind::Deployment, replicas: 3 }), ("db".to_string(), DesiredService { kind: Kind::Statefulset, replicas: 1 })].into();
        let status = from_containers("shop", &[running], Some(&desired));
        let text = status.to_string();
        assert!(text.contains("web                  deployment   1/3 ready"), "{text}");
        assert!(text.contains("db                   statefulset  0/1 ready"), "{text}");
        assert!(!status.all_ready());
    }
}
