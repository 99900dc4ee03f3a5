//! Role-based access control: one table maps every route's action to the roles allowed to do it.
//!
//! Roles are ordered `viewer < member < manager < admin`. Resource ownership refines the table for
//! API keys: admins and managers act on every key of their organization, members and viewers only
//! on keys they own (others' keys answer 404, so their existence is not revealed).
//!
//! Two account states restrict a *session* to the [`Action::allowed_while_restricted`] actions
//! (answering 403 with a distinct code otherwise): a one-time password not yet changed
//! (`password_change_required`), and an admin without TOTP in an organization that requires 2FA for
//! admins (`totp_enrollment_required`).

use aim_store::Role;

use crate::error::ApiError;

/// Every protected action of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    AuthMe,
    AuthChangePassword,
    AuthLogout,
    TotpEnroll,
    TotpConfirm,
    TotpDisable,
    OrgRead,
    OrgUpdate,
    UsersList,
    UsersRead,
    UsersCreate,
    UsersUpdate,
    UsersDelete,
    ApiKeysList,
    ApiKeysRead,
    ApiKeysCreate,
    ApiKeysRevoke,
    ApiKeysRotate,
    AuditRead,
    AuditVerify,
    AuditCheckpoint,
    AuditProofInclusion,
    AuditProofConsistency,
    AgentsList,
    AgentsRead,
    AgentsCreate,
    /// aim-sdk registration (`POST /api/v1/public/agents/register`).
    SdkAgentsRegister,
    /// aim-sdk lookup by id or name (`GET /api/v1/sdk-api/agents/{id}`).
    SdkAgentsRead,
    AgentsSuspend,
    AgentsActivate,
    AgentsRevoke,
    AgentsChallenge,
    AgentsVerify,
    AgentsTrust,
    AgentsTrustHistory,
    AgentsCredential,
    ActionsList,
    ActionsRead,
    ActionsApprove,
    ActionsDeny,
    AgentCapabilitiesRead,
    AgentCapabilitiesGrant,
    AgentCapabilitiesRevoke,
    CapabilityRequestsList,
    AnomaliesList,
    McpServersList,
    McpServersCreate,
    McpServersRead,
    McpServersPin,
    AgentMcpConnections,
    IncidentsList,
    IncidentsRead,
    IncidentsAcknowledge,
    IncidentsResolve,
    AlertsList,
    AlertsRead,
    AlertsAcknowledge,
    AlertsResolve,
    AlertRoutesList,
    AlertRoutesCreate,
    AlertRoutesRead,
    AlertRoutesUpdate,
    AlertRoutesDelete,
    AlertRoutesTest,
    CapabilityRequestsRead,
    CapabilityRequestsApprove,
    CapabilityRequestsDeny,
    PoliciesRead,
    PoliciesUpdate,
    PoliciesValidate,
    PolicyVersionsList,
    PolicyVersionsRead,
}

use Role::{Admin, Manager, Member, Viewer};

const ALL: &[Role] = &[Viewer, Member, Manager, Admin];
const WRITERS: &[Role] = &[Member, Manager, Admin];
const MANAGERS: &[Role] = &[Manager, Admin];
const ADMINS: &[Role] = &[Admin];

