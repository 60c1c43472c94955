//! Parameters read once into the changes they make (svix-server's `ModelIn`
//! idea, for objects kept as Stripe JSON): a resource's `parse` function turns
//! `ctx.params` into a [`Patch`], which names every bad parameter before
//! anything is read or written; the handler then applies the same patch to
//! the object as read, on every try of an optimistic write.

use serde_json::{Map, Value};
use switchboard_core::form::{MetadataUpdate, Params};

use crate::error::ApiError;

#[derive(Debug, Clone)]
enum Op {
    Set(Value),
    Remove,
    Metadata(MetadataUpdate),
}

#[derive(Debug, Clone, Default)]
pub struct Patch {
    ops: Vec<(Vec<String>, Op)>,
}

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| (*s).to_owned()).collect()
}

impl Patch {
    /// Sets the field at `at` (`["relationship", "title"]`).
    pub fn set(&mut self, at: &[&str], value: impl Into<Value>) {
        self.ops.push((path(at), Op::Set(value.into())));
    }

    /// Removes the field at `at`.
    pub fn remove(&mut self, at: &[&str]) {
        self.ops.push((path(at), Op::Remove));
    }

    /// Whether the patch writes the field at `at` (or something under it).
    pub fn touches(&self, at: &[&str]) -> bool {
        self.ops
            .iter()
            .any(|(p, _)| p.len() >= at.len() && p.iter().zip(at).all(|(a, b)| a == b))
    }

    /// String fields of `p` under `at` (`""` clears to null, as on Stripe).
    pub fn strings(
        &mut self,
        p: &mut Params,
        at: &[&str],
        fields: &[&str],
    ) -> Result<(), ApiError> {
        for f in fields {
            if let Some(v) = p.clearable_string(f)? {
                let mut full = at.to_vec();
                full.push(f);
                self.set(&full, v.map_or(Value::Null, Value::String));
            }
        }
        Ok(())
    }

    /// Integer fields of `p` under `at`.
    pub fn ints(&mut self, p: &mut Params, at: &[&str], fields: &[&str]) -> Result<(), ApiError> {
        for f in fields {
            if let Some(v) = p.int(f)? {
                let mut full = at.to_vec();
                full.push(f);
                self.set(&full, v);
            }
        }
        Ok(())
    }

    /// Boolean fields of `p` under `at`.
    pub fn bools(&mut self, p: &mut Params, at: &[&str], fields: &[&str]) -> Result<(), ApiError> {
        for f in fields {
            if let Some(v) = p.bool(f)? {
                let mut full = at.to_vec();
                full.push(f);
                self.set(&full, v);
            }
        }
        Ok(())
    }

    /// A nested map of string fields (`address[line1]=…`); `key=` clears it to null.
    pub fn nested_strings(
        &mut self,
        p: &mut Params,
        key: &str,
        fields: &[&str],
    ) -> Result<(), ApiError> {
        match p.nested(key)? {
            None => {}
            Some(None) => self.set(&[key], Value::Null),
            Some(Some(mut nested)) => {
                self.strings(&mut nested, &[key], fields)?;
                nested.finish()?;
            }
        }
        Ok(())
    }

    /// `metadata[…]`, with Stripe's unset semantics.
    pub fn metadata(&mut self, p: &mut Params) -> Result<(), ApiError> {
        if let Some(update) = p.metadata()? {
            self.ops.push((path(&["metadata"]), Op::Metadata(update)));
        }
        Ok(())
    }

    /// Lays the changes on `obj`, making intermediate objects as needed.
    pub fn apply(&self, obj: &mut Value) {
        for (at, op) in &self.ops {
            let Some((last, parents)) = at.split_last() else {
                continue;
            };
            let mut node = &mut *obj;
            for key in parents {
                if !node[key.as_str()].is_object() {
                    node[key.as_str()] = Value::Object(Map::new());
                }
                node = &mut node[key.as_str()];
            }
            match op {
                Op::Set(v) => node[last.as_str()] = v.clone(),
                Op::Remove => {
                    if let Some(m) = node.as_object_mut() {
                        m.shift_remove(last.as_str());
                    }
                }
                Op::Metadata(update) => {
                    if !node[last.as_str()].is_object() {
                        node[last.as_str()] = Value::Object(Map::new());
                    }
                    if let Some(m) = node[last.as_str()].as_object_mut() {
                        update.apply(m);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_once_and_applies_the_same_changes_to_any_copy() {
        let mut p =
            Params::parse("name=Jo&address[line1]=1%20Main&metadata[a]=b&metadata[gone]=&n=3")
                .unwrap();
        let mut patch = Patch::default();
        patch.strings(&mut p, &[], &["name"]).unwrap();
        patch
            .nested_strings(&mut p, "address", &["line1", "city"])
            .unwrap();
        patch.metadata(&mut p).unwrap();
        patch.ints(&mut p, &[], &["n"]).unwrap();
        p.finish().unwrap();
        assert!(patch.touches(&["address"]) && patch.touches(&["address", "line1"]));
        assert!(!patch.touches(&["email"]));
        for mut obj in [
            json!({"metadata": {"gone": "x", "kept": "y"}}),
            json!({"address": null}),
        ] {
            patch.apply(&mut obj);
            assert_eq!(obj["name"], "Jo");
            assert_eq!(obj["address"]["line1"], "1 Main");
            assert_eq!(obj["n"], 3);
            assert_eq!(obj["metadata"]["a"], "b");
            assert!(obj["metadata"].get("gone").is_none());
        }
    }

    #[test]
    fn bad_parameters_are_named_before_anything_is_applied() {
        let mut p = Params::parse("n=three").unwrap();
        let err = Patch::default().ints(&mut p, &["dob"], &["n"]).unwrap_err();
        assert!(format!("{err:?}").contains('n'));
    }
}
