//! Discovery of MCP servers in the configuration files of MCP clients.
//!
//! The caller passes a [`DiscoveryEnv`] (OS, home, `APPDATA`, `LOCALAPPDATA`, `XDG_CONFIG_HOME`,
//! workspace), so the macOS, Windows and Linux layouts are all readable on any machine and every
//! layout is tested over fixture home directories.
//!
//! Invariants:
//! - Env var and HTTP header **values** are never part of a [`ServerEntry`]'s serialized or
//!   `Debug` form: only their names are reported. The values live in [`LaunchSpec`] (needed to
//!   start the server), whose `Debug` prints names only and which is never serialized.
//! - Credentials inside arguments and URLs (`scheme://user:pass@`, `--token X`, `KEY=value`
//!   with a secret-looking key, secret-looking query parameters) are replaced by `***` in the
//!   reported form.
//! - A config file that exists but cannot be read or parsed, or a server entry that cannot be
//!   understood, is a [`ConfigError`] in the report, never a silent empty result. A missing file
//!   is simply not present.
//! - VS Code files are JSONC (comments, trailing commas): they are read through [`crate::jsonc`].
//!   Other clients' files are strict JSON, but the same tolerant reader is used for all of them,
//!   because users hand-edit these files and a comment is not a reason to miss a server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{self, Classification};

/// Maximum size of a client config file (Claude Code's `~/.claude.json` grows with history).
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// Operating-system layout of the config locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Macos,
    Windows,
    Linux,
}

impl Os {
    /// The layout of the machine this runs on (BSDs and others use the Linux/XDG layout).
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::Macos
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// Everything discovery reads from the environment, passed explicitly.
#[derive(Debug, Clone)]
pub struct DiscoveryEnv {
    pub os: Os,
    /// The user's home directory (`%USERPROFILE%` on Windows).
    pub home: PathBuf,
    /// `%APPDATA%` (Windows). Default `<home>\AppData\Roaming`.
    pub appdata: Option<PathBuf>,
    /// `%LOCALAPPDATA%` (Windows). Default `<home>\AppData\Local`.
    pub local_appdata: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME` (Linux). Default `<home>/.config`.
    pub xdg_config_home: Option<PathBuf>,
    /// A project directory whose workspace configs (`.vscode/`, `.cursor/`, `.mcp.json`,
    /// `.gemini/`) are read too.
    pub workspace: Option<PathBuf>,
}

impl DiscoveryEnv {
    /// The environment of this process (`HOME`/`USERPROFILE`, `APPDATA`, `LOCALAPPDATA`,
    /// `XDG_CONFIG_HOME`); empty variables count as unset.
    pub fn from_process(workspace: Option<PathBuf>) -> crate::Result<Self> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let os = Os::current();
        let home = if os == Os::Windows {
            var("USERPROFILE").or_else(|| var("HOME"))
        } else {
            var("HOME")
        }
        .ok_or_else(|| crate::Error::invalid("environment", "HOME is not set"))?;
        Ok(DiscoveryEnv {
            os,
            home,
            appdata: var("APPDATA"),
            local_appdata: var("LOCALAPPDATA"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            workspace,
        })
    }

    fn appdata(&self) -> PathBuf {
        self.appdata
            .clone()
            .unwrap_or_else(|| self.home.join("AppData").join("Roaming"))
    }

    fn local_appdata(&self) -> PathBuf {
        self.local_appdata
            .clone()
            .unwrap_or_else(|| self.home.join("AppData").join("Local"))
    }

    fn xdg(&self) -> PathBuf {
        self.xdg_config_home
            .clone()
            .unwrap_or_else(|| self.home.join(".config"))
    }

    /// The per-user application-config directory (`~/Library/Application Support`,
    /// `%APPDATA%`, `$XDG_CONFIG_HOME`).
    fn app_config(&self) -> PathBuf {
        match self.os {
            Os::Macos => self.home.join("Library").join("Application Support"),
            Os::Windows => self.appdata(),
            Os::Linux => self.xdg(),
        }
    }
}

/// An MCP client whose configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Windsurf,
    Vscode,
    GeminiCli,
    /// A config file named explicitly by the user.
    File,
}

impl Client {
    /// Stable name (as in JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Windsurf => "windsurf",
            Client::Vscode => "vscode",
            Client::GeminiCli => "gemini-cli",
            Client::File => "file",
        }
    }
}

/// How a client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Stdio,
    /// MCP streamable HTTP (one endpoint, POST JSON-RPC, JSON or SSE answers).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (GET an event stream, POST to the endpoint it names).
    Sse,
}

/// Where in a config file the servers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"mcpServers": {...}}`
    McpServers,
    /// VS Code `mcp.json`: `{"servers": {...}}`
    Servers,
    /// VS Code `settings.json`: `{"mcp": {"servers": {...}}}` or `{"mcp.servers": {...}}`
    SettingsMcpServers,
    /// Claude Code `~/.claude.json`: top-level `mcpServers` and `projects.<dir>.mcpServers`
    ClaudeCode,
    /// A file named by the user: any of the above.
    Any,
}

/// One config file location a client may use.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigLocation {
    pub client: Client,
    /// `user` or `workspace`.
    pub scope: &'static str,
    pub path: PathBuf,
    #[serde(skip)]
    shape: Shape,
}

