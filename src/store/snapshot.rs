//! What a revision keeps of a stack: all of it, so `rollback` can deploy it again exactly —
//! config contents included, secret contents never. A secret is kept by its keyed hash (which
//! also names it on a swarm); deploying the revision again needs its content from elsewhere:
//! the stack's files when they still hold it, a file the user names, or, on a swarm, the
//! secret object that still exists.

use crate::model::stack::{FileObject, Stack};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackSnapshot {
    /// The validated stack; file contents are not part of its serialised form.
    pub stack: Stack,
    /// Config contents by key, base64.
    pub configs: BTreeMap<String, String>,
}

impl StackSnapshot {
    pub fn of(stack: &Stack) -> StackSnapshot {
        let encode = |object: &FileObject| base64::engine::general_purpose::STANDARD.encode(&object.content);
        let configs = stack.configs.iter().filter(|(_, c)| !c.external).map(|(key, config)| (key.clone(), encode(config))).collect();
        StackSnapshot { stack: stack.clone(), configs }
    }

    /// The stack again. Each secret's content comes from `supply` (given its key and the
    /// object with the hash it must have); one it cannot supply is marked `withheld`, for the
    /// planner to require only where it must create the object.
    pub fn restore(&self, supply: &dyn Fn(&str, &FileObject) -> Option<Vec<u8>>) -> Stack {
        let mut stack = self.stack.clone();
        for (key, config) in stack.configs.iter_mut() {
            if let Some(content) = self.configs.get(key).and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok()) {
                config.content = content;
            }
        }
        for (key, secret) in stack.secrets.iter_mut().filter(|(_, s)| !s.external) {
            match supply(key, secret) {
                Some(content) => secret.content = content,
                None => secret.withheld = true,
            }
        }
        stack
    }

    /// Secrets `restore` would withhold.
    pub fn withheld(&self, supply: &dyn Fn(&str, &FileObject) -> Option<Vec<u8>>) -> Vec<String> {
        self.restore(supply).secrets.iter().filter(|(_, s)| s.withheld).map(|(key, _)| key.clone()).collect()
    }
}

/// What changed from `before` to `after`, service by service: `+web` (added), `-web`
/// (removed), `web: image, replicas` (the fields whose hashes differ, and the replica count).
pub fn changes(before: &Stack, after: &Stack) -> Vec<String> {
    use crate::plan::naming::field_hashes;
    let names: BTreeSet<&String> = before.services.keys().chain(after.services.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (before.services.get(name), after.services.get(name)) {
            (None, Some(_)) => Some(format!("+{name}")),
            (Some(_), None) => Some(format!("-{name}")),
            (Some(old), Some(new)) => {
                let (was, is) = (field_hashes(before, old), field_hashes(after, new));
                let mut fields: Vec<String> = was.keys().chain(is.keys()).collect::<BTreeSet<_>>().into_iter().filter(|k| was.get(*k) != is.get(*k)).cloned().collect();
                if old.replicas != new.replicas {
                    fields.push(format!("replicas {} → {}", old.replicas, new.replicas));
                }
                (!fields.is_empty()).then(|| format!("{name}: {}", fields.join(", ")))
            }
            (None, None) => None,
        })
        .collect()
}

/// A `supply` for [`StackSnapshot::restore`]: the content of the same secret in `current` (the
/// stack's files now), when its hash is the one the revision recorded.
pub fn from_stack(current: &Stack) -> impl Fn(&str, &FileObject) -> Option<Vec<u8>> + '_ {
    move |key, wanted| current.secrets.get(key).filter(|s| s.hash == wanted.hash && !s.withheld).map(|s| s.content.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(content: &str, hash: &str) -> FileObject {
        FileObject { external: false, name: None, file: None, content: content.as_bytes().to_vec(), hash: hash.into(), withheld: false }
    }

    #[test]
    fn configs_come_back_and_secrets_only_from_a_supplier_with_the_same_hash() {
        let mut stack = Stack::default();
        stack.configs.insert("settings".into(), object("greeting=hello", "c1"));
        stack.secrets.insert("token".into(), object("s3cret", "s1"));
        let snapshot = StackSnapshot::of(&stack);
        let json = serde_json::to_string(&snapshot).unwrap();
        assert!(!json.contains("s3cret"), "no secret content is stored: {json}");
        let stored: StackSnapshot = serde_json::from_str(&json).unwrap();

        let restored = stored.restore(&|_, _| None);
        assert_eq!(restored.configs["settings"].content, b"greeting=hello");
        assert!(restored.secrets["token"].withheld && restored.secrets["token"].content.is_empty());
        assert_eq!(stored.withheld(&|_, _| None), ["token"]);

        let mut now = Stack::default();
        now.secrets.insert("token".into(), object("rotated", "s2"));
        assert!(stored.restore(&from_stack(&now)).secrets["token"].withheld, "another content is not this revision's");
        now.secrets.insert("token".into(), object("s3cret", "s1"));
        assert_eq!(stored.restore(&from_stack(&now)).secrets["token"].content, b"s3cret");
    }
}