/// The permission table: (action, method, route, roles). `docs/server.md` renders it; the RBAC
/// test walks it.
pub const PERMISSIONS: &[(Action, &str, &str, &[Role])] = &[
    (Action::AuthMe, "GET", "/api/v1/auth/me", ALL),
    (
        Action::AuthChangePassword,
        "POST",
        "/api/v1/auth/change-password",
        ALL,
    ),
    (Action::AuthLogout, "POST", "/api/v1/auth/logout", ALL),
    (Action::TotpEnroll, "POST", "/api/v1/auth/totp/enroll", ALL),
    (
        Action::TotpConfirm,
        "POST",
        "/api/v1/auth/totp/confirm",
        ALL,
    ),
    (
        Action::TotpDisable,
        "POST",
        "/api/v1/auth/totp/disable",
        ALL,
    ),
    (Action::OrgRead, "GET", "/api/v1/org", ALL),
    (Action::OrgUpdate, "PATCH", "/api/v1/org", ADMINS),
    (Action::UsersList, "GET", "/api/v1/users", MANAGERS),
    (Action::UsersRead, "GET", "/api/v1/users/{id}", MANAGERS),
    (Action::UsersCreate, "POST", "/api/v1/users", ADMINS),
    (Action::UsersUpdate, "PATCH", "/api/v1/users/{id}", ADMINS),
    (Action::UsersDelete, "DELETE", "/api/v1/users/{id}", ADMINS),
    (Action::ApiKeysList, "GET", "/api/v1/api-keys", ALL),
    (Action::ApiKeysRead, "GET", "/api/v1/api-keys/{id}", ALL),
    (Action::ApiKeysCreate, "POST", "/api/v1/api-keys", MANAGERS),
    (
        Action::ApiKeysRevoke,
        "DELETE",
        "/api/v1/api-keys/{id}",
        WRITERS,
    ),
    (
        Action::ApiKeysRotate,
        "POST",
        "/api/v1/api-keys/{id}/rotate",
        WRITERS,
    ),
    (Action::AuditRead, "GET", "/api/v1/audit/entries", MANAGERS),
    (Action::AuditVerify, "GET", "/api/v1/audit/verify", MANAGERS),
    (
        Action::AuditCheckpoint,
        "GET",
        "/api/v1/audit/checkpoint",
        MANAGERS,
    ),
    (
        Action::AuditProofInclusion,
        "GET",
        "/api/v1/audit/proof/inclusion",
        MANAGERS,
    ),
    (
        Action::AuditProofConsistency,
        "GET",
        "/api/v1/audit/proof/consistency",
        MANAGERS,
    ),
    // Agents: every role reads; members manage only the agents they registered (403 on others'),
    // managers and admins every agent of the organization. Reinstating a suspended agent is for
    // managers and admins only. Agent-signed routes (heartbeat, rotate-key) are not in this table:
    // the agent's signature authenticates them (crate::agent_auth).
    (Action::AgentsList, "GET", "/api/v1/agents", ALL),
    (Action::AgentsRead, "GET", "/api/v1/agents/{id}", ALL),
    (Action::AgentsCreate, "POST", "/api/v1/agents", WRITERS),
    // aim-sdk compatibility (docs/COMPATIBILITY.md): registration with an API key, and the
    // OAuth-mode lookup by id or name. The other /api/v1/sdk-api routes are agent-signed.
    (
        Action::SdkAgentsRegister,
        "POST",
        "/api/v1/public/agents/register",
        WRITERS,
    ),
    (
        Action::SdkAgentsRead,
        "GET",
        "/api/v1/sdk-api/agents/{id}",
        ALL,
    ),
    (
        Action::AgentsSuspend,
        "POST",
        "/api/v1/agents/{id}/suspend",
        WRITERS,
    ),
    (
        Action::AgentsActivate,
        "POST",
        "/api/v1/agents/{id}/activate",
        MANAGERS,
    ),
    (
        Action::AgentsRevoke,
        "POST",
        "/api/v1/agents/{id}/revoke",
        WRITERS,
    ),
    (
        Action::AgentsChallenge,
        "POST",
        "/api/v1/agents/{id}/challenge",
        WRITERS,
    ),
    (
        Action::AgentsVerify,
        "POST",
        "/api/v1/agents/{id}/verify",
        WRITERS,
    ),
    // Trust reports: every role reads, like the agent itself. Credentials: members for the
    // agents they registered, managers and admins for every agent (docs/credentials.md).
    (Action::AgentsTrust, "GET", "/api/v1/agents/{id}/trust", ALL),
    (
        Action::AgentsTrustHistory,
        "GET",
        "/api/v1/agents/{id}/trust/history",
        ALL,
    ),
    (
        Action::AgentsCredential,
        "GET",
        "/api/v1/agents/{id}/credential",
        WRITERS,
    ),
    // Action decisions: every role reads; managers and admins decide pending ones (never the
    // agent's owner, and only a listed approver when the policy names any: docs/agents.md).
    (Action::ActionsList, "GET", "/api/v1/actions", ALL),
    (Action::ActionsRead, "GET", "/api/v1/actions/{id}", ALL),
    (
        Action::ActionsApprove,
        "POST",
        "/api/v1/actions/{id}/approve",
        MANAGERS,
    ),
    (
        Action::ActionsDeny,
        "POST",
        "/api/v1/actions/{id}/deny",
        MANAGERS,
    ),
    // Governance (docs/agents.md "Capabilities", docs/POLICY.md "Server"): every role sees an
    // agent's grants; managers and admins change them and decide requests (never for an agent
    // they own or a request they made: separation of duties, checked in the handler); the policy
    // set is read by managers and admins and saved by admins only. The agent's own request
    // (`POST /api/v1/agents/{id}/capability-requests`) is signed, not in this table.
    (
        Action::AgentCapabilitiesRead,
        "GET",
        "/api/v1/agents/{id}/capabilities",
        ALL,
    ),
    (
        Action::AgentCapabilitiesGrant,
        "POST",
        "/api/v1/agents/{id}/capabilities",
        MANAGERS,
    ),
    (
        Action::AgentCapabilitiesRevoke,
        "DELETE",
        "/api/v1/agents/{id}/capabilities/{capability}",
        MANAGERS,
    ),
    (
        Action::CapabilityRequestsList,
        "GET",
        "/api/v1/capability-requests",
        MANAGERS,
    ),
    (
        Action::CapabilityRequestsRead,
        "GET",
        "/api/v1/capability-requests/{id}",
        MANAGERS,
    ),
    (
        Action::CapabilityRequestsApprove,
        "POST",
        "/api/v1/capability-requests/{id}/approve",
        MANAGERS,
    ),
    (
        Action::CapabilityRequestsDeny,
        "POST",
        "/api/v1/capability-requests/{id}/deny",
        MANAGERS,
    ),
    (Action::PoliciesRead, "GET", "/api/v1/policies", MANAGERS),
    (Action::PoliciesUpdate, "PUT", "/api/v1/policies", ADMINS),
    (
        Action::PoliciesValidate,
        "POST",
        "/api/v1/policies/validate",
        MANAGERS,
    ),
    (
        Action::PolicyVersionsList,
        "GET",
        "/api/v1/policies/versions",
        MANAGERS,
    ),
    (
        Action::PolicyVersionsRead,
        "GET",
        "/api/v1/policies/versions/{version}",
        MANAGERS,
    ),
    // MCP servers (docs/MCP.md "Server"): every role sees servers, confidence and an agent's
    // connections; managers and admins register and pin. Attestations are signed by agents.
    (Action::McpServersList, "GET", "/api/v1/mcp-servers", ALL),
    (
        Action::McpServersCreate,
        "POST",
        "/api/v1/mcp-servers",
        MANAGERS,
    ),
    (
        Action::McpServersRead,
        "GET",
        "/api/v1/mcp-servers/{id}",
        ALL,
    ),
    (
        Action::McpServersPin,
        "PUT",
        "/api/v1/mcp-servers/{id}/pin",
        MANAGERS,
    ),
    (
        Action::AgentMcpConnections,
        "GET",
        "/api/v1/agents/{id}/mcp-connections",
        ALL,
    ),
    // Security monitoring (docs/monitoring.md): every role sees anomalies, incidents and alerts;
    // managers and admins acknowledge and resolve them and read the alert routes; only admins
    // change routes (they hold webhook secrets and decide where security data goes).
    (Action::AnomaliesList, "GET", "/api/v1/anomalies", ALL),
    (Action::IncidentsList, "GET", "/api/v1/incidents", ALL),
    (Action::IncidentsRead, "GET", "/api/v1/incidents/{id}", ALL),
    (
        Action::IncidentsAcknowledge,
        "POST",
        "/api/v1/incidents/{id}/acknowledge",
        MANAGERS,
    ),
    (
        Action::IncidentsResolve,
        "POST",
        "/api/v1/incidents/{id}/resolve",
        MANAGERS,
    ),
    (Action::AlertsList, "GET", "/api/v1/alerts", ALL),
    (Action::AlertsRead, "GET", "/api/v1/alerts/{id}", ALL),
    (
        Action::AlertsAcknowledge,
        "POST",
        "/api/v1/alerts/{id}/acknowledge",
        MANAGERS,
    ),
    (
        Action::AlertsResolve,
        "POST",
        "/api/v1/alerts/{id}/resolve",
        MANAGERS,
    ),
    (
        Action::AlertRoutesList,
        "GET",
        "/api/v1/alert-routes",
        MANAGERS,
    ),
    (
        Action::AlertRoutesCreate,
        "POST",
        "/api/v1/alert-routes",
        ADMINS,
    ),
    (
        Action::AlertRoutesRead,
        "GET",
        "/api/v1/alert-routes/{id}",
        MANAGERS,
    ),
    (
        Action::AlertRoutesUpdate,
        "PATCH",
        "/api/v1/alert-routes/{id}",
        ADMINS,
    ),
    (
        Action::AlertRoutesDelete,
        "DELETE",
        "/api/v1/alert-routes/{id}",
        ADMINS,
    ),
    (
        Action::AlertRoutesTest,
        "POST",
        "/api/v1/alert-routes/{id}/test",
        ADMINS,
    ),
];

