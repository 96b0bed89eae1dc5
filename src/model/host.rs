//! What exists now on one host: the snapshot
//! [`HostEngine::observe`](crate::engine::HostEngine::observe) returns.
//!
//! Plain data, sorted and serialisable, so `swarmctl plan --observed snapshot.json` and planner
//! tests can use literals of it. Nothing here talks to an engine or decides anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What exists now for one stack, plus the names of foreign objects that could collide.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObservedState {
    /// Every container (running or not) labelled with the stack, sorted by name.
    pub containers: Vec<ObservedContainer>,
    /// Networks labelled with the stack, sorted by name then ID (two may share a name).
    pub networks: Vec<ObservedNetwork>,
    /// Volumes labelled with the stack, sorted by name.
    pub volumes: Vec<ObservedVolume>,
    /// Candidate names already used by objects *not* labelled with this stack.
    pub foreign_names: ForeignNames,
    /// Image references present locally: `repo:tag`, `repo@digest` and image IDs (`sha256:…`).
    pub images: BTreeSet<String>,
    /// Host ports published by containers *not* of this stack: a plan that needs one again
    /// would fail half-way with "port is already allocated".
    #[serde(default)]
    pub foreign_ports: Vec<ForeignPort>,
    /// Among the bind sources asked about, those that do not exist on the engine's host (known
    /// only for a local engine).
    #[serde(default)]
    pub missing_host_paths: BTreeSet<String>,
}

/// A host port another container holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForeignPort {
    /// `0.0.0.0` (or `::`) when published on every address.
    pub host_ip: String,
    pub port: u16,
    pub protocol: String,
    pub container: String,
}

/// One existing container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    /// Full container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// The image reference the container was created from (as the engine reports it).
    pub image: String,
    /// All labels.
    pub labels: BTreeMap<String, String>,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Health, when the container has a health check and is running.
    pub health: Option<HealthState>,
    /// Creation time, RFC 3339 UTC (`2024-05-01T12:00:00Z`).
    pub created: String,
    /// IDs of the networks it is attached to (a planner resolves duplicate network names by use).
    #[serde(default)]
    pub networks: BTreeSet<String>,
    /// Its anonymous volumes (image `VOLUME`s, unnamed mounts): target path → volume name. A
    /// replacement mounts them again, so their data outlives the container, as with compose.
    #[serde(default)]
    pub anonymous_volumes: BTreeMap<String, String>,
}

/// The engine names an anonymous volume with 64 random hex digits, and nothing else does.
pub fn is_anonymous_volume(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Being restarted by its restart policy.
    Restarting,
    /// Paused.
    Paused,
    /// Exited with a code.
    Exited {
        /// The exit code (−1 when the engine did not say).
        code: i64,
    },
    /// Dead (removal failed half-way).
    Dead,
    /// Being removed.
    Removing,
}

/// A container's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Within the start period or before the first result.
    Starting,
    /// Passing.
    Healthy,
    /// Failed `retries` times in a row.
    Unhealthy,
}

/// One existing network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNetwork {
    /// Network ID.
    pub id: String,
    /// Name (not unique on Engine < 25).
    pub name: String,
    /// All labels.
    pub labels: BTreeMap<String, String>,
}

/// One existing named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedVolume {
    /// Volume name.
    pub name: String,
    /// All labels.
    pub labels: BTreeMap<String, String>,
}

/// Names used by objects not labelled with the observed stack.
///
/// Only names the caller asked about ([`CandidateNames`]) are reported, so the snapshot stays
/// small and deterministic on a busy host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForeignNames {
    /// Container names.
    pub containers: BTreeSet<String>,
    /// Network names.
    pub networks: BTreeSet<String>,
    /// Volume names.
    pub volumes: BTreeSet<String>,
}

/// The names a plan would create, so [`HostEngine::observe`](crate::engine::HostEngine::observe) can report
/// which of them foreign objects already hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CandidateNames {
    /// Container names.
    pub containers: BTreeSet<String>,
    /// Bind sources that must exist already (`bind.create_host_path: false`).
    #[serde(default)]
    pub host_paths: BTreeSet<String>,
    /// Network names.
    pub networks: BTreeSet<String>,
    /// Volume names.
    pub volumes: BTreeSet<String>,
}

impl ObservedState {
    /// Puts every list in its canonical order (containers and volumes by name, networks by
    /// name then ID), so equal worlds give equal snapshots.
    pub fn sort(&mut self) {
        self.containers.sort_by(|left, right| (&left.name, &left.id).cmp(&(&right.name, &right.id)));
        self.networks.sort_by(|left, right| (&left.name, &left.id).cmp(&(&right.name, &right.id)));
        self.volumes.sort_by(|left, right| left.name.cmp(&right.name));
        self.foreign_ports.sort();
        self.foreign_ports.dedup();
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn unix_seconds_to_rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        (second_of_day % 3600) / 60,
        second_of_day % 60
    )
}

/// Parses RFC 3339 UTC as the engine writes it (`2024-05-01T12:00:00.123456789Z`) into seconds
/// since the Unix epoch; `None` for anything else (the zero time of a never-started container
/// included).
pub fn rfc3339_to_unix_seconds(text: &str) -> Option<f64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if year < 1970 || !(1..=12).contains(&month) {
        return None;
    }
    let fraction: f64 = format!("0.{fraction}").parse().ok()?;
    let days = days_from_civil(year, month as u32, day as u32);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second) as f64 + fraction)
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_format_as_rfc3339() {
        assert_eq!(unix_seconds_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_seconds_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(unix_seconds_to_rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn rfc3339_reads_back_what_it_wrote() {
        for seconds in [0, 951_782_400, 1_714_564_800, 4_102_444_800] {
            assert_eq!(rfc3339_to_unix_seconds(&unix_seconds_to_rfc3339(seconds)), Some(seconds as f64));
        }
        assert_eq!(rfc3339_to_unix_seconds("2024-05-01T12:00:00.25Z"), Some(1_714_564_800.25));
        assert_eq!(rfc3339_to_unix_seconds("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_to_unix_seconds("garbage"), None);
    }

    #[test]
    fn observed_state_round_trips_through_json() {
        let state = ObservedState {
            containers: vec![ObservedContainer {
                id: "abc".into(),
                name: "demo-web-1".into(),
                image: "web:1".into(),
                labels: BTreeMap::from([("io.swarmctl.stack".into(), "demo".into())]),
                state: ContainerState::Exited { code: 3 },
                health: Some(HealthState::Unhealthy),
                created: "2024-05-01T12:00:00Z".into(),
                networks: BTreeSet::from(["n1".into()]),
                anonymous_volumes: BTreeMap::from([("/cache".into(), "ab".repeat(32))]),
            }],
            ..ObservedState::default()
        };
        let json = serde_json::to_string(&state).expect("serialises");
        let back: ObservedState = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, state);
    }
}
