//! Probing: speak MCP (JSON-RPC 2.0) to a server and collect what it offers a model.
//!
//! Sequence: `initialize` (protocol version [`PROTOCOL_VERSION`], no client capabilities) →
//! `notifications/initialized` → `tools/list`, `resources/list`, `prompts/list`, each following
//! `nextCursor` pages (at most [`ProbeOptions::max_pages`], a repeated cursor ends the loop). A
//! JSON-RPC "method not found" (-32601) answer to a list means "not supported" (`None`), not a
//! failure. **No tool is ever called.**
//!
//! Invariants:
//! - One deadline ([`ProbeOptions::timeout`]) covers the whole session, including start-up.
//! - stdio: the child runs in its own process group. Whatever happens (success, error, timeout,
//!   the future being dropped), the group is killed with SIGKILL and the child is reaped: on the
//!   normal path [`probe_stdio`] closes stdin, gives the server [`SHUTDOWN_GRACE`] to close its
//!   stdout, kills the group and awaits the exit status; on drop, `Drop` kills the group and
//!   tokio's `kill_on_drop` reaps the leader.
//! - stdout is capped at [`MAX_OUTPUT_BYTES`]; stderr is drained into a small tail used in error
//!   messages, with the config's env values replaced by `***`.
//! - Requests from the server (e.g. `roots/list`) are answered: `ping` with `{}`, anything else
//!   with method-not-found.
//! - streamable HTTP: each message is POSTed with `Accept: application/json, text/event-stream`;
//!   a JSON body or an SSE stream is read until the answer with the request's id; the
//!   `Mcp-Session-Id` the server assigns at initialization is sent on every later request, with
//!   `MCP-Protocol-Version`; the session is DELETEd at the end (best effort). This build has no
//!   TLS: `https://` URLs are rejected with a clear error.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::discovery::{LaunchSpec, Transport};
use crate::manifest::Manifest;
use crate::{Error, Result};

/// The MCP protocol revision this client asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Cap on what a server may write to stdout (or send over HTTP) during one probe.
pub const MAX_OUTPUT_BYTES: u64 = 32 * 1024 * 1024;
/// Time a stdio server gets to exit after its stdin is closed before its group is killed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
const STDERR_TAIL: usize = 2048;
const METHOD_NOT_FOUND: i64 = -32601;

/// Options of a probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Deadline for the whole session.
    pub timeout: Duration,
    /// Maximum pages followed per list.
    pub max_pages: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(30),
            max_pages: 100,
        }
    }
}

/// What a server offered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    /// The protocol version the server chose.
    pub protocol_version: String,
    pub server_info: Value,
    pub capabilities: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// `None`: not supported.
    pub tools: Option<Vec<Value>>,
    pub resources: Option<Vec<Value>>,
    pub prompts: Option<Vec<Value>>,
    /// Process id of the stdio child (already reaped when the result is returned).
    #[serde(skip)]
    pub pid: Option<u32>,
}

impl ProbeResult {
    /// The canonical manifest of what was found.
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::from_parts(
            &self.server_info,
            self.instructions.clone(),
            self.tools.as_deref(),
            self.resources.as_deref(),
            self.prompts.as_deref(),
        )
    }
}

/// Probes a server as described by a discovered config entry.
pub async fn probe(
    transport: Transport,
    spec: &LaunchSpec,
    opts: &ProbeOptions,
) -> Result<ProbeResult> {
    match transport {
        Transport::Stdio => probe_stdio(spec, opts).await,
        Transport::StreamableHttp => {
            let url = spec
                .url
                .as_deref()
                .ok_or_else(|| Error::invalid("server config", "no url"))?;
            probe_http(url, &spec.headers, opts).await
        }
        Transport::Sse => Err(Error::Transport(
            "the legacy HTTP+SSE transport is not probed by this version; only stdio and streamable HTTP".into(),
        )),
    }
}

enum Answer {
    Result(Value),
    Error { code: i64, message: String },
}

fn request_msg(id: u64, method: &str, params: Option<Value>) -> Value {
    let mut m = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(p) = params {
        m["params"] = p;
    }
    m
}

fn answer_of(msg: &Value) -> Option<Answer> {
    if let Some(r) = msg.get("result") {
        return Some(Answer::Result(r.clone()));
    }
    let e = msg.get("error")?;
    Some(Answer::Error {
        code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
        message: e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(500)
            .collect(),
    })
}