impl Action {
    /// Roles allowed to perform the action (before ownership checks).
    pub fn roles(self) -> &'static [Role] {
        PERMISSIONS
            .iter()
            .find(|(a, ..)| *a == self)
            .map(|(.., r)| *r)
            .unwrap_or(&[])
    }

    /// Account self-service: only a logged-in human (session), never an API key.
    pub fn session_only(self) -> bool {
        matches!(
            self,
            Action::AuthMe
                | Action::AuthChangePassword
                | Action::AuthLogout
                | Action::TotpEnroll
                | Action::TotpConfirm
                | Action::TotpDisable
        )
    }

    /// Allowed while the session must change its password or enroll TOTP first.
    pub fn allowed_while_restricted(self) -> bool {
        matches!(
            self,
            Action::AuthMe
                | Action::AuthChangePassword
                | Action::AuthLogout
                | Action::TotpEnroll
                | Action::TotpConfirm
        )
    }
}

/// Checks the table (not ownership, not account restrictions).
pub fn check(action: Action, role: Role) -> Result<(), ApiError> {
    if action.roles().contains(&role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "role {role} may not perform this action"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for (a, ..) in PERMISSIONS {
            assert!(seen.insert(*a), "{a:?} twice");
            assert!(!a.roles().is_empty());
        }
        assert_eq!(seen.len(), 72);
    }

    #[test]
    fn viewers_cannot_write() {
        for (a, method, ..) in PERMISSIONS {
            if *method != "GET" && !a.session_only() {
                assert!(check(*a, Role::Viewer).is_err(), "viewer may {a:?}");
            }
        }
    }
}
