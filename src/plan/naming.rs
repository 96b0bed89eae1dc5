//! Names and hashes shared by both targets: what a stack's objects are called, and the spec hash
//! that makes a re-deploy of the same input change nothing.

use crate::model::stack::{Kind, Service, Stack};
use serde::ser::{Impossible, Serialize, SerializeStruct, Serializer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The default network of services that name none.
pub const DEFAULT_NETWORK: &str = "default";

/// Replica identifiers: ordinals from 0 for statefulsets, numbers from 1 otherwise.
pub fn replica_numbers(service: &Service) -> Vec<u32> {
    match service.kind {
        Kind::Statefulset => (0..service.replicas).collect(),
        Kind::Daemonset => vec![1],
        Kind::Deployment | Kind::Job => (1..=service.replicas).collect(),
    }
}

pub fn network_name(stack: &Stack, network: &str) -> String {
    match stack.networks.get(network).and_then(|n| n.name.clone()) {
        Some(name) => name,
        None => format!("{}_{network}", stack.name),
    }
}

pub fn volume_name(stack: &Stack, volume: &str) -> String {
    match stack.volumes.get(volume).and_then(|v| v.name.clone()) {
        Some(name) => name,
        None => format!("{}_{volume}", stack.name),
    }
}

/// A statefulset ordinal's own copy of a volume.
pub fn ordinal_volume_name(stack: &Stack, volume: &str, ordinal: u32) -> String {
    format!("{}-{ordinal}", volume_name(stack, volume))
}

/// The image a service runs; services with only `build:` get `<stack>-<service>`.
pub fn image(stack: &Stack, service: &Service) -> String {
    service.image.clone().unwrap_or_else(|| format!("{}-{}", stack.name, service.name))
}

/// The networks a service joins (its own, or the stack's default).
pub fn service_networks(service: &Service) -> Vec<(String, Vec<String>)> {
    if service.network_mode.is_some() {
        return Vec::new();
    }
    if service.networks.is_empty() {
        return vec![(DEFAULT_NETWORK.to_string(), Vec::new())];
    }
    service.networks.iter().map(|(n, a)| (n.clone(), a.clone())).collect()
}

/// Hashes of what a replica is made from, field by field. Replicas and dependencies are not in
/// it: scaling must not replace replicas, and ordering is not part of a container.
pub fn field_hashes(stack: &Stack, service: &Service) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    // Serializing the model cannot fail; a failure would only leave fields out.
    let _ = service.serialize(FieldHasher { fields: &mut fields });
    // Mounted configs and secrets change the container when their content changes.
    let contents: BTreeMap<String, &str> = service
        .configs
        .iter()
        .filter_map(|c| stack.configs.get(&c.source).map(|o| (format!("config:{}", c.source), o.hash.as_str())))
        .chain(service.secrets.iter().filter_map(|s| stack.secrets.get(&s.source).map(|o| (format!("secret:{}", s.source), o.hash.as_str()))))
        .collect();
    fields.insert("contents".into(), json_hash(&contents));
    fields
}

/// Serializes a struct into the [`json_hash`] of each of its fields, straight from the model:
/// the same bytes as hashing each field of its `serde_json::Value`, without building that tree
/// (for a thousand services, building it was most of the hashing).
struct FieldHasher<'a> {
    fields: &'a mut BTreeMap<String, String>,
}

