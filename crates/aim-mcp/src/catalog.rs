//! Classification of common MCP servers from how they are launched (package, image, command) or
//! where they live (URL).
//!
//! Rules (documented in docs/MCP.md):
//! 1. The *package* of a stdio server is found by [`package_of`]: for `npx`/`bunx`/`pnpm dlx`/
//!    `yarn dlx`/`uvx`/`pipx run` the first non-flag argument (flags that take a value are
//!    skipped with it); for `docker`/`podman run` the image; for `node`/`python`/`deno`/`bun`
//!    the script's file name; `uv run` / `uv tool run` the next non-flag argument; otherwise the
//!    command's file name.
//! 2. The package (lower-cased, version suffix `@x.y` removed) is matched against the catalog in
//!    order; the first entry with a keyword contained in it wins. For a remote server the URL's
//!    host and path are matched the same way.
//! 3. No match → `None` ("unknown"). Classification is a hint for humans and for expected
//!    capabilities; attestation never relies on it.

use serde::Serialize;

/// A known kind of MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    /// Short kind name, e.g. `filesystem`, `postgres`, `github`.
    pub kind: &'static str,
    /// What the kind typically gives a model (capability classes, see [`crate::manifest`]).
    pub expected_capabilities: Vec<&'static str>,
    /// The package / image / host the kind was recognised from.
    pub matched: String,
}

/// (kind, keywords, expected capability classes). Order matters: more specific first.
const CATALOG: &[(&str, &[&str], &[&str])] = &[
    (
        "filesystem",
        &["server-filesystem", "filesystem", "mcp-fs", "fs-mcp"],
        &["read_files", "write_files"],
    ),
    (
        "postgres",
        &["server-postgres", "postgres", "pgsql", "supabase", "neon"],
        &["database_access"],
    ),
    ("sqlite", &["server-sqlite", "sqlite"], &["database_access"]),
    ("mysql", &["mysql", "mariadb"], &["database_access"]),
    (
        "mongodb",
        &["mongodb", "mongo-mcp", "mcp-mongo"],
        &["database_access"],
    ),
    ("redis", &["redis"], &["database_access"]),
    (
        "github",
        &["github", "githubcopilot"],
        &["network", "version_control"],
    ),
    ("gitlab", &["gitlab"], &["network", "version_control"]),
    (
        "git",
        &["server-git", "mcp-server-git", "git-mcp"],
        &["read_files", "version_control"],
    ),
    ("slack", &["slack"], &["network", "messaging"]),
    (
        "fetch",
        &["server-fetch", "mcp-server-fetch", "fetch"],
        &["network"],
    ),
    ("brave-search", &["brave-search", "brave"], &["network"]),
    (
        "browser",
        &["puppeteer", "playwright", "browserbase", "chrome-devtools"],
        &["network", "execute_code"],
    ),
    (
        "memory",
        &["server-memory", "memory"],
        &["read_files", "write_files"],
    ),
    (
        "sequential-thinking",
        &["sequential-thinking", "sequentialthinking"],
        &[],
    ),
    ("time", &["server-time", "mcp-server-time"], &[]),
    ("everything", &["server-everything"], &["network"]),
    ("google-maps", &["google-maps"], &["network"]),
    (
        "google-drive",
        &["gdrive", "google-drive"],
        &["network", "read_files"],
    ),
    ("notion", &["notion"], &["network"]),
    ("linear", &["linear"], &["network"]),
    (
        "atlassian",
        &["atlassian", "jira", "confluence"],
        &["network"],
    ),
    ("sentry", &["sentry"], &["network"]),
    ("stripe", &["stripe"], &["network"]),
    (
        "docker",
        &["docker-mcp", "mcp-docker", "mcp/docker"],
        &["execute_code"],
    ),
    (
        "kubernetes",
        &["kubernetes", "k8s"],
        &["execute_code", "network"],
    ),
    ("aws", &["aws-", "awslabs"], &["network"]),
    (
        "shell",
        &["shell", "terminal", "desktop-commander", "mcp-run"],
        &["execute_code"],
    ),
];

/// Runners whose first non-flag argument is the package.
const PACKAGE_RUNNERS: &[&str] = &["npx", "bunx", "uvx", "pnpx"];
/// Flags of runners/docker that take a separate value.
const VALUE_FLAGS: &[&str] = &[
    "-p",
    "--package",
    "--from",
    "--with",
    "-e",
    "--env",
    "--env-file",
    "-v",
    "--volume",
    "--name",
    "--network",
    "--mount",
    "-w",
    "--workdir",
    "--entrypoint",
    "-u",
    "--user",
    "--python",
    "--index-url",
    "--registry",
    "-c",
    "--call",
    "--platform",
    "--label",
    "-l",
];
/// Interpreters whose first non-flag argument is a script.
const INTERPRETERS: &[&str] = &["node", "python", "python3", "deno", "bun", "ruby", "java"];

fn file_name(s: &str) -> String {
    let s = s.trim_end_matches(['/', '\\']);
    let base = s.rsplit(['/', '\\']).next().unwrap_or(s);
    base.strip_suffix(".exe")
        .or_else(|| base.strip_suffix(".cmd"))
        .unwrap_or(base)
        .to_string()
}

