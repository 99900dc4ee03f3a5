//! The AIM Cedar schema.
//!
//! Entity and context types are fixed ([`BASE_SCHEMA`]). Actions are capabilities, an open set,
//! so the action part of the schema is generated per policy set: every capability a policy names
//! is declared as an action that is a member of its namespace group (`files:read` ∈ `files:*`),
//! every group is declared as an action too, and one sentinel action ([`SENTINEL_ACTION`], never a
//! valid capability) guarantees that policies whose scope does not name an action are still
//! type-checked against the principal, resource and context types.
//!
//! Invariant: every declared action applies to principal `Agent`, resource `Resource` and the
//! context type `RequestContext`, so the validator checks every policy against exactly the shape
//! [`crate::request`] builds.

use std::collections::BTreeSet;

use crate::capability::{Capability, Grant};
use crate::error::{Error, Result};

/// Entity and context types of the AIM schema (Cedar schema syntax, no namespace).
///
/// - `Agent.trustScore` is a `Long` from 0 to 100 (Cedar has no floating point; the server
///   rounds the 0–100 trust score *down*, so a threshold `>= 70` never admits 69.9).
/// - `Resource.id` is the resource string of the request (Cedar cannot read an entity's id, so
///   it is repeated as an attribute for `like` patterns).
/// - `RequestContext.riskLevel` is one of `low`, `medium`, `high`, `critical`; `riskRank` is the
///   same as 0–3 so policies can compare (`context.riskRank >= 2`).
/// - `clientAddress` and `mcpServer` are optional: policies must test `context has clientAddress`
///   before reading it (the validator enforces this).
pub const BASE_SCHEMA: &str = r#"entity Agent = {
  "name": String,
  "agentType": String,
  "trustScore": Long,
  "tags": Set<String>,
  "owner": String,
};
entity Resource = {
  "id": String,
};
type RequestContext = {
  "time": __cedar::datetime,
  "riskLevel": String,
  "riskRank": Long,
  "clientAddress"?: __cedar::ipaddr,
  "mcpServer"?: String,
};
"#;

/// An action id that no capability can equal (capabilities never contain `*` in the namespace).
pub const SENTINEL_ACTION: &str = "*:*";

/// The action ids a policy set refers to, classified.
#[derive(Debug, Default, Clone)]
pub(crate) struct ActionIds {
    pub capabilities: BTreeSet<Capability>,
    pub groups: BTreeSet<Grant>,
}

impl ActionIds {
    /// Classifies one `Action::"…"` id found in a policy. Anything that is neither a capability
    /// nor a `namespace:*` group is refused.
    pub fn add(&mut self, policy: &str, id: &str) -> Result<()> {
        if let Ok(c) = Capability::parse(id) {
            self.groups.insert(c.namespace_grant());
            self.capabilities.insert(c);
            return Ok(());
        }
        match Grant::parse(id) {
            Ok(g) if g.is_wildcard() => {
                self.groups.insert(g);
                Ok(())
            }
            _ => Err(Error::PolicySyntax(format!(
                "policy {policy:?} refers to Action::{id:?}, which is neither a capability \
                 (namespace:action) nor a namespace group (namespace:*)"
            ))),
        }
    }
}

const APPLIES: &str =
    "appliesTo { principal: [Agent], resource: [Resource], context: RequestContext }";

/// The full schema text for a policy set referring to `actions`.
pub(crate) fn schema_text(actions: &ActionIds) -> String {
    let mut s = String::from(BASE_SCHEMA);
    s.push_str(&format!("action \"{SENTINEL_ACTION}\" {APPLIES};\n"));
    for g in &actions.groups {
        s.push_str(&format!("action \"{g}\" {APPLIES};\n"));
    }
    for c in &actions.capabilities {
        s.push_str(&format!(
            "action \"{c}\" in [Action::\"{}\"] {APPLIES};\n",
            c.namespace_grant()
        ));
    }
    s
}

/// Builds the Cedar schema for a policy set referring to `actions`.
pub(crate) fn build(actions: &ActionIds) -> Result<cedar_policy::Schema> {
    let text = schema_text(actions);
    cedar_policy::Schema::from_cedarschema_str(&text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Error::Internal(format!("AIM schema: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_schema_builds_with_and_without_actions() {
        build(&ActionIds::default()).unwrap();
        let mut a = ActionIds::default();
        a.add("p", "files:read").unwrap();
        a.add("p", "example.com/db:*").unwrap();
        build(&a).unwrap();
        assert!(a.add("p", "view").is_err());
        assert!(a.add("p", SENTINEL_ACTION).is_err());
    }
}
