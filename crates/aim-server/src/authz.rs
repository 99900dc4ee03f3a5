//! Authorization state of an organization as the decision path sees it: the policy set in force
//! (compiled once per version and shared), its enforcement mode, and the default policy of an
//! organization that never saved one.

/// The policy set of an organization that never saved one (reported as version 0): every
/// capability the agent holds a grant for is permitted. Zero trust still holds, because a request
/// without a covering grant is denied before policies are evaluated (`NO_GRANT`); administrators
/// narrow it by saving their own set.
pub const DEFAULT_POLICY: &str = r#"@id("default-permit-granted")
permit(principal, action, resource);
"#;
