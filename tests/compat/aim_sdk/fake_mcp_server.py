"""A minimal, harmless MCP server over stdio (newline-delimited JSON-RPC 2.0).

The compatibility suite names it in the Claude Desktop config it writes into its temporary HOME.
aim-sdk may start it to discover the server's tools before registering the MCP server (only when
the optional `mcp` package is installed; otherwise discovery is skipped and nothing runs). It
answers `initialize`, `tools/list`, `resources/list` and `prompts/list`, and exits at end of input.
"""
import json
import sys


def main() -> None:
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict) or msg.get("id") is None:
            continue  # notifications need no answer
        method = msg.get("method")
        params = msg.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": params.get("protocolVersion", "2024-11-05"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "compat-fs", "version": "0.1.0"},
            }
        elif method == "tools/list":
            result = {"tools": [{
                "name": "read_file",
                "description": "Read a file (compat test double; does nothing)",
                "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }]}
        elif method == "resources/list":
            result = {"resources": []}
        elif method == "prompts/list":
            result = {"prompts": []}
        else:
            reply = {"jsonrpc": "2.0", "id": msg["id"],
                     "error": {"code": -32601, "message": f"method not found: {method}"}}
            print(json.dumps(reply), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)


if __name__ == "__main__":
    main()
