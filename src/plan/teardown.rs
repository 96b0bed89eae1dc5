//! The order a stack comes down in, on either target: a service stops only after every service
//! that depends on it, so a database outlives the application writing to it (as compose does).
//! Read from the `io.swarmctl.depends-on` label each owned container or service carries, so a
//! stack name is enough.

use std::collections::{BTreeMap, BTreeSet};

/// The label's value: the service's dependencies, sorted, comma-separated.
pub fn depends_on_label(dependencies: impl IntoIterator<Item = impl Into<String>>) -> String {
    let names: BTreeSet<String> = dependencies.into_iter().map(Into::into).collect();
    names.into_iter().collect::<Vec<_>>().join(",")
}

/// For each service, the services to stop before it: those that depend on it. Dependencies on
/// services that are not there any more are ignored; a cycle (impossible for a stack that
/// loaded) would only lose ordering, never a service.
pub fn dependents(depends_on: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let mut dependents: BTreeMap<String, Vec<String>> = depends_on.keys().map(|s| (s.clone(), Vec::new())).collect();
    for (service, label) in depends_on {
        for dependency in label.split(',').filter(|d| !d.is_empty() && *d != service) {
            if let Some(list) = dependents.get_mut(dependency) {
                list.push(service.clone());
            }
        }
    }
    dependents
}

/// Services in an order where every service comes after its dependents (dependents first).
pub fn removal_order(depends_on: &BTreeMap<String, String>) -> Vec<String> {
    let dependents = dependents(depends_on);
    let mut waiting: BTreeMap<&str, usize> = dependents.iter().map(|(s, d)| (s.as_str(), d.len())).collect();
    let mut order = Vec::new();
    let mut ready: Vec<&str> = waiting.iter().filter(|(_, n)| **n == 0).map(|(s, _)| *s).collect();
    while let Some(service) = ready.pop() {
        order.push(service.to_string());
        waiting.remove(service);
        for dependency in depends_on[service].split(',').filter(|d| !d.is_empty()) {
            if let Some(count) = waiting.get_mut(dependency) {
                *count -= 1;
                if *count == 0 {
                    ready.push(dependency);
                }
            }
        }
    }
    // Whatever a cycle held back still goes, last.
    order.extend(waiting.keys().map(|s| s.to_string()));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_come_down_before_what_they_depend_on() {
        let labels: BTreeMap<String, String> =
            [("web", "api,cache"), ("api", "db"), ("db", ""), ("cache", ""), ("gone-dep", "removed-service")].into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let order = removal_order(&labels);
        let at = |s: &str| order.iter().position(|o| o == s).unwrap();
        assert!(at("web") < at("api") && at("api") < at("db") && at("web") < at("cache"), "{order:?}");
        assert_eq!(order.len(), 5);
        assert_eq!(dependents(&labels)["db"], ["api"]);
        assert_eq!(depends_on_label(["db", "cache", "db"]), "cache,db");
    }
}