/// Launch details including secrets. Never serialized; `Debug` shows env/header names only.
#[derive(Clone, Default)]
pub struct LaunchSpec {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub url: Option<String>,
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("command", &self.command)
            .field("args", &redact_args(&self.args))
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One MCP server found in a client config.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEntry {
    /// The server's key in the config.
    pub name: String,
    pub client: Client,
    /// `user`, `workspace`, or `project:<dir>` (Claude Code per-project servers).
    pub scope: String,
    pub config_path: PathBuf,
    pub transport: Transport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments with credentials redacted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// URL with credentials redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Names of the env vars the config sets (values never reported).
    pub env_names: Vec<String>,
    /// Names of the HTTP headers the config sets (values never reported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_names: Vec<String>,
    /// The config marks the server disabled.
    pub disabled: bool,
    pub classification: Option<Classification>,
    /// What is needed to start it (with secrets); not serialized.
    #[serde(skip)]
    pub launch: LaunchSpec,
}

/// A config file (or one server entry in it) that exists but could not be understood.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigError {
    pub client: Client,
    pub config_path: PathBuf,
    /// The server entry at fault, when the file itself is fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub error: String,
}

/// The result of discovery.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryReport {
    pub servers: Vec<ServerEntry>,
    pub errors: Vec<ConfigError>,
    /// Config files that exist and were read (including those with errors).
    pub configs_read: Vec<ConfigLocation>,
}

/// Every config location for `env`, in a stable order (clients, then user before workspace).
pub fn locations(env: &DiscoveryEnv) -> Vec<ConfigLocation> {
    let loc = |client, scope, path: PathBuf, shape| ConfigLocation {
        client,
        scope,
        path,
        shape,
    };
    let mut out = Vec::new();
    let claude_file = "claude_desktop_config.json";
    out.push(loc(
        Client::ClaudeDesktop,
        "user",
        env.app_config().join("Claude").join(claude_file),
        Shape::McpServers,
    ));
    if env.os == Os::Windows {
        // Claude Desktop installed as an MSIX package keeps its roaming data in the package's
        // virtualised LocalCache.
        out.push(loc(
            Client::ClaudeDesktop,
            "user",
            env.local_appdata()
                .join("Packages")
                .join("Claude_pzs8sxrjxfjjc")
                .join("LocalCache")
                .join("Roaming")
                .join("Claude")
                .join(claude_file),
            Shape::McpServers,
        ));
    }
    out.push(loc(
        Client::ClaudeCode,
        "user",
        env.home.join(".claude.json"),
        Shape::ClaudeCode,
    ));
    out.push(loc(
        Client::Cursor,
        "user",
        env.home.join(".cursor").join("mcp.json"),
        Shape::McpServers,
    ));
    out.push(loc(
        Client::Windsurf,
        "user",
        env.home
            .join(".codeium")
            .join("windsurf")
            .join("mcp_config.json"),
        Shape::McpServers,
    ));
    let vscode_user = env.app_config().join("Code").join("User");
    out.push(loc(
        Client::Vscode,
        "user",
        vscode_user.join("mcp.json"),
        Shape::Servers,
    ));
    out.push(loc(
        Client::Vscode,
        "user",
        vscode_user.join("settings.json"),
        Shape::SettingsMcpServers,
    ));
    out.push(loc(
        Client::GeminiCli,
        "user",
        env.home.join(".gemini").join("settings.json"),
        Shape::McpServers,
    ));
    if let Some(ws) = &env.workspace {
        out.push(loc(
            Client::ClaudeCode,
            "workspace",
            ws.join(".mcp.json"),
            Shape::McpServers,
        ));
        out.push(loc(
            Client::Cursor,
            "workspace",
            ws.join(".cursor").join("mcp.json"),
            Shape::McpServers,
        ));
        out.push(loc(
            Client::Vscode,
            "workspace",
            ws.join(".vscode").join("mcp.json"),
            Shape::Servers,
        ));
        out.push(loc(
            Client::Vscode,
            "workspace",
            ws.join(".vscode").join("settings.json"),
            Shape::SettingsMcpServers,
        ));
        out.push(loc(
            Client::GeminiCli,
            "workspace",
            ws.join(".gemini").join("settings.json"),
            Shape::McpServers,
        ));
    }
    out
}