/// Reply to a request the server sent us, if `msg` is one.
fn reply_to_server_request(msg: &Value) -> Option<Value> {
    let method = msg.get("method")?.as_str()?;
    let id = msg.get("id")?.clone();
    if id.is_null() {
        return None;
    }
    Some(if method == "ping" {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": METHOD_NOT_FOUND, "message": "not supported by this client"}})
    })
}

enum Channel {
    Stdio(Box<StdioChannel>),
    Http(HttpChannel),
}

impl Channel {
    async fn request(&mut self, id: u64, method: &str, params: Option<Value>) -> Result<Answer> {
        let msg = request_msg(id, method, params);
        match self {
            Channel::Stdio(c) => c.request(id, &msg).await,
            Channel::Http(c) => c.request(id, &msg, method == "initialize").await,
        }
    }

    async fn notify(&mut self, method: &str) -> Result<()> {
        let msg = json!({"jsonrpc": "2.0", "method": method});
        match self {
            Channel::Stdio(c) => c.send(&msg).await,
            Channel::Http(c) => c.notify(&msg).await,
        }
    }
}

async fn session(chan: &mut Channel, opts: &ProbeOptions) -> Result<ProbeResult> {
    let mut next_id = 0u64;
    let mut id = || {
        next_id += 1;
        next_id
    };
    let init = chan
        .request(
            id(),
            "initialize",
            Some(json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "opena2a", "version": env!("CARGO_PKG_VERSION")},
            })),
        )
        .await?;
    let init = match init {
        Answer::Result(r) => r,
        Answer::Error { code, message } => {
            return Err(Error::Rpc {
                method: "initialize".into(),
                code,
                message,
            });
        }
    };
    let protocol_version = init
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("initialize result", "no protocolVersion"))?
        .to_string();
    if let Channel::Http(h) = chan {
        h.protocol_version = Some(protocol_version.clone());
    }
    let server_info = init
        .get("serverInfo")
        .cloned()
        .ok_or_else(|| Error::invalid("initialize result", "no serverInfo"))?;
    let capabilities = init.get("capabilities").cloned().unwrap_or(json!({}));
    let instructions = init
        .get("instructions")
        .and_then(Value::as_str)
        .map(str::to_string);
    chan.notify("notifications/initialized").await?;

    let mut lists: BTreeMap<&str, Option<Vec<Value>>> = BTreeMap::new();
    for (method, key) in [
        ("tools/list", "tools"),
        ("resources/list", "resources"),
        ("prompts/list", "prompts"),
    ] {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut supported = true;
        for _ in 0..opts.max_pages.max(1) {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            match chan.request(id(), method, params).await? {
                Answer::Error { code, .. } if code == METHOD_NOT_FOUND => {
                    supported = false;
                    break;
                }
                Answer::Error { code, message } => {
                    return Err(Error::Rpc {
                        method: method.into(),
                        code,
                        message,
                    });
                }
                Answer::Result(r) => {
                    let page = r.get(key).and_then(Value::as_array).ok_or_else(|| {
                        Error::invalid("list result", format!("{method}: no \"{key}\" array"))
                    })?;
                    items.extend(page.iter().cloned());
                    match r.get("nextCursor").and_then(Value::as_str) {
                        Some(c) if !c.is_empty() && seen.insert(c.to_string()) => {
                            cursor = Some(c.to_string())
                        }
                        _ => break,
                    }
                }
            }
        }
        lists.insert(key, supported.then_some(items));
    }
    Ok(ProbeResult {
        protocol_version,
        server_info,
        capabilities,
        instructions,
        tools: lists.remove("tools").flatten(),
        resources: lists.remove("resources").flatten(),
        prompts: lists.remove("prompts").flatten(),
        pid: None,
    })
}

// ---------------------------------------------------------------------------------------------
// stdio

struct StdioChannel {
    child: tokio::process::Child,
    pid: Option<u32>,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: BufReader<tokio::io::Take<tokio::process::ChildStdout>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    secrets: Vec<String>,
    reaped: bool,
}

