//! The HTTP client: credentials, automatic refresh-token rotation, error mapping.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::*;

/// Seconds before the access token's expiry at which it is refreshed ahead of use.
const REFRESH_MARGIN_SECS: i64 = 30;

/// A logged-in session: the token pair and when the access token expires (Unix seconds, by the
/// client's clock).
///
/// Invariant: `refresh_token` is the newest token of its family. The server retires a refresh
/// token on use and treats a second use as theft (revoking the session), so after every rotation
/// the new pair must replace the old one wherever it is stored (see
/// [`ClientBuilder::on_session_change`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn from_pair(p: &TokenPair) -> Session {
        Session {
            access_token: p.access_token.clone(),
            refresh_token: p.refresh_token.clone(),
            access_expires_at: now_secs()
                .saturating_add(i64::try_from(p.expires_in).unwrap_or(i64::MAX)),
        }
    }
}

/// How the client authenticates.
#[derive(Clone, Default)]
pub enum Credential {
    /// Only public routes (login, refresh, health) work.
    #[default]
    None,
    /// An `aim_live_…` API key, sent as `X-API-Key`.
    ApiKey(SecretString),
    /// A session (access + refresh token), refreshed automatically.
    Session(Session),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::ApiKey(_) => "ApiKey(..)",
            Credential::Session(_) => "Session(..)",
        })
    }
}

/// Called with the new session after every login and every refresh-token rotation.
pub type SessionListener = Arc<dyn Fn(&Session) + Send + Sync>;

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    ca_file: Option<PathBuf>,
    timeout: Duration,
    credential: Credential,
    listener: Option<SessionListener>,
}