/// Reads every client config for `env`.
pub fn discover(env: &DiscoveryEnv) -> DiscoveryReport {
    let mut report = DiscoveryReport::default();
    for loc in locations(env) {
        read_location(&loc, &mut report);
    }
    report
}

/// Reads one config file named by the user (any of the known shapes).
pub fn discover_file(path: &Path) -> DiscoveryReport {
    let mut report = DiscoveryReport::default();
    let loc = ConfigLocation {
        client: Client::File,
        scope: "user",
        path: path.to_path_buf(),
        shape: Shape::Any,
    };
    if !path.exists() {
        report.errors.push(ConfigError {
            client: Client::File,
            config_path: path.to_path_buf(),
            server: None,
            error: "file does not exist".into(),
        });
        return report;
    }
    read_location(&loc, &mut report);
    report
}

fn read_location(loc: &ConfigLocation, report: &mut DiscoveryReport) {
    let path = &loc.path;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        _ => {}
    }
    report.configs_read.push(loc.clone());
    let err = |report: &mut DiscoveryReport, server: Option<String>, error: String| {
        report.errors.push(ConfigError {
            client: loc.client,
            config_path: path.clone(),
            server,
            error,
        })
    };
    let text = match read_limited(path) {
        Ok(t) => t,
        Err(e) => return err(report, None, e),
    };
    if text.trim().is_empty() {
        // An empty file is how some clients leave a config they created but never filled.
        return;
    }
    let root: Value = match serde_json::from_str(&crate::jsonc::strip(&text)) {
        Ok(v) => v,
        Err(e) => return err(report, None, format!("not valid JSON: {e}")),
    };
    let Some(root) = root.as_object() else {
        return err(report, None, "the top level is not a JSON object".into());
    };
    let mut groups: Vec<(String, &Value)> = Vec::new();
    let scope = loc.scope.to_string();
    match loc.shape {
        Shape::McpServers => groups.extend(root.get("mcpServers").map(|v| (scope.clone(), v))),
        Shape::Servers => groups.extend(root.get("servers").map(|v| (scope.clone(), v))),
        Shape::SettingsMcpServers => {
            groups.extend(
                root.get("mcp")
                    .and_then(|m| m.get("servers"))
                    .map(|v| (scope.clone(), v)),
            );
            groups.extend(root.get("mcp.servers").map(|v| (scope.clone(), v)));
        }
        Shape::ClaudeCode => {
            groups.extend(root.get("mcpServers").map(|v| (scope.clone(), v)));
            if let Some(projects) = root.get("projects").and_then(Value::as_object) {
                for (dir, p) in projects {
                    if let Some(v) = p.get("mcpServers") {
                        groups.push((format!("project:{dir}"), v));
                    }
                }
            }
        }
        Shape::Any => {
            for key in ["mcpServers", "servers"] {
                groups.extend(root.get(key).map(|v| (scope.clone(), v)));
            }
            groups.extend(
                root.get("mcp")
                    .and_then(|m| m.get("servers"))
                    .map(|v| (scope.clone(), v)),
            );
        }
    }
    for (scope, group) in groups {
        let Some(map) = group.as_object() else {
            err(
                report,
                None,
                format!("the server list ({scope}) is not a JSON object"),
            );
            continue;
        };
        for (name, def) in map {
            match parse_server(loc.client, name, def) {
                Ok((transport, launch, disabled)) => report
                    .servers
                    .push(entry(loc, &scope, name, transport, launch, disabled)),
                Err(e) => err(report, Some(name.clone()), e),
            }
        }
    }
}

fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut buf = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".to_string())
}

fn string_map(def: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, String> {
    match def.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()),
        Some(_) => Err(format!("\"{key}\" is not an object")),
    }
}

fn opt_str(def: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match def.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{key}\" is not a string")),
    }
}

/// Parses one server definition: transport, launch spec, disabled flag.
fn parse_server(
    client: Client,
    _name: &str,
    def: &Value,
) -> Result<(Transport, LaunchSpec, bool), String> {
    let def = def
        .as_object()
        .ok_or_else(|| "the server definition is not a JSON object".to_string())?;
    let command = opt_str(def, "command")?;
    let args = match def.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err("\"args\" contains a non-string".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("\"args\" is not an array".into()),
    };
    let env = string_map(def, "env")?;
    let headers = string_map(def, "headers")?;
    let cwd = opt_str(def, "cwd")?.map(PathBuf::from);
    let http_url = opt_str(def, "httpUrl")?;
    let url = opt_str(def, "url")?.or(opt_str(def, "serverUrl")?);
    let disabled = def.get("disabled").and_then(Value::as_bool) == Some(true);
    let declared = opt_str(def, "type")?.or(opt_str(def, "transport")?);
    let transport = match declared.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("stdio") => Transport::Stdio,
        Some("http" | "streamable-http" | "streamablehttp" | "streamable_http") => {
            Transport::StreamableHttp
        }
        Some("sse") => Transport::Sse,
        Some(other) => return Err(format!("unknown transport type \"{other}\"")),
        None if command.is_some() => Transport::Stdio,
        None if http_url.is_some() => Transport::StreamableHttp,
        // Gemini CLI: `url` is the SSE transport, `httpUrl` the streamable HTTP one.
        None if url.is_some() && client == Client::GeminiCli => Transport::Sse,
        None => match &url {
            Some(u)
                if u.split(['?', '#'])
                    .next()
                    .unwrap_or(u)
                    .trim_end_matches('/')
                    .ends_with("/sse") =>
            {
                Transport::Sse
            }
            Some(_) => Transport::StreamableHttp,
            None => return Err("neither \"command\" nor \"url\" is set".into()),
        },
    };
    let url = http_url.or(url);
    match transport {
        Transport::Stdio if command.as_deref().is_none_or(str::is_empty) => {
            return Err("a stdio server needs a non-empty \"command\"".into());
        }
        Transport::StreamableHttp | Transport::Sse if url.is_none() => {
            return Err("an HTTP server needs a \"url\"".into());
        }
        _ => {}
    }
    Ok((
        transport,
        LaunchSpec {
            command,
            args,
            env,
            cwd,
            url,
            headers,
        },
        disabled,
    ))
}

fn entry(
    loc: &ConfigLocation,
    scope: &str,
    name: &str,
    transport: Transport,
    launch: LaunchSpec,
    disabled: bool,
) -> ServerEntry {
    let classification = match (&launch.command, &launch.url, transport) {
        (Some(c), _, Transport::Stdio) => catalog::classify_command(c, &launch.args),
        (_, Some(u), _) => catalog::classify_url(u),
        _ => None,
    };
    let is_stdio = transport == Transport::Stdio;
    ServerEntry {
        name: name.to_string(),
        client: loc.client,
        scope: scope.to_string(),
        config_path: loc.path.clone(),
        transport,
        command: launch.command.clone().filter(|_| is_stdio),
        args: if is_stdio {
            redact_args(&launch.args)
        } else {
            Vec::new()
        },
        url: launch.url.as_deref().filter(|_| !is_stdio).map(redact_url),
        env_names: launch.env.keys().cloned().collect(),
        header_names: launch.headers.keys().cloned().collect(),
        disabled,
        classification,
        launch,
    }
}