impl StdioChannel {
    fn spawn(spec: &LaunchSpec) -> Result<Self> {
        let command = spec
            .command
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::invalid("server config", "no command"))?;
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(&spec.args)
            .envs(&spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Transport(format!("cannot start {command}: {e}")))?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Transport("no stdout pipe".into()))?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_task = None;
        if let Some(mut stderr) = child.stderr.take() {
            let tail = tail.clone();
            stderr_task = Some(tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend_from_slice(&buf[..n]);
                        let excess = t.len().saturating_sub(STDERR_TAIL);
                        t.drain(..excess);
                    }
                }
            }));
        }
        Ok(StdioChannel {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout.take(MAX_OUTPUT_BYTES)),
            stderr_tail: tail,
            stderr_task,
            secrets: spec
                .env
                .values()
                .filter(|v| v.len() >= 4)
                .cloned()
                .collect(),
            reaped: false,
        })
    }

    fn stderr_tail(&self) -> String {
        let raw = self
            .stderr_tail
            .lock()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default();
        let mut s = raw.trim().to_string();
        for secret in &self.secrets {
            s = s.replace(secret.as_str(), "***");
        }
        s
    }

    async fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(|e| Error::invalid("message", e))?;
        line.push(b'\n');
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::Transport("stdin closed".into()))?;
        let res = match stdin.write_all(&line).await {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => Ok(()),
            Err(e) => {
                self.drain_stderr().await;
                Err(Error::Transport(format!(
                    "the server closed its input (writing failed: {e}){}",
                    self.closed_hint()
                )))
            }
        }
    }

    /// After the server exited: waits (bounded) until its stderr is fully read, so error
    /// messages carry its last words.
    async fn drain_stderr(&mut self) {
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    fn closed_hint(&self) -> String {
        let t = self.stderr_tail();
        if t.is_empty() {
            String::new()
        } else {
            format!(" (server stderr: {t})")
        }
    }

    async fn request(&mut self, id: u64, msg: &Value) -> Result<Answer> {
        self.send(msg).await?;
        let mut line = String::new();
        loop {
            line.clear();
            let n =
                self.stdout.read_line(&mut line).await.map_err(|e| {
                    Error::Transport(format!("reading from the server failed: {e}"))
                })?;
            if n == 0 {
                self.drain_stderr().await;
                return Err(Error::Transport(format!(
                    "the server closed its output before answering {}{}",
                    msg["method"].as_str().unwrap_or("?"),
                    self.closed_hint()
                )));
            }
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
                continue; // a stray log line on stdout
            };
            if let Some(reply) = reply_to_server_request(&v) {
                self.send(&reply).await?;
                continue;
            }
            if v.get("id").and_then(Value::as_u64) == Some(id)
                && let Some(a) = answer_of(&v)
            {
                return Ok(a);
            }
        }
    }

    fn kill_group(&self) {
        #[cfg(unix)]
        if let Some(pid) = self.pid
            && !self.reaped
        {
            // SAFETY: kill(2) has no memory-safety preconditions. The leader is not yet
            // reaped, so the process-group id cannot have been reused.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }

    /// Closes stdin, waits up to [`SHUTDOWN_GRACE`] for stdout EOF, kills the group, reaps.
    async fn shutdown(&mut self) {
        self.stdin = None;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.stdout.read_to_end(&mut sink)).await;
        self.kill_group();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.reaped = true;
    }
}