fn first_non_flag(args: &[String]) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a.starts_with('-') {
            if VALUE_FLAGS.contains(&a) {
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        return Some((i, a));
    }
    None
}

/// The package, image or program that defines what a stdio server is (rule 1 above).
pub fn package_of(command: &str, args: &[String]) -> String {
    let cmd = file_name(command).to_ascii_lowercase();
    let after = |skip: usize| -> Option<String> {
        args.get(skip..)
            .and_then(first_non_flag)
            .map(|(_, a)| a.to_string())
    };
    let found = if PACKAGE_RUNNERS.contains(&cmd.as_str()) {
        after(0)
    } else if (cmd == "pnpm" || cmd == "yarn") && args.first().map(String::as_str) == Some("dlx")
        || cmd == "pipx" && args.first().map(String::as_str) == Some("run")
        || cmd == "npm" && args.first().map(String::as_str) == Some("exec")
    {
        after(1)
    } else if cmd == "docker" || cmd == "podman" {
        args.iter()
            .position(|a| a == "run")
            .and_then(|p| after(p + 1))
    } else if cmd == "uv" {
        match args.first().map(String::as_str) {
            Some("run") => after(1),
            Some("tool") => after(2),
            _ => None,
        }
    } else if INTERPRETERS.contains(&cmd.as_str()) {
        first_non_flag(args).map(|(_, a)| file_name(a))
    } else {
        None
    };
    found.unwrap_or(cmd)
}

/// Strips a trailing `@version` (keeping a leading `@scope`).
fn strip_version(pkg: &str) -> &str {
    match pkg.rfind('@') {
        Some(p) if p > 0 => &pkg[..p],
        _ => pkg,
    }
}

fn lookup(haystack: &str, matched: String) -> Option<Classification> {
    for (kind, keywords, caps) in CATALOG {
        if keywords.iter().any(|k| haystack.contains(k)) {
            return Some(Classification {
                kind,
                expected_capabilities: caps.to_vec(),
                matched,
            });
        }
    }
    None
}

/// Classifies a stdio server from its command line.
pub fn classify_command(command: &str, args: &[String]) -> Option<Classification> {
    let pkg = package_of(command, args);
    let key = strip_version(&pkg).to_ascii_lowercase();
    lookup(&key, pkg)
}

/// Classifies a remote server from its URL (host and path; never the query, which may carry
/// credentials).
pub fn classify_url(url: &str) -> Option<Classification> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let key = rest.to_ascii_lowercase();
    lookup(&key, key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packages_found_behind_runners() {
        assert_eq!(
            package_of(
                "npx",
                &v(&["-y", "@modelcontextprotocol/server-filesystem@1.2", "/tmp"])
            ),
            "@modelcontextprotocol/server-filesystem@1.2"
        );
        assert_eq!(
            package_of("uvx", &v(&["--from", "x", "mcp-server-git"])),
            "mcp-server-git"
        );
        assert_eq!(
            package_of(
                "docker",
                &v(&[
                    "run",
                    "-i",
                    "--rm",
                    "-e",
                    "GITHUB_PERSONAL_ACCESS_TOKEN",
                    "ghcr.io/github/github-mcp-server"
                ])
            ),
            "ghcr.io/github/github-mcp-server"
        );
        assert_eq!(
            package_of("/usr/bin/node", &v(&["/opt/srv/dist/index.js"])),
            "index.js"
        );
        assert_eq!(
            package_of("C:\\tools\\mcp-postgres.exe", &[]),
            "mcp-postgres"
        );
        assert_eq!(
            package_of("pnpm", &v(&["dlx", "@x/server-slack"])),
            "@x/server-slack"
        );
    }

    #[test]
    fn common_servers_classified() {
        let c = |cmd: &str, a: &[&str]| classify_command(cmd, &v(a)).map(|c| c.kind);
        assert_eq!(
            c(
                "npx",
                &["-y", "@modelcontextprotocol/server-filesystem", "/"]
            ),
            Some("filesystem")
        );
        assert_eq!(
            c(
                "npx",
                &[
                    "-y",
                    "@modelcontextprotocol/server-postgres",
                    "postgresql://h/db"
                ]
            ),
            Some("postgres")
        );
        assert_eq!(
            c("docker", &["run", "-i", "ghcr.io/github/github-mcp-server"]),
            Some("github")
        );
        assert_eq!(c("uvx", &["mcp-server-git"]), Some("git"));
        assert_eq!(c("uvx", &["mcp-server-fetch"]), Some("fetch"));
        assert_eq!(c("npx", &["@playwright/mcp@latest"]), Some("browser"));
        assert_eq!(c("my-own-server", &[]), None);
        // A path argument mentioning github does not classify a filesystem server as github.
        assert_eq!(
            c(
                "npx",
                &["@modelcontextprotocol/server-filesystem", "/home/u/github"]
            ),
            Some("filesystem")
        );
        assert_eq!(
            classify_url("https://api.githubcopilot.com/mcp/").map(|c| c.kind),
            Some("github")
        );
        assert_eq!(
            classify_url("https://u:filesystem@example.com/x?k=postgres").map(|c| c.kind),
            None
        );
    }
}
