//! `swarmctl status`: what the engine holds of a stack, service by service, read from the
//! containers' labels alone (so a name is enough, no stack files needed).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use crate::model::host::{ContainerState, HealthState, ObservedContainer};
use crate::model::labels::{LABEL_KIND, LABEL_SERVICE};

#[derive(Debug, Serialize)]
pub struct StackStatus {
    pub stack: String,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `deployment`, `statefulset`, `daemonset`, `job`; `unknown` on containers from before the label.
    pub kind: String,
    /// Replicas running and not failing a health check (jobs: exited 0).
    pub ready: usize,
    pub replicas: usize,
    pub containers: Vec<ContainerStatus>,
}

#[derive(Debug, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub state: String,
    pub health: Option<String>,
    pub ready: bool,
    pub image: String,
    pub created: String,
}

impl StackStatus {
    pub fn new(stack: &str, containers: &[ObservedContainer]) -> StackStatus {
        let mut services: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
        for container in containers {
            services.entry(container.labels.get(LABEL_SERVICE).map_or("?", String::as_str)).or_default().push(container);
        }
        let services = services
            .into_iter()
            .map(|(name, containers)| {
                let kind = containers[0].labels.get(LABEL_KIND).cloned().unwrap_or_else(|| "unknown".into());
                let job = kind == "job";
                let containers: Vec<ContainerStatus> = containers
                    .into_iter()
                    .map(|c| ContainerStatus {
                        name: c.name.clone(),
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
                    ready: containers.iter().filter(|c| c.ready).count(),
                    replicas: containers.len(),
                    containers,
                }
            })
            .collect();
        StackStatus { stack: stack.to_string(), services }
    }

    /// Every replica ready (jobs completed): what `status` reports with exit 0.
    pub fn all_ready(&self) -> bool {
        self.services.iter().all(|s| s.ready == s.replicas)
    }
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

/// One line per service (`web  deployment  2/2 ready`), then one per container.
impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.services.is_empty() {
            return writeln!(f, "stack `{}` has no containers on this engine", self.stack);
        }
        let width = self.services.iter().flat_map(|s| &s.containers).map(|c| c.name.len()).max().unwrap_or(0);
        for service in &self.services {
            writeln!(f, "{:<20} {:<12} {}/{} ready", service.name, service.kind, service.ready, service.replicas)?;
            for c in &service.containers {
                let state = match &c.health {
                    Some(health) => format!("{}, {health}", c.state),
                    None => c.state.clone(),
                };
                writeln!(f, "  {:<width$}  {:<20} {}", c.name, state, c.image)?;
            }
        }
        Ok(())
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
        let status = StackStatus::new(
            "shop",
            &[
                container("shop-db-0", "db", "statefulset", ContainerState::Running, Some(HealthState::Healthy)),
                container("shop-migrate-1", "migrate", "job", ContainerState::Exited { code: 0 }, None),
                container("shop-web-1", "web", "deployment", ContainerState::Running, None),
                container("shop-web-2", "web", "deployment", ContainerState::Running, Some(HealthState::Starting)),
            ],
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
        let status = StackStatus::new(
            "shop",
            &[
                container("shop-migrate-1", "migrate", "job", ContainerState::Exited { code: 3 }, None),
                container("shop-web-1", "web", "deployment", ContainerState::Exited { code: 0 }, None),
            ],
        );
        assert_eq!(status.services.iter().map(|s| s.ready).collect::<Vec<_>>(), [0, 0]);
        assert!(status.to_string().contains("exited (3)"));
    }
}
