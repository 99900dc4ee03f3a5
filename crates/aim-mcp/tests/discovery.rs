//! Discovery over fixture home directories for every client and OS layout (macOS, Windows
//! incl. the MSIX Claude path, Linux/XDG), broken files, and secrets that must never appear.

use std::path::PathBuf;

use aim_mcp::discovery::{
    Client, DiscoveryEnv, DiscoveryReport, Os, Transport, discover, discover_file,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/homes")
}

fn env(os: Os, home: &str) -> DiscoveryEnv {
    DiscoveryEnv {
        os,
        home: fixtures().join(home),
        appdata: None,
        local_appdata: None,
        xdg_config_home: None,
        workspace: None,
    }
}

fn names(r: &DiscoveryReport, client: Client) -> Vec<String> {
    let mut v: Vec<String> = r
        .servers
        .iter()
        .filter(|s| s.client == client)
        .map(|s| s.name.clone())
        .collect();
    v.sort();
    v
}

fn server<'a>(r: &'a DiscoveryReport, name: &str) -> &'a aim_mcp::discovery::ServerEntry {
    r.servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} not found in {:?}", r.servers))
}

/// Every secret in the fixtures contains this marker.
const SECRET_MARKER: &str = "SECRETVALUE";

fn assert_no_secret(r: &DiscoveryReport) {
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains(SECRET_MARKER), "secret in JSON: {json}");
    let debug = format!("{r:?}");
    assert!(!debug.contains(SECRET_MARKER), "secret in Debug output");
}

#[test]
fn macos_layout_every_client() {
    let r = discover(&env(Os::Macos, "macos"));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r, Client::ClaudeDesktop), ["filesystem", "github"]);
    assert_eq!(names(&r, Client::ClaudeCode), ["postgres", "sentry"]);
    assert_eq!(names(&r, Client::Cursor), ["fetch", "remote-sse"]);
    assert_eq!(names(&r, Client::Windsurf), ["linear", "slack"]);
    assert_eq!(
        names(&r, Client::Vscode),
        ["github-remote", "memory", "sqlite"]
    );
    assert_eq!(
        names(&r, Client::GeminiCli),
        ["git", "remote-http", "remote-sse"]
    );

    let fs = server(&r, "filesystem");
    assert_eq!(fs.transport, Transport::Stdio);
    assert_eq!(fs.command.as_deref(), Some("npx"));
    assert_eq!(fs.classification.as_ref().unwrap().kind, "filesystem");
    assert!(
        fs.config_path
            .ends_with("Library/Application Support/Claude/claude_desktop_config.json")
    );

    let gh = server(&r, "github");
    assert_eq!(gh.classification.as_ref().unwrap().kind, "github");
    assert_eq!(gh.env_names, ["GITHUB_PERSONAL_ACCESS_TOKEN"]);

    let pg = server(&r, "postgres");
    assert_eq!(pg.scope, "user");
    assert_eq!(pg.classification.as_ref().unwrap().kind, "postgres");
    assert!(
        pg.args
            .iter()
            .any(|a| a == "postgresql://ana:***@db.internal:5432/app"),
        "{:?}",
        pg.args
    );

    let sentry = server(&r, "sentry");
    assert_eq!(sentry.scope, "project:/Users/ana/src/shop");
    assert_eq!(sentry.transport, Transport::StreamableHttp);
    assert_eq!(sentry.header_names, ["Authorization"]);
    assert_eq!(sentry.classification.as_ref().unwrap().kind, "sentry");

    assert_eq!(
        r.servers
            .iter()
            .find(|s| s.name == "remote-sse" && s.client == Client::Cursor)
            .unwrap()
            .transport,
        Transport::Sse
    );
    assert_eq!(server(&r, "linear").transport, Transport::Sse);
    assert_eq!(
        server(&r, "github-remote").transport,
        Transport::StreamableHttp
    );
    assert_eq!(
        server(&r, "github-remote")
            .classification
            .as_ref()
            .unwrap()
            .kind,
        "github"
    );
    assert_eq!(
        server(&r, "sqlite").classification.as_ref().unwrap().kind,
        "sqlite"
    );
    assert_eq!(
        server(&r, "remote-http").transport,
        Transport::StreamableHttp
    );
    let gem_sse = r
        .servers
        .iter()
        .find(|s| s.name == "remote-sse" && s.client == Client::GeminiCli)
        .unwrap();
    assert_eq!(gem_sse.transport, Transport::Sse, "Gemini `url` is SSE");
    assert_eq!(
        server(&r, "slack").env_names,
        ["SLACK_BOT_TOKEN", "SLACK_TEAM_ID"]
    );
    assert_eq!(
        server(&r, "git").launch.cwd.as_deref(),
        Some(std::path::Path::new("/Users/ana/src"))
    );
    assert_no_secret(&r);
}

