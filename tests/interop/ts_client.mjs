// The official TypeScript SDK as an MCP client of sophia-mcp: @modelcontextprotocol/sdk 1.x speaks
// 2025-11-25 (initialize handshake), @modelcontextprotocol/client 2.x pinned to 2026-07-28 (no handshake).
// It lists tools, calls list_projects (with progress), reads a resource, gets a prompt and completes an
// argument, then prints one JSON object of what it saw. Exit status 1 on any failure. It reads Asana and
// HubSpot, whose sandbox doubles start fastest (a stdio run starts a whole server).
//
//   node ts_client.mjs 2025-11-25 http http://127.0.0.1:8000/mcp
//   node ts_client.mjs 2026-07-28 stdio /path/to/sophia-mcp serve --demo

const [era, kind, ...target] = process.argv.slice(2);
const modern = era === "2026-07-28";
const sdk = modern
  ? {
      ...(await import("@modelcontextprotocol/client")),
      ...(await import("@modelcontextprotocol/client/stdio")),
    }
  : {
      ...(await import("@modelcontextprotocol/sdk/client/index.js")),
      ...(await import("@modelcontextprotocol/sdk/client/stdio.js")),
      ...(await import("@modelcontextprotocol/sdk/client/streamableHttp.js")),
    };

const transport =
  kind === "stdio"
    ? new sdk.StdioClientTransport({ command: target[0], args: target.slice(1), stderr: "ignore" })
    : new sdk.StreamableHTTPClientTransport(new URL(target[0]));
const client = new sdk.Client(
  { name: "sophia-interop-ts", version: "1.0.0" },
  modern ? { versionNegotiation: { mode: { pin: era } } } : {},
);

const seen = {};
try {
  await client.connect(transport);
  seen.protocol = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
  seen.server = client.getServerVersion()?.name ?? null;
  seen.tools = (await client.listTools()).tools.map((tool) => tool.name);

  const progress = [];
  const call = await client.callTool(
    // a limit of its own per run, so the call is cold and its progress comes while the platforms answer
    { name: "list_projects", arguments: { platforms: ["asana", "hubspot"], limit: 10 + 2 * (process.pid % 40) } },
    ...(modern ? [] : [undefined]),
    { onprogress: (p) => progress.push(p.progress) },
  );
  seen.list_projects = {
    is_error: call.isError ?? false,
    platforms: [...new Set(call.structuredContent.projects.map((p) => p.platform))].sort(),
    progress,
  };

  const resource = await client.readResource({ uri: "sophia://asana/projects" });
  const body = JSON.parse(resource.contents[0].text);
  seen.resource = { mime_type: resource.contents[0].mimeType, projects: body.projects.length };

  const prompt = await client.getPrompt({
    name: "triage",
    arguments: { platform: "asana", project: body.projects[0].id },
  });
  const text = prompt.messages[0].content.text;
  seen.prompt = { messages: prompt.messages.length, names_project: text.includes(`"${body.projects[0].name}"`) };

  const completion = await client.complete({
    ref: { type: "ref/prompt", name: "weekly_status_report" },
    argument: { name: "platforms", value: "li" },
  });
  const projects = await client.complete({
    ref: { type: "ref/prompt", name: "project_brief" },
    argument: { name: "project", value: "fleet" },
    context: { arguments: { platform: "asana" } },
  });
  seen.completion = { platforms: completion.completion.values, projects: projects.completion.values };
} catch (error) {
  seen.error = String(error?.stack ?? error);
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify(seen));
process.exit(seen.error ? 1 : 0);
