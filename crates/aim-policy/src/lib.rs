//! `aim-policy`: AIM's authorization decisions, as a pure library (no I/O, no database), so the
//! server's action-verification route and the standalone `opena2a policy check` decide
//! identically.
//!
//! - [`capability`]: the `[domain/]namespace:action` grammar, grants (`namespace:*`), grant sets;
//! - [`schema`]: the Cedar schema of AIM (principal `Agent`, action = capability, `Resource`,
//!   `RequestContext`);
//! - [`policy`]: Cedar policy sets compiled and validated once, with AIM's annotations
//!   (`@id`, `@effect("require_approval")`, `@approvers`) and a content-hash version;
//! - [`governance`]: AIP governance YAML translated to Cedar plus obligations;
//! - [`request`], [`decision`], [`engine`]: what is asked, what is answered, and the evaluation
//!   order (grants → Cedar → enforcement mode; fail closed).
//!
//! See `docs/POLICY.md` for the user-facing description.

pub mod capability;
pub mod decision;
pub mod engine;
pub mod error;
pub mod governance;
pub mod policy;
pub mod request;
pub mod schema;

pub use capability::{Capability, Grant, GrantSet};
pub use decision::{Decision, Effect, EnforcementMode, Obligation, Reason, ReasonCode};
pub use engine::{Engine, PolicyLanguage, validate};
pub use error::{Error, Result};
pub use policy::{ObligationKind, PolicyBundle, SourceFormat};
pub use request::{Agent, Request, RequestContext, RiskLevel};