#[test]
fn windows_layout_including_msix() {
    let mut e = env(Os::Windows, "windows");
    // APPDATA unset → <home>\AppData\Roaming; LOCALAPPDATA given explicitly.
    e.local_appdata = Some(fixtures().join("windows/AppData/Local"));
    let r = discover(&e);
    assert_eq!(names(&r, Client::ClaudeDesktop), ["brave", "filesystem"]);
    assert!(
        server(&r, "brave")
            .config_path
            .to_string_lossy()
            .contains("Claude_pzs8sxrjxfjjc/LocalCache/Roaming/Claude")
    );
    assert_eq!(
        server(&r, "brave").classification.as_ref().unwrap().kind,
        "brave-search"
    );
    assert_eq!(
        server(&r, "filesystem")
            .classification
            .as_ref()
            .unwrap()
            .kind,
        "filesystem"
    );
    assert_eq!(names(&r, Client::Vscode), ["playwright"]);
    // The broken Cursor file is an error entry, not silence.
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].client, Client::Cursor);
    assert!(
        r.errors[0].error.contains("not valid JSON"),
        "{}",
        r.errors[0].error
    );
    // The same home read with the macOS layout finds none of the AppData files.
    let mac = discover(&env(Os::Macos, "windows"));
    assert!(names(&mac, Client::ClaudeDesktop).is_empty());
    assert_no_secret(&r);
}

#[test]
fn linux_layout_with_broken_files_and_entries() {
    let mut e = env(Os::Linux, "linux");
    e.xdg_config_home = Some(fixtures().join("linux/xdg"));
    let r = discover(&e);
    assert_eq!(names(&r, Client::ClaudeDesktop), ["filesystem"]);
    assert_eq!(names(&r, Client::Vscode), ["redis"]);
    assert!(
        server(&r, "redis")
            .args
            .iter()
            .any(|a| a == "redis://:***@localhost:6379/0")
    );
    let mut errs: Vec<(Client, Option<String>)> = r
        .errors
        .iter()
        .map(|e| (e.client, e.server.clone()))
        .collect();
    errs.sort();
    assert_eq!(
        errs,
        [
            (Client::ClaudeDesktop, Some("bad-args".into())),
            (Client::ClaudeDesktop, Some("no-command".into())),
            (Client::ClaudeDesktop, Some("weird-transport".into())),
            (Client::Windsurf, None),
            (Client::GeminiCli, None),
        ]
    );
    // Without XDG_CONFIG_HOME the default ~/.config is used (absent in the fixture).
    let r2 = discover(&env(Os::Linux, "linux"));
    assert!(names(&r2, Client::ClaudeDesktop).is_empty());
    assert_no_secret(&r);
}

#[test]
fn workspace_configs() {
    let mut e = env(Os::Linux, "does-not-exist");
    e.workspace = Some(fixtures().join("workspace"));
    let r = discover(&e);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r, Client::ClaudeCode), ["project-db"]);
    assert_eq!(names(&r, Client::Vscode), ["everything"]);
    assert_eq!(names(&r, Client::Cursor), ["time"]);
    assert_eq!(names(&r, Client::GeminiCli), ["custom"]);
    assert!(r.servers.iter().all(|s| s.scope == "workspace"));
    assert!(server(&r, "time").disabled);
    assert_eq!(
        server(&r, "time").classification.as_ref().unwrap().kind,
        "time"
    );
    assert!(server(&r, "custom").classification.is_none());
    assert_eq!(server(&r, "project-db").env_names, ["PGPASSWORD"]);
    assert_no_secret(&r);
}

#[test]
fn empty_home_is_empty_not_error() {
    let dir = tempfile::tempdir().unwrap();
    for os in [Os::Macos, Os::Windows, Os::Linux] {
        let r = discover(&DiscoveryEnv {
            os,
            home: dir.path().to_path_buf(),
            appdata: None,
            local_appdata: None,
            xdg_config_home: None,
            workspace: None,
        });
        assert!(r.servers.is_empty() && r.errors.is_empty() && r.configs_read.is_empty());
    }
}

#[test]
fn explicit_file_missing_or_unreadable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = discover_file(&dir.path().join("nope.json"));
    assert_eq!(r.errors.len(), 1);
    let p = dir.path().join("cfg.json");
    std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
    let r = discover_file(&p);
    assert!(r.errors[0].error.contains("UTF-8"), "{:?}", r.errors);
    std::fs::write(
        &p,
        r#"{"servers": {"a": {"command": "x", "env": {"K": "SECRETVALUE_file"}}}}"#,
    )
    .unwrap();
    let r = discover_file(&p);
    assert_eq!(r.servers[0].env_names, ["K"]);
    assert_eq!(
        r.servers[0].launch.env["K"], "SECRETVALUE_file",
        "the launch spec keeps the value to start the server"
    );
    assert_no_secret(&r);
}