impl SerializeStruct for FieldHasher<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Self::Error> {
        let hash = match key {
            // What is not part of a replica.
            "replicas" | "depends_on" | "layer" | "profiles" | "rollout" | "placement" | "swarm" => return Ok(()),
            // `pull_policy` is not acted on (images are never pulled): changing it changes
            // nothing. Hashed as unset, so a container made before this rule keeps its hash.
            "pull_policy" => json_hash(&()),
            // Whether a missing bind source is created changes how the container is made, not it.
            "volumes" => {
                let mut volumes = serde_json::to_value(value)?;
                if let serde_json::Value::Array(volumes) = &mut volumes {
                    for volume in volumes.iter_mut().filter_map(serde_json::Value::as_object_mut) {
                        volume.remove("create_host_path");
                    }
                }
                json_hash(&volumes)
            }
            _ => json_hash(value),
        };
        self.fields.insert(key.to_string(), hash);
        Ok(())
    }

    fn end(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Everything but a struct is refused: [`FieldHasher`] reads a struct's fields.
fn not_a_struct() -> serde_json::Error {
    serde::ser::Error::custom("field hashes are made of a struct")
}

macro_rules! not_a_struct {
    ($($method:ident($($argument:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $argument),*) -> Result<$ok, Self::Error> {
            Err(not_a_struct())
        })*
    };
}

impl Serializer for FieldHasher<'_> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), Self::Error>;
    type SerializeTuple = Impossible<(), Self::Error>;
    type SerializeTupleStruct = Impossible<(), Self::Error>;
    type SerializeTupleVariant = Impossible<(), Self::Error>;
    type SerializeMap = Impossible<(), Self::Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Self::Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Self::Error> {
        Ok(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }

    not_a_struct! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

pub fn spec_hash(fields: &BTreeMap<String, String>) -> String {
    short_hash(field_hashes_label(fields).as_bytes())
}

/// `key=hash,…`: the field hashes as a label, read back by [`parse_field_hashes`].
pub fn field_hashes_label(fields: &BTreeMap<String, String>) -> String {
    let mut label = String::with_capacity(fields.len() * 24);
    for (key, hash) in fields {
        if !label.is_empty() {
            label.push(',');
        }
        label.extend([key.as_str(), "=", hash.as_str()]);
    }
    label
}

/// The first 12 hex digits of the SHA-256 of `bytes`.
pub fn short_hash(bytes: &[u8]) -> String {
    hex12(&Sha256::digest(bytes))
}

/// [`short_hash`] of `value`'s compact JSON, serialized straight into the hasher (the same bytes
/// `value.to_string()` would make, without building them: a large plan hashes thousands of fields).
pub fn json_hash<T: Serialize + ?Sized>(value: &T) -> String {
    let mut hasher = Sha256::new();
    // Writing into a hasher cannot fail, and serializing our model cannot either.
    let _ = serde_json::to_writer(&mut hasher, value);
    hex12(&hasher.finalize())
}

fn hex12(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    digest.iter().take(6).flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

/// Parses the field-hashes label back.
pub fn parse_field_hashes(label: &str) -> BTreeMap<String, String> {
    label.split(',').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}


#[cfg(test)]
mod tests {
    use super::*;

    /// Deployed objects carry these hashes: computing them another way must not change a byte,
    /// or every service of every stack would be replaced on the next deploy.
    #[test]
    fn json_hash_is_the_short_hash_of_the_compact_json() {
        let placement = serde_json::json!({"constraints": ["node.role == manager"], "preferences": [{"spread": "node.labels.zone"}]});
        let pin: Option<String> = None;
        assert_eq!(json_hash(&(&placement, &pin)), short_hash(serde_json::json!([placement, pin]).to_string().as_bytes()));
        let awkward = serde_json::json!({"quote\"d": "line\nbreak", "n": 1.5, "neg": -3, "empty": {}, "unicode": "é"});
        assert_eq!(json_hash(&awkward), short_hash(awkward.to_string().as_bytes()));
        // Pinned: the first 12 hex digits of SHA-256 over the compact JSON, as stored in labels.
        assert_eq!(json_hash(&serde_json::json!({"image": "app:1", "ports": [8080]})), "9a1cdf7ccbf1");
    }

    /// The hashes as they were first made: each field of the service's `serde_json` tree. Kept
    /// as the oracle, since deployed containers and services carry these hashes.
    fn field_hashes_of_the_json_tree(stack: &Stack, service: &Service) -> BTreeMap<String, String> {
        let serde_json::Value::Object(mut fields) = serde_json::to_value(service).unwrap() else { unreachable!() };
        for volatile in ["replicas", "depends_on", "layer", "profiles", "rollout", "placement", "swarm"] {
            fields.remove(volatile);
        }
        if let Some(policy) = fields.get_mut("pull_policy") {
            *policy = serde_json::Value::Null;
        }
        if let Some(serde_json::Value::Array(volumes)) = fields.get_mut("volumes") {
            for volume in volumes.iter_mut().filter_map(serde_json::Value::as_object_mut) {
                volume.remove("create_host_path");
            }
        }
        let contents: BTreeMap<String, String> = service
            .configs
            .iter()
            .filter_map(|c| stack.configs.get(&c.source).map(|o| (format!("config:{}", c.source), o.hash.clone())))
            .chain(service.secrets.iter().filter_map(|s| stack.secrets.get(&s.source).map(|o| (format!("secret:{}", s.source), o.hash.clone()))))
            .collect();
        fields.insert("contents".into(), serde_json::to_value(contents).unwrap());
        fields.iter().map(|(key, value)| (key.clone(), short_hash(value.to_string().as_bytes()))).collect()
    }

    #[test]
    fn field_hashes_are_those_of_each_field_of_the_json_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stacks: Vec<std::path::PathBuf> = ["stacks", "tests/fixtures/real-world"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .collect();
        stacks.sort();
        let mut services = 0;
        for path in stacks {
            let options = crate::spec::LoadOptions { path: path.clone(), ..Default::default() };
            let Ok(loaded) = crate::spec::load(&options, &|_: &str| Some("1".to_string())) else { continue };
            for service in loaded.stack.services.values() {
                assert_eq!(field_hashes(&loaded.stack, service), field_hashes_of_the_json_tree(&loaded.stack, service), "{}: {}", path.display(), service.name);
                services += 1;
            }
        }
        assert!(services > 50, "only {services} services compared");
    }

    #[test]
    fn the_field_hashes_label_reads_back_and_spec_hash_is_the_hash_of_it() {
        let fields: BTreeMap<String, String> = [("command", "aaa"), ("image", "bbb")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(field_hashes_label(&fields), "command=aaa,image=bbb");
        assert_eq!(parse_field_hashes(&field_hashes_label(&fields)), fields);
        assert_eq!(spec_hash(&fields), short_hash(b"command=aaa,image=bbb"));
    }
}