/// Words that make a flag, variable or parameter name look like it carries a secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "apikey",
    "api_key",
    "api-key",
    "key",
    "auth",
    "credential",
    "bearer",
    "sig",
    "signature",
    "session",
    "cookie",
    "pat",
];

fn looks_secret(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| {
        n == *w
            || n.split(['_', '-', '.'])
                .any(|part| part == *w || (w.len() > 3 && part.contains(w)))
    })
}

/// Redacts credentials in a URL: the password of `user:pass@`, and the values of query
/// parameters whose names look secret.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match authority_path.find('/') {
        Some(p) => (&authority_path[..p], &authority_path[p..]),
        None => (authority_path, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{user}:***@{host}")
            } else {
                format!("***@{host}")
            }
        }
        None => authority.to_string(),
    };
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(path);
    if let Some(q) = query {
        let (q, frag) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if looks_secret(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
        if let Some(f) = frag {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

/// Redacts credentials in a command line (see the module invariants).
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
            continue;
        }
        if a.contains("://") {
            out.push(redact_url(a));
            continue;
        }
        if let Some((k, _)) = a.split_once('=') {
            if looks_secret(k) {
                out.push(format!("{k}=***"));
                continue;
            }
        } else if a.starts_with('-') && looks_secret(a) {
            hide_next = true;
        }
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_args_redacted() {
        assert_eq!(
            redact_url("postgresql://admin:hunter2@db:5432/app?sslmode=require&password=x"),
            "postgresql://admin:***@db:5432/app?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("https://mcp.example.com/sse?api_key=abc#f"),
            "https://mcp.example.com/sse?api_key=***#f"
        );
        let args: Vec<String> = [
            "--token",
            "ghp_secret",
            "--api-key=sk-1",
            "GITHUB_TOKEN=t",
            "/tmp",
            "--port",
            "8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_args(&args),
            [
                "--token",
                "***",
                "--api-key=***",
                "GITHUB_TOKEN=***",
                "/tmp",
                "--port",
                "8"
            ]
        );
    }

    #[test]
    fn transport_rules() {
        let p = |c, v: Value| parse_server(c, "x", &v).map(|t| t.0);
        assert_eq!(
            p(Client::Cursor, serde_json::json!({"command": "x"})),
            Ok(Transport::Stdio)
        );
        assert_eq!(
            p(Client::Cursor, serde_json::json!({"url": "https://h/mcp"})),
            Ok(Transport::StreamableHttp)
        );
        assert_eq!(
            p(Client::Cursor, serde_json::json!({"url": "https://h/sse"})),
            Ok(Transport::Sse)
        );
        assert_eq!(
            p(
                Client::GeminiCli,
                serde_json::json!({"url": "https://h/mcp"})
            ),
            Ok(Transport::Sse)
        );
        assert_eq!(
            p(
                Client::GeminiCli,
                serde_json::json!({"httpUrl": "https://h/mcp"})
            ),
            Ok(Transport::StreamableHttp)
        );
        assert_eq!(
            p(
                Client::Vscode,
                serde_json::json!({"type": "http", "url": "https://h"})
            ),
            Ok(Transport::StreamableHttp)
        );
        assert!(
            p(
                Client::Vscode,
                serde_json::json!({"type": "carrier-pigeon", "url": "x"})
            )
            .is_err()
        );
        assert!(p(Client::Vscode, serde_json::json!({"type": "stdio"})).is_err());
        assert!(p(Client::Vscode, serde_json::json!({"args": ["a"]})).is_err());
        assert!(
            p(
                Client::Vscode,
                serde_json::json!({"command": "x", "args": "a b"})
            )
            .is_err()
        );
        assert!(
            p(
                Client::Vscode,
                serde_json::json!({"command": "x", "env": ["A"]})
            )
            .is_err()
        );
    }

    #[test]
    fn launch_spec_debug_has_no_values() {
        let mut l = LaunchSpec::default();
        l.env.insert("API_TOKEN".into(), "very-secret-value".into());
        l.headers
            .insert("Authorization".into(), "Bearer very-secret-header".into());
        let d = format!("{l:?}");
        assert!(d.contains("API_TOKEN") && d.contains("Authorization"));
        assert!(!d.contains("very-secret"), "{d}");
    }
}