impl ClientBuilder {
    /// Trust only the CA certificate(s) in this PEM file for HTTPS (pinning). Use it for a server
    /// with a self-signed certificate (e.g. the one `opena2a server --tls-self-signed` writes
    /// under its data root). Without it, the platform's trust store is used.
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Whole-request timeout (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Starting credential.
    pub fn credential(mut self, c: Credential) -> Self {
        self.credential = c;
        self
    }

    /// Notified of every new session (login, rotation), so the caller can persist it at once.
    pub fn on_session_change(mut self, f: SessionListener) -> Self {
        self.listener = Some(f);
        self
    }

    /// Checks the base URL, loads the CA file, builds the HTTP client.
    pub fn build(self) -> Result<Client> {
        let base = self.base.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Error::Config(format!("server URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::Config(format!(
                "server URL {base:?} must be http://HOST[:PORT] or https://HOST[:PORT]"
            )));
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("aim-client/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &self.ca_file {
            http = http.tls_certs_only(load_ca(path)?);
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            credential: Mutex::new(self.credential),
            refresh_lock: tokio::sync::Mutex::new(()),
            listener: self.listener,
        })
    }
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::Config(format!(
            "{} is not a PEM certificate file: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// A typed async client for the AIM server API.
///
/// Thread-safe; share it behind an `Arc`. Refreshes are serialized, so concurrent calls that all
/// find the access token expired rotate the refresh token once (a second rotation with the same
/// token would be taken by the server for theft and end the session).
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Mutex<Credential>,
    refresh_lock: tokio::sync::Mutex<()>,
    listener: Option<SessionListener>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Client {
    /// A builder for the server at `base` (`https://host:port`).
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
            credential: Credential::None,
            listener: None,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The current session (after any rotation), if the client uses one.
    pub fn session(&self) -> Option<Session> {
        match &*self.lock() {
            Credential::Session(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Replaces the credential.
    pub fn set_credential(&self, c: Credential) {
        *self.lock() = c;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Credential> {
        self.credential
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store_session(&self, s: Session) {
        if let Some(l) = &self.listener {
            l(&s);
        }
        *self.lock() = Credential::Session(s);
    }

    // ----- auth -----

    /// `POST /api/v1/auth/login`. On success the client uses the new session. A
    /// `password_change_required` answer still logs in (the flag is set in the result).
    pub async fn login(
        &self,
        email: &str,
        password: &SecretString,
        totp_code: Option<&str>,
    ) -> Result<TokenPair> {
        let mut body = json!({ "email": email, "password": password.expose_secret() });
        if let Some(c) = totp_code {
            body["totpCode"] = json!(c);
        }
        let pair: TokenPair = self.public_post("/api/v1/auth/login", &body).await?;
        self.store_session(Session::from_pair(&pair));
        Ok(pair)
    }

    /// `POST /api/v1/auth/login` with a recovery code instead of a TOTP code.
    pub async fn login_with_recovery_code(
        &self,
        email: &str,
        password: &SecretString,
        recovery_code: &str,
    ) -> Result<TokenPair> {
        let body = json!({ "email": email, "password": password.expose_secret(), "recoveryCode": recovery_code });
        let pair: TokenPair = self.public_post("/api/v1/auth/login", &body).await?;
        self.store_session(Session::from_pair(&pair));
        Ok(pair)
    }

    /// Rotates the refresh token now (`POST /api/v1/auth/refresh`) and stores the new pair.
    pub async fn refresh(&self) -> Result<Session> {
        let seen = self.session().ok_or(Error::NotAuthenticated)?;
        self.refresh_from(&seen.refresh_token).await
    }

    /// Refreshes unless another task already rotated `seen_refresh` away.
    async fn refresh_from(&self, seen_refresh: &str) -> Result<Session> {
        let _guard = self.refresh_lock.lock().await;
        let current = self.session().ok_or(Error::NotAuthenticated)?;
        if current.refresh_token != seen_refresh {
            return Ok(current);
        }
        let body = json!({ "refreshToken": current.refresh_token });
        let pair: TokenPair = match self.public_post("/api/v1/auth/refresh", &body).await {
            Ok(p) => p,
            Err(Error::Api { status: 401, .. }) => {
                return Err(Error::Api {
                    status: 401,
                    code: "session_expired".into(),
                    message: "the session has ended (expired, logged out or revoked); log in again"
                        .into(),
                });
            }
            Err(e) => return Err(e),
        };
        let s = Session::from_pair(&pair);
        self.store_session(s.clone());
        Ok(s)
    }

    /// `POST /api/v1/auth/logout`: ends the session on the server (by its refresh token, which
    /// works even when the access token has expired). The client forgets the session.
    pub async fn logout(&self) -> Result<()> {
        let s = self.session().ok_or(Error::NotAuthenticated)?;
        let body = json!({ "refreshToken": s.refresh_token });
        let r = self
            .call_empty(Method::POST, "/api/v1/auth/logout", Some(body), false)
            .await;
        self.set_credential(Credential::None);
        r
    }

    /// `GET /api/v1/auth/me`.
    pub async fn me(&self) -> Result<Me> {
        self.call_json(Method::GET, "/api/v1/auth/me", None, true)
            .await
    }

    /// `POST /api/v1/auth/change-password`. Keeps this session, ends every other one.
    pub async fn change_password(&self, current: &SecretString, new: &SecretString) -> Result<()> {
        let body = json!({ "currentPassword": current.expose_secret(), "newPassword": new.expose_secret() });
        self.call_empty(
            Method::POST,
            "/api/v1/auth/change-password",
            Some(body),
            true,
        )
        .await
    }

    /// `POST /api/v1/auth/totp/enroll`.
    pub async fn totp_enroll(&self) -> Result<TotpEnrollment> {
        self.call_json(Method::POST, "/api/v1/auth/totp/enroll", None, true)
            .await
    }

    /// `POST /api/v1/auth/totp/confirm {code}`.
    pub async fn totp_confirm(&self, code: &str) -> Result<TotpConfirmed> {
        self.call_json(
            Method::POST,
            "/api/v1/auth/totp/confirm",
            Some(json!({ "code": code })),
            true,
        )
        .await
    }

    // ----- users -----

    /// `GET /api/v1/users` (one page).
    pub async fn list_users(&self, after: Option<Uuid>, limit: Option<u32>) -> Result<Page<User>> {
        self.call_json(
            Method::GET,
            &page_path("/api/v1/users", after, limit),
            None,
            true,
        )
        .await
    }

    /// Every user, following `nextAfter` to the end.
    pub async fn all_users(&self) -> Result<Vec<User>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_users(after, Some(500)).await?;
            out.extend(page.items);
            match page.next_after {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// `GET /api/v1/users/{id}`.
    pub async fn get_user(&self, id: Uuid) -> Result<User> {
        self.call_json(Method::GET, &format!("/api/v1/users/{id}"), None, true)
            .await
    }

    /// `POST /api/v1/users`.
    pub async fn create_user(&self, new: &NewUser) -> Result<CreatedUser> {
        self.call_json(Method::POST, "/api/v1/users", Some(to_value(new)?), true)
            .await
    }

    /// `PATCH /api/v1/users/{id}`.
    pub async fn update_user(&self, id: Uuid, update: &UserUpdate) -> Result<User> {
        self.call_json(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(to_value(update)?),
            true,
        )
        .await
    }

    /// `DELETE /api/v1/users/{id}`.
    pub async fn delete_user(&self, id: Uuid) -> Result<()> {
        self.call_empty(Method::DELETE, &format!("/api/v1/users/{id}"), None, true)
            .await
    }

    // ----- API keys -----

    /// `GET /api/v1/api-keys` (one page).
    pub async fn list_api_keys(
        &self,
        after: Option<Uuid>,
        limit: Option<u32>,
    ) -> Result<Page<ApiKey>> {
        self.call_json(
            Method::GET,
            &page_path("/api/v1/api-keys", after, limit),
            None,
            true,
        )
        .await
    }

    /// Every visible API key, following `nextAfter` to the end.
    pub async fn all_api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_api_keys(after, Some(500)).await?;
            out.extend(page.items);
            match page.next_after {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// `POST /api/v1/api-keys`: the secret is in the answer, once.
    pub async fn create_api_key(&self, new: &NewApiKey) -> Result<ApiKeyWithSecret> {
        self.call_json(Method::POST, "/api/v1/api-keys", Some(to_value(new)?), true)
            .await
    }

    /// `GET /api/v1/api-keys/{id}`.
    pub async fn get_api_key(&self, id: Uuid) -> Result<ApiKey> {
        self.call_json(Method::GET, &format!("/api/v1/api-keys/{id}"), None, true)
            .await
    }

    /// `DELETE /api/v1/api-keys/{id}`: permanent.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            None,
            true,
        )
        .await
    }

    /// `POST /api/v1/api-keys/{id}/rotate`: new secret (once); the old one stops working.
    pub async fn rotate_api_key(&self, id: Uuid) -> Result<ApiKeyWithSecret> {
        self.call_json(
            Method::POST,
            &format!("/api/v1/api-keys/{id}/rotate"),
            None,
            true,
        )
        .await
    }

    // ----- organization -----

    /// `GET /api/v1/org`.
    pub async fn get_org(&self) -> Result<Org> {
        self.call_json(Method::GET, "/api/v1/org", None, true).await
    }

    /// `PATCH /api/v1/org {require2faForAdmins}`.
    pub async fn update_org(&self, require_2fa_for_admins: Option<bool>) -> Result<Org> {
        let mut body = json!({});
        if let Some(v) = require_2fa_for_admins {
            body["require2faForAdmins"] = json!(v);
        }
        self.call_json(Method::PATCH, "/api/v1/org", Some(body), true)
            .await
    }

    // ----- generic -----

    /// Any call answering JSON (for routes this crate has no typed method for yet).
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let resp = self.send(method, path, body, auth).await?;
        decode(url, resp).await
    }

    /// A POST without credentials and without any refresh logic (login, refresh).
    async fn public_post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|e| Error::Transport {
                url: url.clone(),
                detail: transport_detail(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(api_error(status, resp).await);
        }
        decode(url, resp).await
    }

    /// Any call answering an empty success (204).
    pub async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<()> {
        self.send(method, path, body, auth).await.map(|_| ())
    }

    /// Sends, refreshing the session first when its access token is (about to be) expired, and
    /// once more after a 401 (the server's clock is the one that counts). Maps non-2xx answers
    /// to [`Error::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{}", self.base, path);
        let mut retried = false;
        loop {
            let cred = if auth {
                self.lock().clone()
            } else {
                Credential::None
            };
            if auth && matches!(cred, Credential::None) {
                return Err(Error::NotAuthenticated);
            }
            if let Credential::Session(s) = &cred
                && !retried
                && now_secs() >= s.access_expires_at - REFRESH_MARGIN_SECS
            {
                self.refresh_from(&s.refresh_token).await?;
                retried = true;
                continue;
            }
            let mut rb = self.http.request(method.clone(), &url);
            match &cred {
                Credential::None => {}
                Credential::ApiKey(k) => rb = rb.header("x-api-key", k.expose_secret()),
                Credential::Session(s) => rb = rb.bearer_auth(&s.access_token),
            }
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let resp = rb.send().await.map_err(|e| Error::Transport {
                url: url.clone(),
                detail: transport_detail(&e),
            })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status == StatusCode::UNAUTHORIZED
                && !retried
                && let Credential::Session(s) = &cred
            {
                self.refresh_from(&s.refresh_token).await?;
                retried = true;
                continue;
            }
            return Err(api_error(status, resp).await);
        }
    }
}

async fn decode<T: DeserializeOwned>(url: String, resp: reqwest::Response) -> Result<T> {
    let text = resp.text().await.map_err(|e| Error::Transport {
        url: url.clone(),
        detail: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Decode {
        url,
        detail: e.to_string(),
    })
}

fn transport_detail(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

async fn api_error(status: StatusCode, resp: reqwest::Response) -> Error {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => Error::Api {
            status: status.as_u16(),
            code: b.error,
            message: b.message,
        },
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_string(),
        },
    }
}

fn page_path(base: &str, after: Option<Uuid>, limit: Option<u32>) -> String {
    let mut q = Vec::new();
    if let Some(a) = after {
        q.push(format!("after={a}"));
    }
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    if q.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Config(format!("request body: {e}")))
}