impl Drop for StdioChannel {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Probes a stdio server: spawns it, runs the session, always kills and reaps it.
pub async fn probe_stdio(spec: &LaunchSpec, opts: &ProbeOptions) -> Result<ProbeResult> {
    let started = Instant::now();
    let mut chan = Channel::Stdio(Box::new(StdioChannel::spawn(spec)?));
    let outcome = tokio::time::timeout(opts.timeout, session(&mut chan, opts)).await;
    let Channel::Stdio(mut stdio) = chan else {
        unreachable!("constructed as stdio above")
    };
    let tail = stdio.closed_hint();
    stdio.shutdown().await;
    match outcome {
        Ok(Ok(mut r)) => {
            r.pid = stdio.pid;
            Ok(r)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Timeout(
            started.elapsed().min(opts.timeout),
            format!("pid {}{tail}", stdio.pid.unwrap_or(0)),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// streamable HTTP

struct HttpChannel {
    client: reqwest::Client,
    url: String,
    headers: BTreeMap<String, String>,
    session_id: Option<String>,
    protocol_version: Option<String>,
}

impl HttpChannel {
    fn post(&self, msg: &Value) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        if let Some(s) = &self.session_id {
            rb = rb.header("Mcp-Session-Id", s);
        }
        if let Some(p) = &self.protocol_version {
            rb = rb.header("MCP-Protocol-Version", p);
        }
        rb.body(msg.to_string())
    }

    async fn send(&self, msg: &Value) -> Result<reqwest::Response> {
        let resp = self.post(msg).send().await.map_err(|e| {
            Error::Transport(format!(
                "POST {}: {e}",
                crate::discovery::redact_url(&self.url)
            ))
        })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (the server needs authorization; set its headers in the client config)"
            } else if status == reqwest::StatusCode::NOT_FOUND && self.session_id.is_some() {
                " (the session expired)"
            } else {
                ""
            };
            return Err(Error::Transport(format!(
                "HTTP {status} from the server{hint}"
            )));
        }
        Ok(resp)
    }

    async fn notify(&mut self, msg: &Value) -> Result<()> {
        self.send(msg).await.map(drop)
    }

    async fn request(&mut self, id: u64, msg: &Value, is_init: bool) -> Result<Answer> {
        let mut resp = self.send(msg).await?;
        if is_init
            && let Some(s) = resp
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(s.to_string());
        }
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let matches = |v: &Value| v.get("id").and_then(Value::as_u64) == Some(id);
        if ctype.starts_with("text/event-stream") {
            let mut buf: Vec<u8> = Vec::new();
            let mut total = 0u64;
            let mut data = String::new();
            loop {
                let chunk = resp
                    .chunk()
                    .await
                    .map_err(|e| Error::Transport(format!("reading the event stream: {e}")))?;
                let Some(chunk) = chunk else {
                    return Err(Error::Transport(
                        "the event stream ended without an answer".into(),
                    ));
                };
                total += chunk.len() as u64;
                if total > MAX_OUTPUT_BYTES {
                    return Err(Error::Transport("the event stream is too large".into()));
                }
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\r', '\n']);
                    if line.is_empty() {
                        if let Ok(v) = serde_json::from_str::<Value>(&data)
                            && matches(&v)
                            && let Some(a) = answer_of(&v)
                        {
                            return Ok(a);
                        }
                        data.clear();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
            }
        }
        if let Some(len) = resp.content_length()
            && len > MAX_OUTPUT_BYTES
        {
            return Err(Error::Transport("the answer is too large".into()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(format!("reading the answer: {e}")))?;
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| Error::invalid("JSON-RPC answer", e))?;
        let found = match &v {
            Value::Array(items) => items.iter().find(|m| matches(m)).cloned(),
            other if matches(other) => Some(other.clone()),
            _ => None,
        };
        found
            .as_ref()
            .and_then(answer_of)
            .ok_or_else(|| Error::invalid("JSON-RPC answer", "no answer with the request's id"))
    }

    async fn close(&self) {
        if let Some(s) = &self.session_id {
            let mut rb = self.client.delete(&self.url).header("Mcp-Session-Id", s);
            for (k, v) in &self.headers {
                rb = rb.header(k, v);
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), rb.send()).await;
        }
    }
}

/// Probes a streamable-HTTP server at `url` (headers from the client config are sent as given).
pub async fn probe_http(
    url: &str,
    headers: &BTreeMap<String, String>,
    opts: &ProbeOptions,
) -> Result<ProbeResult> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(Error::Transport(
            "https:// MCP servers are not supported by this build (no TLS stack compiled in)"
                .into(),
        ));
    }
    if !lower.starts_with("http://") {
        return Err(Error::invalid("server URL", "must start with http://"));
    }
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Transport(e.to_string()))?;
    let started = Instant::now();
    let mut chan = Channel::Http(HttpChannel {
        client,
        url: url.to_string(),
        headers: headers.clone(),
        session_id: None,
        protocol_version: None,
    });
    let outcome = tokio::time::timeout(opts.timeout, session(&mut chan, opts)).await;
    if let Channel::Http(h) = &chan {
        h.close().await;
    }
    match outcome {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(
            started.elapsed().min(opts.timeout),
            crate::discovery::redact_url(url),
        )),
    }
}
